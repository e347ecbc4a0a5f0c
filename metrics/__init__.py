"""Scheduled rollups from InfluxDB (energy per tonne, emission multiples of C, water reuse)."""
