"""Per-file screening of a training window: a batch that fails the batch suite never reaches training.

Each file is judged on its own, exactly as ingestion judges it: the ingestion verdict (result
marker ``ingest/<model>/results/<sha256(key, etag)>.json``) is reused when it exists for the same
ETag, otherwise the file is validated now with ingestion's
:class:`~modelops.ingest.validator.SuiteValidator` (in this process, reusing its GX set-up).
Validating the whole window at once would dilute per-batch checks (a single-class file hides
among clean ones), so that is never the only check.
"""

from __future__ import annotations

import functools

from modelops.config import ModelConfig
from modelops.layout import validated_prefix
from modelops.store import Store

#: Fewer rows than this left after exclusions fails the run (there is no model-level setting).
MIN_TRAINING_ROWS = 50


@functools.lru_cache(maxsize=8)
def _validator(suite_path):
    from modelops.ingest.validator import SuiteValidator

    return SuiteValidator(suite_path)


def raw_key_of(model: ModelConfig, key: str) -> str:
    """The ``raw/`` key a ``validated/`` copy came from (ingestion markers are keyed by it)."""
    validated = validated_prefix(model.name)
    return model.raw_prefix + key[len(validated) :] if key.startswith(validated) else key


def ingest_verdict(model: ModelConfig, key: str, etag: str, store: Store) -> dict | None:
    """Ingestion's verdict on this very file version, or None when it has not judged it."""
    from modelops.layout import ingest_result_key as result_key

    marker = result_key(model.name, raw_key_of(model, key), etag)
    if not store.exists(marker):
        return None
    result = store.get_json(marker)
    if result.get("status") not in ("validated", "quarantined"):
        return None
    return {
        "passed": result["status"] == "validated",
        "reason": f"quarantined by ingestion ({store.uri(marker)})",
        "failed_expectations": result.get("failed_expectations", []),
        "verdict_source": "ingest",
    }


def judge(model: ModelConfig, key: str, etag: str, body: bytes, store: Store) -> dict:
    """``{"passed", "reason", "failed_expectations", "verdict_source"}`` for one file version."""
    from modelops import batches
    from modelops.data import validation
    from modelops.ingest.validator import unreadable_outcome

    reused = ingest_verdict(model, key, etag, store)
    if reused is not None:
        return reused
    name = store.uri(key)
    try:
        outcome, _ = _validator(model.suite_path)(
            body, lambda: batches.read_batch(body, model.data.file_format, name), name
        )
    except batches.BatchReadError as exc:
        outcome = unreadable_outcome(model, name, str(exc))
    return {
        "passed": outcome.success,
        "reason": "; ".join(line.strip(" -") for line in validation.summarize_failures(outcome).splitlines()[1:-1]),
        "failed_expectations": [f["expectation_type"] for f in outcome.failures],
        "verdict_source": "validated per file",
    }


def describe(excluded: list[dict]) -> str:
    return "; ".join(f"{e['key']}: {', '.join(e['failed_expectations']) or e['reason']}" for e in excluded)
