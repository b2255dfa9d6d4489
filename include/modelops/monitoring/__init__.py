"""Monitoring stage: the daily report of live traffic against the training baseline."""
