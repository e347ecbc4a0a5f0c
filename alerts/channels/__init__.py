"""The notification channels, one folder each with its code, sample config and README.

A channel's config is `alerts.channels.<name>` in the plant config with `type:` one of TYPES;
`greenfoundry.alerts.channels.<type>` parses it (`parse(node, cfg, env) -> Channel`) and sends
(`Channel.send(notification)`), see `base.py`.
"""

TYPES = ("log", "jsonl", "mqtt", "webhook", "smtp", "wecom", "dingtalk")
