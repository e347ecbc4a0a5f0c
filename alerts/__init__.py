"""greenfoundry.alerts: rules as data, one event-time state machine, channels (alerts/README.md)."""
