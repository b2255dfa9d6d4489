"""Typed records for what crosses a task boundary (XCom): a small frozen dataclass and its JSON form.

A step returns ``SomeResult(...).to_json()`` and the next step reads ``SomeResult.from_json(value)``:
the wire stays plain JSON (what Airflow's UI shows and any version of the code can read), while
the code on both sides names its fields instead of indexing free dicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self

from modelops.jsonsafe import json_safe


class RecordError(ValueError):
    """A task received an upstream value that is not the record it expects; the message says why."""


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of the task-boundary records. Subclasses are frozen dataclasses of JSON-able fields."""

    def to_json(self) -> dict[str, Any]:
        return json_safe({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | Self) -> Self:
        """The record from its JSON form; extra keys are ignored (an older or newer producer), a
        missing required field raises :class:`RecordError` naming it."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise RecordError(f"{cls.__name__}: expected a mapping, got {type(value).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in value]
        if missing:
            raise RecordError(f"{cls.__name__}: missing {', '.join(missing)} (got {sorted(value)})")
        return cls(**{name: value[name] for name in fields if name in value})
