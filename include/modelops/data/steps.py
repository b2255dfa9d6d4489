"""The retrain DAG's data tasks, named like their task ids: snapshot the training window, validate
it, profile its baseline.

They come first in every retrain run and belong to the data stage (snapshot, suite, baseline);
each writes under the run's folder (``modelops.layout.training_run_prefix``) and returns the JSON
form of a small record, so the training steps read named fields instead of free dicts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from modelops.config import ModelConfig
from modelops.layout import training_baseline_key, training_data_docs_key, training_validation_key
from modelops.records import Record
from modelops.store import Store

log = logging.getLogger(__name__)

#: The fields of an excluded batch that travel with the snapshot summary (into the decision record).
EXCLUDED_FIELDS = ("key", "etag", "reason", "failed_expectations", "verdict_source")


class TrainingDataInvalid(RuntimeError):
    """The training snapshot failed its expectation suite; nothing downstream may run."""


@dataclasses.dataclass(frozen=True)
class SnapshotSummary(Record):
    """What ``snapshot_training_data`` returns when the window holds data."""

    manifest_uri: str
    dataset_hash: str
    rows: int
    objects: int
    unreadable: int
    excluded: list[dict[str, Any]]
    window: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class NothingToTrain(Record):
    """What ``snapshot_training_data`` returns for an empty window: not an error, the run skips."""

    nothing_to_train: bool
    message: str
    model: str
    window: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ValidationSummary(Record):
    """What ``validate_training_data`` returns: where the result and Data Docs are, and counts."""

    success: bool
    result_uri: str
    data_docs_uri: str
    evaluated: int | None
    failed: int
    excluded: int


@dataclasses.dataclass(frozen=True)
class BaselineSummary(Record):
    """What ``profile_baseline`` returns: where the run's baseline profile is."""

    baseline_uri: str
    features: int
    rows: int


def snapshot_training_data(
    model: ModelConfig, as_of: dt.datetime, window_days: int, run_id: str, store: Store | None = None
) -> dict:
    """Snapshot the complete daily batches of the training window; failing files are excluded."""
    from modelops.data.snapshot import take_snapshot

    manifest = take_snapshot(model, as_of, window_days, run_id, store)
    if manifest.get("nothing_to_train"):
        return NothingToTrain.from_json(manifest).to_json()
    return SnapshotSummary(
        manifest_uri=manifest["uri"],
        dataset_hash=manifest["dataset_hash"],
        rows=manifest["rows"],
        objects=len(manifest["objects"]),
        unreadable=len(manifest["unreadable"]),
        excluded=[{k: e[k] for k in EXCLUDED_FIELDS} for e in manifest.get("excluded", [])],
        window=manifest["window"],
    ).to_json()


def has_training_data(snapshot: dict) -> bool:
    """False for an empty window (the run skips the rest and ends as success)."""
    if snapshot.get("nothing_to_train"):
        log.warning("%s; skipping the rest of the run", snapshot["message"])
        return False
    return True


def validate_training_data(model: ModelConfig, run_id: str, store: Store | None = None) -> dict:
    """Run the model's suite on the snapshot; write JSON + Data Docs HTML; raise on failure.

    The snapshot holds only files that passed the batch suite one by one; the excluded ones
    (unreadable included) are listed in the result, they no longer fail the run."""
    from modelops.data.snapshot import load_manifest, load_snapshot_frame
    from modelops.data.validation import render_data_docs_html, summarize_failures, validate_dataframe

    store = store or Store()
    manifest = load_manifest(model.name, run_id, store)
    frame = load_snapshot_frame(model, manifest, store)
    outcome = validate_dataframe(frame, model.suite_path, data_name=f"{model.name} training snapshot {manifest['uri']}")
    result = {
        "success": outcome.success,
        "suite": outcome.suite_name,
        "statistics": outcome.statistics,
        "unreadable": manifest["unreadable"],
        "excluded": manifest.get("excluded", []),
        "failures": outcome.failures,
    }
    result_key, docs_key = training_validation_key(model.name, run_id), training_data_docs_key(model.name, run_id)
    store.put_json(result_key, {**result, "gx_result": outcome.result_json})
    store.put_text(docs_key, render_data_docs_html(outcome), "text/html; charset=utf-8")
    summary = ValidationSummary(
        success=result["success"],
        result_uri=store.uri(result_key),
        data_docs_uri=store.uri(docs_key),
        evaluated=outcome.statistics.get("evaluated_expectations"),
        failed=len(outcome.failures),
        excluded=len(result["excluded"]),
    )
    if not result["success"]:
        raise TrainingDataInvalid(
            f"training data for '{model.name}' failed validation; the champion is untouched.\n"
            + summarize_failures(outcome)
            + f"\nFull result: {summary.result_uri}  Data Docs: {summary.data_docs_uri}"
        )
    return summary.to_json()


def profile_baseline(model: ModelConfig, run_id: str, store: Store | None = None) -> dict:
    """Profile per-feature statistics of the snapshot: what monitoring compares live data with."""
    from modelops.data import baseline
    from modelops.data.snapshot import load_manifest, load_snapshot_frame

    store = store or Store()
    manifest = load_manifest(model.name, run_id, store)
    frame = load_snapshot_frame(model, manifest, store)
    profile = baseline.profile_baseline(frame, model)
    profile["dataset_hash"] = manifest["dataset_hash"]
    profile["manifest_uri"] = manifest["uri"]
    key = training_baseline_key(model.name, run_id)
    store.put_json(key, profile)
    return BaselineSummary(
        baseline_uri=store.uri(key), features=len(model.features), rows=int(profile.get("row_count", len(frame)))
    ).to_json()
