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
* with ``--with-code``, ``include/models/<name>/``: a starter package for the model's own code (one
  feature step adding a numeric column drafted from the sample, one candidate factory with a
  two-setting search space, and their tests) and the declaration's ``code:`` section naming them,
  the candidate trained next to the built-in families. It is checked in a temporary folder first:
  the declaration loads, every reference imports and the candidate's pipeline fits on the sample.

``--upload`` also lands the sample in ``raw/<name>/dt=YYYY-MM-DD/``: one file per day of the
timestamp column, or a single batch dated yesterday without one, which is what ``retrain_<name>``
reads (and what ``ingest_<name>`` validates on arrival).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modelops.config import ConfigError, ModelConfig, expectations_dir, models_dir
from modelops.scaffold.declaration import METRICS, ScaffoldError, infer_declaration, parse_timestamps
from modelops.scaffold.drafts import categorical_hints, draft_floor, keep_range_signs, label_balance
from modelops.scaffold.starter_code import StarterPackage, check_package, draft_package, package_paths, write_package

log = logging.getLogger(__name__)

#: Column dtypes a numeric feature may have when a raw file is read (nulls make ints float).
NUMERIC_TYPES = [
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
    *(f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    *(f"float{bits}" for bits in (16, 32, 64)),
    "Float32",
    "Float64",
]


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
    days = parse_timestamps(frame[column], column).dt.date
    return {day: part for day, part in frame.groupby(days.to_numpy(), sort=True)}


def upload(frame: pd.DataFrame, config: ModelConfig, stem: str, today: dt.date) -> list[str]:
    from modelops.layout import raw_batch_key
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
        key = raw_batch_key(config.name, day, f"{stem}.{suffix}")
        store.put_bytes(key, body, kind)
        keys.append(key)
    return keys


def render_declaration(declaration: dict[str, Any], floor_note: str = "") -> str:
    """The YAML file's text: a header saying it is a draft, the fields, the floor's reason beside it."""
    name = declaration["name"]
    header = (
        f"# {name}: drafted by `python -m modelops.scaffold` from a data sample. Read it and edit it:\n"
        "# feature types, metrics, the gate and schedules are guesses. Every field: README.md, 'Adding a model'.\n"
    )
    if "code" in declaration:
        header += (
            f"# code: the starter package {name}/ beside this file (one feature step, one candidate, their tests);\n"
            "# README.md, 'Your own code'.\n"
        )
    body = yaml.safe_dump(declaration, sort_keys=False, allow_unicode=True)
    if floor_note:  # the drafted floor explained where it is set
        body = "\n".join(
            f"{line}  # {floor_note}" if line.lstrip().startswith("min_primary:") else line for line in body.split("\n")
        )
    return header + body


def write_files(
    declaration: dict[str, Any],
    suite: dict[str, Any],
    force: bool,
    models: Path,
    expectations: Path,
    floor_note: str = "",
    package: StarterPackage | None = None,
) -> tuple[Path, ...]:
    """The declaration, the suite and (``--with-code``) the starter package's files, in that order.
    Existing files are refused, all of them named, unless ``force``; then nothing is written."""
    name = declaration["name"]
    yaml_path = models / f"{name}.yaml"
    suite_path = expectations / f"{name}.json"
    code_paths = package_paths(package, models) if package else []
    existing = [p for p in (yaml_path, suite_path, *code_paths) if p.exists()]
    if existing and not force:
        raise ScaffoldError(f"{', '.join(map(str, existing))} already exist(s): pass --force to overwrite")
    for folder in (models, expectations):
        folder.mkdir(parents=True, exist_ok=True)
    yaml_path.write_text(render_declaration(declaration, floor_note))
    suite_path.write_text(json.dumps(suite, indent=2) + "\n")
    if package:
        code_paths = write_package(package, models)
    return yaml_path, suite_path, *code_paths


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing files (declaration, suite, starter package)"
    )
    parser.add_argument("--models-dir", type=Path, default=None, help="default: include/models (MODELOPS_MODELS_DIR)")
    parser.add_argument(
        "--expectations-dir", type=Path, default=None, help="default: expectations/ (MODELOPS_EXPECTATIONS_DIR)"
    )
    parser.add_argument("--upload", action="store_true", help="also put the sample into raw/<name>/dt=.../")
    parser.add_argument(
        "--with-code",
        action="store_true",
        help="also write a starter package <models-dir>/<name>/ (a feature step, a candidate, their tests) "
        "and the declaration's code: section",
    )
    return parser


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _draft_and_write(args: argparse.Namespace, frame: pd.DataFrame):
    """Infer the declaration, draft the suite, check the sample passes it (and, ``--with-code``, that
    the starter package imports and fits on it), then write the files."""
    declaration = infer_declaration(
        frame,
        args.name,
        args.target,
        problem_type=args.problem_type,
        timestamp_column=args.timestamp_column,
        id_column=args.id_column,
        categorical=_columns(args.categorical),
        drop=_columns(args.drop),
        file_format="parquet" if args.data.suffix.lower() == ".parquet" else "csv",
        owner=args.owner,
    )
    models = args.models_dir or models_dir()
    package = draft_package(frame, declaration, models) if args.with_code else None
    if package:
        declaration = package.declaration
    config = ModelConfig.model_validate(declaration)
    suite = draft_suite(frame, config)
    outcome = _validate_sample(frame, suite, args.data.name)
    if not outcome.success:
        from modelops.data.validation import summarize_failures

        raise ScaffoldError(f"the sample fails its own drafted suite:\n{summarize_failures(outcome)}")
    _, floor_note = draft_floor(frame[config.target], config.problem_type, config.metrics.primary)
    if package:
        check_package(frame, package, render_declaration(declaration, floor_note))
    paths = write_files(
        declaration,
        suite,
        args.force,
        models,
        args.expectations_dir or expectations_dir(),
        floor_note=floor_note,
        package=package,
    )
    return declaration, config, suite, paths


def _print_written(frame: pd.DataFrame, declaration: dict[str, Any], suite: dict[str, Any], paths) -> None:
    yaml_path, suite_path, *code_paths = paths
    features = declaration["features"]
    kinds = {k: sum(f["type"] == k for f in features) for k in ("numeric", "categorical")}
    print(
        f"wrote {yaml_path} ({declaration['problem_type']}, {kinds['numeric']} numeric + {kinds['categorical']} "
        f"categorical features, primary metric {declaration['metrics']['primary']})\n"
        f"wrote {suite_path} ({len(suite['expectations'])} expectations; the sample passes them)"
    )
    if code_paths:
        _print_code_written(declaration, code_paths)
    for hint in categorical_hints(frame, features):
        print(hint)
    if suite["meta"].get("label_balance", "").startswith("not drafted"):
        print(f"label balance {suite['meta']['label_balance']}")


def _print_code_written(declaration: dict[str, Any], code_paths: list[Path]) -> None:
    code = declaration["code"]
    engineered, candidate = code["engineered_features"][0], code["candidates"][0]
    notes = {
        "__init__.py": f"package {code['package']}",
        "features.py": f"feature step {code['feature_steps'][0]}: adds '{engineered['name']}', {engineered['description']}",
        "candidates.py": f"candidate '{candidate['name']}' ({candidate['factory']}, {candidate['search_space']}), "
        f"trained next to {', '.join(declaration['training']['candidates'][:-1])}",
    }
    for path in code_paths:
        print(f"wrote {path} ({notes.get(path.name, 'tests of the feature step and the candidate')})")
    folder = code_paths[0].parent
    print(f"the starter code imports and fits on the sample; run its tests: pytest {folder}")
    if folder.parent.resolve() != models_dir().resolve():
        print(
            f"the DAGs import {code['package']} from {models_dir()} (MODELOPS_MODELS_DIR): move {folder} there "
            "with the declaration, or point MODELOPS_MODELS_DIR at its folder"
        )


def _provision_and_upload(frame: pd.DataFrame, config: ModelConfig, stem: str) -> None:
    """``--upload``: the model's ingest queue first (so the upload is announced), then the daily files."""
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
    keys = upload(frame, config, stem, today)
    last = max(daily_batches(frame, config, today))
    print(f"uploaded {len(keys)} daily file(s) to raw/{config.name}/ (last day {last})")
    if last < today - dt.timedelta(days=config.training.window_days):
        print(
            f"the data ends before the training window of a run today: trigger retrain_{config.name} with "
            f"logical date {last + dt.timedelta(days=1)}T00:00:00Z (it reads the complete days before it)"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        frame = read_sample(args.data)
        declaration, config, suite, paths = _draft_and_write(args, frame)
    except (ScaffoldError, ConfigError) as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 2
    _print_written(frame, declaration, suite, paths)
    if args.upload:
        _provision_and_upload(frame, config, args.data.stem)
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
