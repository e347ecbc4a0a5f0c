"""MQTT ingest: topics and payloads at the edge, durable writes to InfluxDB, spool, dead letters."""
