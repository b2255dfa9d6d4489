"""Declare a new model from a sample of its data: ``python -m modelops.scaffold``.

A data scientist has a table (CSV or Parquet) and knows its label column. This writes the two
files a model needs, both meant to be read and edited, and checks them before writing:

* ``include/models/<name>.yaml``: features and their types (numeric or categorical, nullable or
  not) inferred from the sample, the problem type from the label, metrics, gate and schedule
  defaults for that problem type. It is parsed with the same strict schema the DAGs use.
* ``expectations/<name>.json``: a Great Expectations 1.x suite drafted from the sample's profile
  (the same constraints monitoring derives from a training baseline: null-rate allowances,
  ranges widened by the inter-quartile range, allowed categories), plus the label (not null, in
  the observed classes or range), the id column (unique) and the timestamp (not null). The
  sample must pass it, or nothing is written.

``--upload`` also lands the sample in ``raw/<name>/dt=YYYY-MM-DD/``: one file per day of the
timestamp column, or a single batch dated yesterday without one, which is what ``retrain_<name>``
reads (and what ``ingest_<name>`` validates on arrival).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modelops.config import NAME_PATTERN, ConfigError, ModelConfig, expectations_dir, models_dir
from modelops.scaffold.drafts import categorical_hints, draft_floor, keep_range_signs, label_balance

#: A numeric label with more distinct values than this is a regression target.
MAX_CLASSES = 50
REGRESSION_MIN_DISTINCT = 20
#: A categorical feature with at most this many values may be the gate's slice column.
MAX_SLICE_VALUES = 20
#: Column dtypes a numeric feature may have when a raw file is read (nulls make ints float).
NUMERIC_TYPES = [
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
    *(f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    *(f"float{bits}" for bits in (16, 32, 64)),
    "Float32",
    "Float64",
]
#: A text column with more distinct values than this, and more than half its rows distinct, is
#: free text or an identifier, not a category (one-hot columns per row, every new value "drift").
MAX_TEXT_CATEGORIES = 50

METRICS = {
    "binary_classification": {"primary": "roc_auc", "secondary": ["f1", "accuracy", "log_loss"]},
    "multiclass_classification": {"primary": "f1_macro", "secondary": ["accuracy", "log_loss"]},
    "regression": {"primary": "rmse", "secondary": ["mae", "r2"]},
}


class ScaffoldError(ValueError):
    """The sample cannot describe a model; the message names the column or option at fault."""


def read_sample(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ScaffoldError(f"--data: {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in {".csv", ".txt"}:
            frame = pd.read_csv(path)
        else:
            raise ScaffoldError(f"--data: {path.name}: use a .csv or .parquet file")
    except (ValueError, OSError) as exc:
        if isinstance(exc, ScaffoldError):
            raise
        raise ScaffoldError(f"--data: {path.name} cannot be read: {exc}") from exc
    if frame.empty:
        raise ScaffoldError(f"--data: {path.name} has no rows")
    return frame


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def infer_problem_type(label: pd.Series) -> str:
    values = label.dropna()
    distinct = values.nunique()
    if distinct < 2:
        raise ScaffoldError(f"target '{label.name}': needs at least two distinct values, found {distinct}")
    if distinct == 2:
        return "binary_classification"
    if _is_numeric(values):
        whole = bool((values.astype(float) % 1 == 0).all())
        if distinct > REGRESSION_MIN_DISTINCT or not whole:
            return "regression"
    if distinct > MAX_CLASSES:
        raise ScaffoldError(
            f"target '{label.name}': {distinct} distinct non-numeric values is too many classes "
            f"(at most {MAX_CLASSES}); pass --problem-type if this is intended"
        )
    return "multiclass_classification"


def infer_declaration(
    frame: pd.DataFrame,
    name: str,
    target: str,
    *,
    problem_type: str | None = None,
    timestamp_column: str | None = None,
    id_column: str | None = None,
    categorical: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    file_format: str = "csv",
    description: str = "",
    owner: str = "modelops",
) -> dict[str, Any]:
    """The model declaration for ``frame`` as a plain dict (what the YAML file holds)."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"name {name!r}: must be lower-case letters, digits and underscores, starting with a letter"
        )
    named = {"--target": target, "--timestamp-column": timestamp_column, "--id-column": id_column}
    for option, column in named.items():
        if column and column not in frame.columns:
            raise ScaffoldError(f"{option}: no column '{column}' in the sample; columns: {list(frame.columns)}")
    for option, columns in {"--categorical": categorical, "--drop": drop}.items():
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise ScaffoldError(f"{option}: no column(s) {unknown} in the sample")
    if frame[target].isna().any():
        raise ScaffoldError(f"target '{target}': {int(frame[target].isna().sum())} row(s) have no label")
    problem_type = problem_type or infer_problem_type(frame[target])
    if problem_type == "regression" and not _is_numeric(frame[target]):
        raise ScaffoldError(f"target '{target}': regression needs a numeric label, got {frame[target].dtype}")

    skip = {target, timestamp_column, id_column, *drop}
    features = []
    for column in frame.columns:
        if column in skip:
            continue
        series = frame[column]
        if series.isna().all():
            raise ScaffoldError(f"column '{column}' is empty in the sample: pass --drop {column} or a fuller sample")
        kind = "categorical" if column in categorical or not _is_numeric(series) else "numeric"
        distinct, present = series.nunique(), int(series.notna().sum())
        if (
            kind == "categorical"
            and column not in categorical
            and distinct > MAX_TEXT_CATEGORIES
            and distinct > present / 2
        ):
            raise ScaffoldError(
                f"column '{column}' has {distinct} distinct values in {present} rows: free text or an identifier is "
                f"not a categorical feature; pass --drop {column} (or --id-column {column}), or --categorical "
                f"{column} if it really is a category"
            )  # fmt: skip
        feature: dict[str, Any] = {"name": str(column), "type": kind}
        if series.isna().any():
            feature["nullable"] = True
        features.append(feature)
    if not features:
        raise ScaffoldError("no feature columns left besides the target, timestamp and id")

    slice_column = next(
        (f["name"] for f in features if f["type"] == "categorical" and frame[f["name"]].nunique() <= MAX_SLICE_VALUES),
        None,
    )
    if problem_type == "regression":
        spread = float(frame[target].std(ddof=0) or 0.0)
        tolerance = round(0.01 * spread, 6)
    else:
        tolerance = 0.005
    gate: dict[str, Any] = {"tolerance": tolerance}
    floor, _ = draft_floor(frame[target], problem_type, METRICS[problem_type]["primary"])
    if floor is not None:  # without one, any first model is promoted (it has no champion to beat)
        gate["min_primary"] = floor
    if slice_column:
        gate["slice_column"] = slice_column

    window_days = 30
    if timestamp_column:
        times = _timestamps(frame[timestamp_column], timestamp_column)
        window_days = max(1, min(3650, (times.max().date() - times.min().date()).days + 1))

    declaration: dict[str, Any] = {
        "name": name,
        "description": description or f"Declared from a sample of {len(frame)} rows by modelops.scaffold.cli.",
        "owner": owner,
        "problem_type": problem_type,
        "target": target,
        "features": features,
        "data": {"file_format": file_format},
        "training": {"window_days": window_days},
        "metrics": METRICS[problem_type],
        "gate": gate,
        "schedule": {"retrain": "@weekly", "monitor": "@daily"},
    }
    if timestamp_column:
        declaration["data"]["timestamp_column"] = timestamp_column
    if id_column:
        declaration["data"]["id_column"] = id_column
    try:
        config = ModelConfig.model_validate(declaration)
    except Exception as exc:  # pydantic's message names the field
        raise ScaffoldError(f"the inferred declaration is invalid: {exc}") from exc
    if problem_type == "regression" and slice_column:
        # The slice limit is in the primary metric's units: the 0.05 default suits scores in [0, 1],
        # not an rmse in the label's units, where it would refuse every slightly worse slice.
        gate["max_slice_regression"] = _slice_limit(frame, config, fallback=0.05 * spread)
    return declaration


def _slice_limit(frame: pd.DataFrame, config: ModelConfig, fallback: float) -> float:
    """5% of a plain linear model's in-sample error on the sample: how much worse a slice may get."""
    import numpy as np

    from modelops.training.pipelines import build_pipeline

    try:
        label = frame[config.target].astype(float).to_numpy()
        fitted = build_pipeline(config, "linear").fit(frame[config.feature_names], label)
        errors = np.asarray(fitted.predict(frame[config.feature_names]), dtype=float) - label
        error = float(np.sqrt(np.mean(errors**2)) if config.metrics.primary == "rmse" else np.mean(np.abs(errors)))
    except Exception:  # noqa: BLE001 - a draft value; the label's spread stands in
        error = 0.0
    limit = 0.05 * error if math.isfinite(error) and error > 0 else fallback
    return float(f"{limit:.3g}") if limit > 0 else 0.0


def _timestamps(series: pd.Series, column: str) -> pd.Series:
    from modelops.training.time_split import parse_times

    times = parse_times(series)
    if times.isna().any():
        examples = series[times.isna()].head(3).tolist()
        raise ScaffoldError(
            f"--timestamp-column '{column}': {int(times.isna().sum())} row(s) have no readable time, e.g. {examples}"
        )
    return times


def draft_suite(frame: pd.DataFrame, config: ModelConfig) -> dict[str, Any]:
    """A GX suite from the sample's profile: feature constraints plus label, id and timestamp rules."""
    from modelops.data.baseline import constraints_to_gx_suite, profile_baseline

    constraints = profile_baseline(frame, config)["constraints"]
    suite = constraints_to_gx_suite(constraints, config.name)
    # The baseline spells categories as text (as capture does); raw files keep their own types
    # (a True/False or numeric-code column reads back as bool or int), so this suite lists the
    # sample's own values.
    for item in suite["expectations"]:
        if item["type"] == "expect_column_values_to_be_in_set" and item["kwargs"]["column"] in frame:
            native = {str(v): _plain(v) for v in frame[item["kwargs"]["column"]].dropna().unique()}
            item["kwargs"]["value_set"] = [native.get(v, v) for v in item["kwargs"]["value_set"]]

    def add(kind: str, kwargs: dict[str, Any], notes: str) -> None:
        suite["expectations"].append(
            {"type": kind, "kwargs": kwargs, "meta": {"source": "modelops.scaffold.cli"}, "notes": notes}
        )

    columns = suite["expectations"][0]["kwargs"]
    columns["column_set"] = [c for c in (config.data.id_column, config.data.timestamp_column) if c] + [
        *columns["column_set"],
        config.target,
    ]
    add("expect_table_row_count_to_be_between", {"min_value": 1}, "A batch has rows.")
    for feature in config.features:
        if feature.type == "numeric":  # text in a number column is named as such, not as a failed range check
            add(
                "expect_column_values_to_be_in_type_list",
                {"column": feature.name, "type_list": NUMERIC_TYPES},
                "A numeric feature holds numbers (a column with any text reads as object).",
            )
    label = frame[config.target]
    add("expect_column_values_to_not_be_null", {"column": config.target}, "Training needs a label on every row.")
    if config.is_classifier:
        classes = sorted(label.dropna().unique().tolist(), key=str)
        add(
            "expect_column_values_to_be_in_set",
            {"column": config.target, "value_set": [_plain(v) for v in classes]},
            "The classes seen in the sample; a new class is a decision, not data.",
        )
        balance, balance_note = label_balance(label, _batch_rows(frame, config))
        for kind, kwargs, notes in balance:
            add(kind, kwargs, notes)
    else:
        low, high = float(label.min()), float(label.max())
        width = float(label.quantile(0.75) - label.quantile(0.25)) or (high - low) or 1.0
        add(
            "expect_column_values_to_be_between",
            {"column": config.target, "min_value": low - 3 * width, "max_value": high + 3 * width, "mostly": 0.999},
            "The label's observed range widened by 3 inter-quartile ranges.",
        )
    if config.data.id_column:
        add("expect_column_values_to_not_be_null", {"column": config.data.id_column}, "Every row has an id.")
        add("expect_column_values_to_be_unique", {"column": config.data.id_column}, "Ids identify rows.")
    if config.data.timestamp_column:
        add("expect_column_values_to_not_be_null", {"column": config.data.timestamp_column}, "Every row has a time.")
    keep_range_signs(suite, frame)
    suite["meta"] = {
        "model": config.name,
        "generated_by": "modelops.scaffold.cli (from baseline constraints); edit freely",
        "sample_rows": int(len(frame)),
    }
    if config.is_classifier:
        suite["meta"]["label_balance"] = balance_note
    return suite


def _batch_rows(frame: pd.DataFrame, config: ModelConfig) -> float:
    """Rows in a typical daily batch (the median day of the sample; all of it without a timestamp)."""
    sizes = [len(part) for part in daily_batches(frame, config, dt.date.today()).values()]
    return float(pd.Series(sizes).median())


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def daily_batches(frame: pd.DataFrame, config: ModelConfig, today: dt.date) -> dict[dt.date, pd.DataFrame]:
    """The sample as the daily files retraining reads: by the timestamp's UTC day, else yesterday."""
    column = config.data.timestamp_column
    if not column:
        return {today - dt.timedelta(days=1): frame}
    days = _timestamps(frame[column], column).dt.date
    return {day: part for day, part in frame.groupby(days.to_numpy(), sort=True)}


def upload(frame: pd.DataFrame, config: ModelConfig, stem: str, today: dt.date) -> list[str]:
    from modelops.layout import partition
    from modelops.store import Store

    store = Store()
    store.ensure_bucket()
    keys = []
    for day, part in daily_batches(frame, config, today).items():
        if config.data.file_format == "csv":
            body, suffix, kind = part.to_csv(index=False).encode(), "csv", "text/csv"
        else:
            buffer = io.BytesIO()
            part.to_parquet(buffer, index=False)
            body, suffix, kind = buffer.getvalue(), "parquet", "application/vnd.apache.parquet"
        key = f"{partition('raw', config.name, day)}{stem}.{suffix}"
        store.put_bytes(key, body, kind)
        keys.append(key)
    return keys


def write_files(
    declaration: dict[str, Any],
    suite: dict[str, Any],
    force: bool,
    models: Path,
    expectations: Path,
    floor_note: str = "",
) -> tuple[Path, Path]:
    name = declaration["name"]
    yaml_path = models / f"{name}.yaml"
    suite_path = expectations / f"{name}.json"
    existing = [p for p in (yaml_path, suite_path) if p.exists()]
    if existing and not force:
        raise ScaffoldError(f"{', '.join(map(str, existing))} already exist(s): pass --force to overwrite")
    header = (
        f"# {name}: drafted by `python -m modelops.scaffold` from a data sample. Read it and edit it:\n"
        "# feature types, metrics, the gate and schedules are guesses. Every field: README.md, 'Adding a model'.\n"
    )
    body = yaml.safe_dump(declaration, sort_keys=False, allow_unicode=True)
    if floor_note:  # the drafted floor explained where it is set
        body = "\n".join(
            f"{line}  # {floor_note}" if line.lstrip().startswith("min_primary:") else line for line in body.split("\n")
        )
    yaml_path.write_text(header + body)
    suite_path.write_text(json.dumps(suite, indent=2) + "\n")
    return yaml_path, suite_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.scaffold", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="model name: lower-case letters, digits, underscores")
    parser.add_argument("--data", type=Path, required=True, help="a sample of the data (.csv or .parquet)")
    parser.add_argument("--target", required=True, help="the label column")
    parser.add_argument(
        "--problem-type", choices=sorted(METRICS), default=None, help="default: inferred from the label"
    )
    parser.add_argument("--timestamp-column", default=None, help="event time: enables time-based splits")
    parser.add_argument("--id-column", default=None)
    parser.add_argument("--categorical", default="", help="comma-separated numeric columns to treat as categories")
    parser.add_argument("--drop", default="", help="comma-separated columns that are not features")
    parser.add_argument("--owner", default=os.environ.get("USER", "modelops"))
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: include/models (MODELOPS_MODELS_DIR)")
    parser.add_argument(
        "--expectations-dir", type=Path, default=None, help="default: expectations/ (MODELOPS_EXPECTATIONS_DIR)"
    )
    parser.add_argument("--upload", action="store_true", help="also put the sample into raw/<name>/dt=.../")
    args = parser.parse_args(argv)

    def columns(text: str) -> tuple[str, ...]:
        return tuple(c.strip() for c in text.split(",") if c.strip())

    try:
        frame = read_sample(args.data)
        declaration = infer_declaration(
            frame,
            args.name,
            args.target,
            problem_type=args.problem_type,
            timestamp_column=args.timestamp_column,
            id_column=args.id_column,
            categorical=columns(args.categorical),
            drop=columns(args.drop),
            file_format="parquet" if args.data.suffix.lower() == ".parquet" else "csv",
            owner=args.owner,
        )
        config = ModelConfig.model_validate(declaration)
        suite = draft_suite(frame, config)
        outcome = _validate_sample(frame, suite, args.data.name)
        if not outcome.success:
            from modelops.data.validation import summarize_failures

            raise ScaffoldError(f"the sample fails its own drafted suite:\n{summarize_failures(outcome)}")
        _, floor_note = draft_floor(frame[config.target], config.problem_type, config.metrics.primary)
        yaml_path, suite_path = write_files(
            declaration,
            suite,
            args.force,
            args.models_dir or models_dir(),
            args.expectations_dir or expectations_dir(),
            floor_note=floor_note,
        )
    except (ScaffoldError, ConfigError) as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 2
    features = declaration["features"]
    kinds = {k: sum(f["type"] == k for f in features) for k in ("numeric", "categorical")}
    print(
        f"wrote {yaml_path} ({declaration['problem_type']}, {kinds['numeric']} numeric + {kinds['categorical']} "
        f"categorical features, primary metric {declaration['metrics']['primary']})\n"
        f"wrote {suite_path} ({len(suite['expectations'])} expectations; the sample passes them)"
    )
    for hint in categorical_hints(frame, features):
        print(hint)
    if suite["meta"].get("label_balance", "").startswith("not drafted"):
        print(f"label balance {suite['meta']['label_balance']}")
    if args.upload:
        from modelops.local.stack_config import StackConfig

        for key, value in StackConfig.from_env().client_env().items():
            os.environ.setdefault(key, value)
        # Queue, dead-letter queue and bucket notification first, so the upload is announced to ingest_<name>.
        from modelops.local import bootstrap

        bootstrap.create_resources(None, {config.name: config})
        print(
            f"ingest queue {bootstrap.queue_name(config.name)} (+ dead-letter queue) receives new files under "
            f"{config.raw_prefix}"
        )
        today = dt.datetime.now(dt.UTC).date()
        keys = upload(frame, config, args.data.stem, today)
        last = max(daily_batches(frame, config, today))
        print(f"uploaded {len(keys)} daily file(s) to raw/{config.name}/ (last day {last})")
        if last < today - dt.timedelta(days=config.training.window_days):
            print(
                f"the data ends before the training window of a run today: trigger retrain_{config.name} with "
                f"logical date {last + dt.timedelta(days=1)}T00:00:00Z (it reads the complete days before it)"
            )
    print(f"within ~30 s the DAGs retrain_{args.name}, monitor_{args.name}, ... appear in the Airflow UI (paused)")
    print(
        f"unpausing retrain_{args.name} starts one scheduled run by itself; if no batch is in its window it ends "
        "at once as 'nothing to train' (skipped), so trigger with training_window_days or a logical date instead"
    )
    return 0


def _validate_sample(frame: pd.DataFrame, suite: dict[str, Any], data_name: str):
    import tempfile

    from modelops.data.validation import validate_dataframe

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "suite.json"
        path.write_text(json.dumps(suite))
        return validate_dataframe(frame, path, data_name=data_name)


if __name__ == "__main__":
    sys.exit(main())
