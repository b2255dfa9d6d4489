"""What the Models pages read once per object version: an in-process LRU keyed by ETag.

A finished run's decision record, a day's report or a file's validation report changes only
when it is rewritten, and then its ETag changes. So a page lists each prefix once (one LIST
gives every key and ETag), and :class:`CachedReads` answers ``get_json`` for a listed object
from the cache: unchanged objects cost no GET. Only what the pages show is kept (the condensers
at the end of this module: a few fields per object, never whole reports), and the cache is
bounded, so memory stays flat in the API server.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from modelops.ingest.messages import PoisonMessage, parse_message
from modelops.jsonsafe import finite

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.config import ModelConfig
    from modelops.store import ObjectInfo, Store

log = logging.getLogger(__name__)

#: Condensed values kept: a year of days for a few dozen models plus their runs and files.
MAX_ENTRIES = 20_000
_MISSING = object()


class LruCache:
    """A thread-safe least-recently-used map; values are computed outside the lock."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                self.misses += 1
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value of ``key``, else ``load()`` stored under it (two threads may both load)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = load()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


#: The API server's cache: every page of every request shares it.
CACHE = LruCache()


class CachedReads:
    """A Store seen by one page: ``list`` as usual (and remembered), ``get_json`` of a listed
    object condensed once per ``(bucket, key, etag, condenser name)``.

    Functions that take a Store (``registry.alias_history``, ``list_dead_letters``,
    ``decision_record.load``, ``monitoring.storage.read_report``) take this instead, so the pages
    read through the same code as the DAGs. Objects not listed on this page are read uncached.
    """

    def __init__(
        self,
        store: Store,
        cache: LruCache | None = None,
        condense: Callable[[Any], Any] | None = None,
        _etags: dict[str, str] | None = None,
    ):
        self.store = store
        self.bucket = store.bucket
        self.cache = cache if cache is not None else CACHE
        self.condense = condense
        self._etags = _etags if _etags is not None else {}

    def condensing(self, condense: Callable[[Any], Any]) -> CachedReads:
        """The same reads, whose ``get_json`` returns ``condense(json)`` (cached per ETag)."""
        return CachedReads(self.store, self.cache, condense, self._etags)

    def uri(self, key: str) -> str:
        return self.store.uri(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for info in self.store.list(prefix):
            self._etags[info.key] = info.etag
            yield info

    def listed(self, prefix: str) -> list[ObjectInfo]:
        return list(self.list(prefix))

    def exists(self, key: str) -> bool:
        return key in self._etags or self.store.exists(key)

    def get_json(self, key: str) -> Any:
        etag = self._etags.get(key)
        if self.condense is None:
            return self.store.get_json(key)
        if etag is None:
            return self.condense(self.store.get_json(key))
        kind = getattr(self.condense, "__qualname__", repr(self.condense))
        return self.cache.get_or_load((self.bucket, key, etag, kind), lambda: self.condense(self.store.get_json(key)))

    def get_bytes(self, key: str) -> bytes:
        return self.store.get_bytes(key)


# --- what is kept of each object -------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def decision_fields(record: Any) -> dict[str, Any]:
    """A decision record's page fields (``{}`` if the gate has not decided: ``decision_record.load`` skips it)."""
    if not isinstance(record, Mapping) or "promote" not in record:
        return {}
    candidate, champion = record.get("candidate") or {}, record.get("champion") or {}
    rollback = None
    if "rollback" in record:  # modelops.deploy.rollout: the post-deploy check failed
        error = (record.get("smoke_test") or {}).get("error") or "post-deploy check failed"
        rollback = f"deployed, then rolled back: {error}"[:500]
    return {
        "promote": bool(record["promote"]),
        "run_id": record.get("airflow_run_id"),
        "decided_at": record.get("decided_at"),
        "dry_run": bool(record.get("dry_run")),
        "reasons": [str(reason) for reason in record.get("reasons") or []],
        "candidate": {
            "name": candidate.get("candidate"),
            "metric": finite(candidate.get("primary")),
            "mlflow_run_id": (record.get("evidence") or {}).get("candidate_run_id") or candidate.get("mlflow_run_id"),
        },
        "champion": {
            "version": _text(record.get("champion_version_compared") or champion.get("version")),
            "metric": finite(champion.get("primary")),
        },
        "registered_version": _text(record.get("registered_version")),
        "promoted": record.get("promotion") is not None,
        "rollback": rollback,
    }


def alias_events(history: Any) -> list[dict[str, Any]]:
    """The page fields of each alias move, in stored order (oldest first)."""
    return [
        {
            "at": event.get("at"),
            "alias": event.get("alias"),
            "from_version": _text(event.get("from_version")),
            "to_version": _text(event.get("to_version")),
            "actor": event.get("actor"),
            "reason": event.get("reason"),
            "run_id": event.get("airflow_run_id"),
            # The field modelops.deploy.rollout.rollback adds (rollback_<model>, or a failed deploy).
            "rollback": "rolled_back_from" in event,
        }
        for event in history or []
        if isinstance(event, Mapping)
    ]


def effect_ratio(result: Mapping[str, Any] | None) -> float | None:
    """Effect size / effect threshold (>= 1: past the floor); None when either is missing."""
    effect, threshold = finite((result or {}).get("effect_size")), finite((result or {}).get("effect_threshold"))
    return effect / threshold if effect is not None and threshold else None


def _prediction_fields(prediction: Mapping[str, Any]) -> dict[str, Any] | None:
    if not prediction:
        return None
    keep = ("status", "drifted", "method", "message")
    return {k: prediction.get(k) for k in keep} | {"ratio": effect_ratio(prediction)}


def _performance_fields(performance: Mapping[str, Any]) -> dict[str, Any] | None:
    if not performance:
        return None
    return {
        "metric": performance.get("primary_metric"),
        "value": finite(performance.get("primary")),
        "reference": finite((performance.get("reference") or {}).get("primary")),
        "status": performance.get("status"),
        "labels": performance.get("labels"),
    }


def report_fields(report: Any) -> dict[str, Any]:
    """A day's report page fields (schema in modelops.monitoring.report): per feature only the ratio."""
    drift = report.get("drift") or {}
    return {
        "day": report.get("day"),
        "status": report.get("status"),
        "rows": (report.get("rows") or {}).get("captured"),
        "features": {f["feature"]: effect_ratio(f) for f in drift.get("features") or [] if f.get("feature")},
        "prediction_drift": _prediction_fields(report.get("prediction_drift") or {}),
        "performance": _performance_fields(report.get("performance") or {}),
    }


def validation_failures(report: Any) -> str | None:
    """A validation report's failed expectations, ``type (column)``, in order, once each."""
    names = [
        f"{f.get('expectation_type')}" + (f" ({f['column']})" if f.get("column") else "")
        for f in (report or {}).get("failures") or []
    ]
    return "; ".join(dict.fromkeys(names)) or None


def dead_letter_fields(bucket: str, model: ModelConfig) -> Callable[[Any], dict[str, Any]]:
    """The condenser of ``model``'s dead-letter records: what ``list_dead_letters`` sorts and
    filters on, the last error, and the raw file the message was about (None for a poison one)."""

    def dead_letter(record: Any) -> dict[str, Any]:
        try:
            events = parse_message(record.get("body", ""), bucket=bucket, model=model, known_models={model.name})
        except PoisonMessage:
            events = []
        keep = ("message_id", "status", "dead_lettered_at", "last_error")
        return {k: record.get(k) for k in keep} | {"key": events[0].key if events else None}

    return dead_letter
