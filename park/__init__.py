"""An industrial park: several plants on one broker and one InfluxDB, isolated from each other,
and compared side by side (issue 10).

`park.yaml` (`config/parks/<park>/park.yaml`, parsed by `greenfoundry.park.config.load`) names
the plant configs the park holds; `greenfoundry park report` puts each plant's monthly grade
snapshot beside the others' in one HTML file (`greenfoundry.park.report`), anonymised on
request. Isolation is the broker's and InfluxDB's: each plant's devices publish only under
their plant's topics (the dynamic-security role `plant-<id>`), each ingest writes only its own
plant (`ingest/payload.py`, `unknown_plant`), and on InfluxDB 1.x each plant may have its own
database with its own read user (`greenfoundry.stack.LocalStack.add_plant`).
"""
