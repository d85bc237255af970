"""Detectors: per-event checks run at ingest."""
