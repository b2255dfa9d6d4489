"""Submitting a model trained elsewhere to the gate: ``python -m modelops.submit`` (see ``cli``)."""
