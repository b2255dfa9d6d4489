"""Ingest stage: S3 arrival events on SQS, batch validation, dead letters and reconciliation."""
