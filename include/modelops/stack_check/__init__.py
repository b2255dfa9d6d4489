"""Stack check: the smoke_<model> DAG's steps (S3 read + MLflow run) proving the wiring works."""
