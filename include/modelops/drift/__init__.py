"""Drift detection: per-feature statistical tests against the training baseline."""
