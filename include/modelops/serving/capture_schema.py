"""What capture files hold: the Parquet schemas of ``capture/<model>/``, ``shadow/<model>/`` and
``feedback/<model>/``.

Monitoring reads these files back (drift on features and predictions, labels joined by request
id and record index), so their columns are a contract: categories, pass-through columns and
class labels are strings, spelled as the training baseline spells categories.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from modelops.config import ModelConfig
from modelops.serving.validation import category_text

if TYPE_CHECKING:
    from modelops.serving.champion import LoadedModel

log = logging.getLogger(__name__)

#: Columns every capture row has besides the features and the pass-through columns.
CAPTURE_COLUMNS = (
    "request_id",
    "record_index",
    "captured_at",
    "model",
    "model_version",
    "prediction",
    "probabilities",
    "classes",
)


def capture_schema(config: ModelConfig):
    """Parquet schema of ``capture/<model>/``: one row per scored record.

    Categorical features, pass-through columns and class labels are strings (as the baseline
    spells categories), so a day of traffic compares and joins without type games.
    """
    import pyarrow as pa

    clash = sorted(set(CAPTURE_COLUMNS) & {*config.feature_names, config.data.id_column, config.data.timestamp_column})
    if clash:
        raise ValueError(
            f"model '{config.name}': column(s) {clash} clash with capture columns {list(CAPTURE_COLUMNS)}; rename them"
        )
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("record_index", pa.int32()),
        pa.field("captured_at", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
    ]
    for feature in config.features:
        fields.append(pa.field(feature.name, pa.float64() if feature.type == "numeric" else pa.string()))
    for column in (config.data.id_column, config.data.timestamp_column):
        if column:
            fields.append(pa.field(column, pa.string()))
    if config.is_classifier:
        fields += [
            pa.field("prediction", pa.string()),
            pa.field("probabilities", pa.list_(pa.float64())),
            pa.field("classes", pa.list_(pa.string())),
        ]
    else:
        fields.append(pa.field("prediction", pa.float64()))
    return pa.schema(fields)


def shadow_schema(config: ModelConfig):
    """Parquet schema of ``shadow/<model>/``: the capture columns without the features and the
    pass-through columns. The served row under the same request id and record index holds those,
    and the comparison (:mod:`modelops.monitoring.shadow_compare`) reads only keys and outputs."""
    import pyarrow as pa

    full = capture_schema(config)
    return pa.schema([full.field(name) for name in CAPTURE_COLUMNS if name in full.names])


def feedback_schema(config: ModelConfig):
    """Parquet schema of ``feedback/<model>/``: labels as strings for classifiers (like predictions)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("request_id", pa.string()),
            pa.field("record_index", pa.int64()),
            pa.field("label", pa.string() if config.is_classifier else pa.float64()),
            pa.field("received_at", pa.timestamp("us", tz="UTC")),
            pa.field("model", pa.string()),
        ]
    )


def capture_rows(
    config: ModelConfig,
    loaded: LoadedModel,
    rows: list[dict],
    predictions: list,
    probabilities: list | None,
    request_id: str,
    captured_at: dt.datetime,
) -> list[dict]:
    """Capture rows as dicts, one per scored record (the row-by-row twin of the scoring path's column block)."""
    passthrough = [c for c in (config.data.id_column, config.data.timestamp_column) if c]
    categorical = config.categorical_features
    classes = [category_text(c) for c in loaded.classes] if loaded.classes is not None else None
    out = []
    for index, row in enumerate(rows):
        item = dict(row)
        for name in categorical:
            item[name] = category_text(row.get(name))
        for name in passthrough:
            if name in item:
                item[name] = category_text(item[name])
        item.update(
            request_id=request_id,
            record_index=index,
            captured_at=captured_at,
            model=config.name,
            model_version=loaded.version,
        )
        if config.is_classifier:
            item["prediction"] = category_text(predictions[index])
            item["probabilities"] = probabilities[index] if probabilities is not None else None
            item["classes"] = classes
        else:
            item["prediction"] = predictions[index]
        out.append(item)
    return out
