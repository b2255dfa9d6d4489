"""modelops.scaffold.cli: a new model's declaration and suite drafted from a sample of its data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from moto import mock_aws

from modelops.config import ModelConfig, load_model_config
from modelops.data.validation import validate_dataframe
from modelops.scaffold import cli as scaffold


def sample(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(rows)],
            "placed_at": pd.date_range("2026-10-01", periods=rows, freq="3h", tz="UTC").astype(str),
            "basket_eur": rng.gamma(2.0, 20.0, rows).round(2),
            "items": rng.integers(1, 12, rows),
            "channel": rng.choice(["web", "app", "phone"], rows),
            "coupon": rng.choice(["none", "10off", "free_ship"], rows),
            "distance_km": rng.uniform(0.5, 30, rows),
        }
    )
    frame.loc[::9, "distance_km"] = np.nan
    frame["returned"] = (rng.random(rows) < 0.2).astype(int)
    frame["minutes"] = 20 + 2 * frame["distance_km"].fillna(10) + rng.normal(0, 5, rows)
    frame["segment"] = rng.choice(["a", "b", "c", "d"], rows)
    return frame


def declare(frame: pd.DataFrame, target: str, **kwargs) -> dict:
    drop = tuple(c for c in ("returned", "minutes", "segment") if c != target)
    return scaffold.infer_declaration(
        frame, "orders", target, timestamp_column="placed_at", id_column="order_id", drop=drop, **kwargs
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [("returned", "binary_classification"), ("segment", "multiclass_classification"), ("minutes", "regression")],
)
def test_problem_type_and_metrics_follow_the_label(target, expected):
    declaration = declare(sample(), target)
    config = ModelConfig.model_validate(declaration)
    assert config.problem_type == expected
    assert config.metrics.primary == scaffold.METRICS[expected]["primary"]


def test_features_types_nullability_slice_and_window():
    frame = sample()
    config = ModelConfig.model_validate(declare(frame, "returned", categorical=("items",)))
    kinds = {f.name: (f.type, f.nullable) for f in config.features}
    assert kinds == {
        "basket_eur": ("numeric", False),
        "items": ("categorical", False),
        "channel": ("categorical", False),
        "coupon": ("categorical", False),
        "distance_km": ("numeric", True),
    }
    assert config.data.timestamp_column == "placed_at" and config.data.id_column == "order_id"
    assert config.gate.slice_column == "items"  # the first categorical feature with few values
    assert config.training.window_days == 38  # 300 rows every 3 h: 2026-10-01 .. 2026-11-07


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "--target: no column 'nope'"),
        ({"target": "returned", "timestamp_column": "when"}, "--timestamp-column: no column 'when'"),
        ({"target": "returned", "categorical": ("colour",)}, r"--categorical: no column\(s\) \['colour'\]"),
        ({"target": "returned", "problem_type": "regression", "drop": ("segment", "order_id", "placed_at")}, None),
    ],
)
def test_bad_options_name_the_option(kwargs, message):
    frame = sample()
    if message is None:  # a 0/1 label may be declared a regression on purpose
        assert scaffold.infer_declaration(frame, "orders", **kwargs)["problem_type"] == "regression"
        return
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.infer_declaration(frame, "orders", **kwargs)


def test_labels_and_columns_that_cannot_make_a_model_are_refused():
    frame = sample().drop(columns=["placed_at"])
    with pytest.raises(scaffold.ScaffoldError, match="at least two distinct values"):
        scaffold.infer_declaration(frame.assign(returned=1), "orders", "returned")
    with pytest.raises(scaffold.ScaffoldError, match=r"2 row\(s\) have no label"):
        scaffold.infer_declaration(frame.assign(returned=[None, None] + [1] * 298), "orders", "returned")
    with pytest.raises(scaffold.ScaffoldError, match="'empty' is empty in the sample: pass --drop empty"):
        scaffold.infer_declaration(frame.assign(empty=np.nan), "orders", "returned", id_column="order_id")
    with pytest.raises(scaffold.ScaffoldError, match="too many classes"):
        scaffold.infer_declaration(frame, "orders", "order_id")
    notes = frame.assign(note=[f"call back after {i} pm" for i in range(len(frame))])
    with pytest.raises(scaffold.ScaffoldError, match="'note' has 300 distinct values in 300 rows: free text"):
        scaffold.infer_declaration(notes, "orders", "returned", id_column="order_id")
    with pytest.raises(scaffold.ScaffoldError, match="'order_id' has 300 distinct values"):
        scaffold.infer_declaration(frame, "orders", "returned")  # the id, not named as --id-column
    declared = scaffold.infer_declaration(notes, "orders", "returned", categorical=("note",), drop=("order_id",))
    assert {"name": "note", "type": "categorical"} in declared["features"]  # said to be a category: kept
    with pytest.raises(scaffold.ScaffoldError, match="name"):
        scaffold.infer_declaration(frame, "Orders-2", "returned")


def test_the_sample_passes_its_suite_and_broken_batches_do_not(tmp_path):
    frame = sample()
    config = ModelConfig.model_validate(declare(frame, "returned"))
    suite = scaffold.draft_suite(frame, config)
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(suite))
    assert validate_dataframe(frame, path, data_name="sample").success

    later = sample(seed=1)  # another batch of the same data: passes too
    assert validate_dataframe(later, path, data_name="later").success
    broken = {
        "label outside the classes": later.assign(returned=later["returned"] * 3),
        "missing feature column": later.drop(columns=["coupon"]),
        "unknown category everywhere": later.assign(channel="fax"),
        "duplicate ids": later.assign(order_id="o1"),
        "nulls in a non-nullable feature": later.assign(basket_eur=np.nan),
        "missing label": later.assign(returned=np.nan),
    }
    for what, batch in broken.items():
        assert not validate_dataframe(batch, path, data_name=what).success, what
    # Text in a numeric column (as a raw file reads back): named as the wrong type.
    text = later.assign(basket_eur=later["basket_eur"].astype(object))
    text.loc[3, "basket_eur"] = "lots"
    outcome = validate_dataframe(text, path, data_name="text in a number column")
    kinds = {(f["column"], f["expectation_type"]) for f in outcome.failures}
    assert ("basket_eur", "expect_column_values_to_be_in_type_list") in kinds


def test_regression_slice_limit_is_in_the_labels_units():
    """0.05 suits roc_auc; for an rmse in the label's units it is 5% of a linear model's error."""
    frame = sample()
    big = frame.assign(minutes=frame["minutes"] * 1000)  # the same data in other units
    small_gate, big_gate = declare(frame, "minutes")["gate"], declare(big, "minutes")["gate"]
    assert 0.1 < small_gate["max_slice_regression"] < 1.0  # minutes: noise sd 5, so rmse ~5
    assert big_gate["max_slice_regression"] == pytest.approx(1000 * small_gate["max_slice_regression"], rel=0.01)
    assert "max_slice_regression" not in declare(frame, "returned")["gate"]  # classifiers keep 0.05


def test_regression_label_range_is_checked(tmp_path):
    frame = sample()
    config = ModelConfig.model_validate(declare(frame, "minutes"))
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(scaffold.draft_suite(frame, config)))
    assert validate_dataframe(frame, path, data_name="sample").success
    assert not validate_dataframe(frame.assign(minutes=frame["minutes"] * 1000), path, data_name="x1000").success


def test_cli_writes_checked_files_and_refuses_to_overwrite(tmp_path, capsys):
    data = tmp_path / "orders.csv"
    sample().to_csv(data, index=False)
    models, expectations = tmp_path / "models", tmp_path / "expectations"
    models.mkdir(), expectations.mkdir()
    argv = [
        "orders",
        "--data",
        str(data),
        "--target",
        "returned",
        "--timestamp-column",
        "placed_at",
        "--id-column",
        "order_id",
        "--drop",
        "minutes,segment",
        "--models-dir",
        str(models),
        "--expectations-dir",
        str(expectations),
    ]
    assert scaffold.main(argv) == 0
    config = load_model_config(models / "orders.yaml")  # the strict loader the DAGs use
    assert config.problem_type == "binary_classification" and len(config.features) == 5
    suite = json.loads((expectations / "orders.json").read_text())
    assert suite["name"] == "orders" and "the sample passes them" in capsys.readouterr().out
    assert yaml.safe_load((models / "orders.yaml").read_text())["target"] == "returned"

    assert scaffold.main(argv) == 2
    assert "already exist(s): pass --force" in capsys.readouterr().err
    assert scaffold.main([*argv, "--force"]) == 0


def test_cli_reports_unreadable_data(tmp_path, capsys):
    bad = tmp_path / "data.xlsx"
    bad.write_bytes(b"\x00\x01")
    assert scaffold.main(["orders", "--data", str(bad), "--target", "y"]) == 2
    assert "use a .csv or .parquet file" in capsys.readouterr().err
    assert scaffold.main(["orders", "--data", str(tmp_path / "missing.csv"), "--target", "y"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_daily_batches_and_upload(aws_env, monkeypatch):
    frame = sample(rows=24)  # 3 days of 8 rows
    config = ModelConfig.model_validate(declare(frame, "returned"))
    batches = scaffold.daily_batches(frame, config, dt.date(2026, 11, 25))
    assert list(batches) == [dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)]
    assert sum(len(b) for b in batches.values()) == 24
    no_time = ModelConfig.model_validate(scaffold.infer_declaration(frame, "orders", "returned", drop=("placed_at",)))
    assert list(scaffold.daily_batches(frame, no_time, dt.date(2026, 11, 25))) == [dt.date(2026, 11, 24)]

    monkeypatch.setenv("MODELOPS_BUCKET", "lake")
    with mock_aws():
        keys = scaffold.upload(frame, config, "orders", dt.date(2026, 11, 25))
        assert keys == [f"raw/orders/dt=2026-10-0{d}/orders.csv" for d in (1, 2, 3)]
        from modelops.store import Store

        body = Store("lake").get_bytes(keys[0]).decode()
        assert body.splitlines()[0].startswith("order_id,placed_at") and len(body.splitlines()) == 9


def test_shipped_models_still_load_from_the_default_folders():
    assert Path(load_model_config(Path("include/models/churn.yaml")).suite_path).name == "churn.json"


def test_timestamps_of_mixed_iso_precision_and_other_formats_are_read():
    from modelops.training.time_split import parse_times

    mixed = pd.Series(["2026-11-10T00:00:00+00:00", "2026-11-10T00:32:34.751131+00:00", "2026-11-11T01:00:00Z"])
    assert parse_times(mixed).notna().all() and parse_times(mixed).dt.date.astype(str).tolist() == [
        "2026-11-10",
        "2026-11-10",
        "2026-11-11",
    ]
    other = pd.Series(["2026-11-10 10:00", "11/12/2026 09:30", "not a time"])
    parsed = parse_times(other)
    assert parsed.isna().tolist() == [False, False, True]
    frame = sample(rows=3).assign(placed_at=mixed)
    assert scaffold.infer_declaration(frame, "orders", "minutes", timestamp_column="placed_at")["training"] == {
        "window_days": 2
    }
    with pytest.raises(scaffold.ScaffoldError, match=r"1 row\(s\) have no readable time, e.g. \['not a time'\]"):
        scaffold.infer_declaration(
            sample(rows=3).assign(placed_at=other), "orders", "minutes", timestamp_column="placed_at"
        )


def test_upload_provisions_the_ingest_queue_first_so_the_files_are_announced(aws_env, monkeypatch, tmp_path):
    from urllib.parse import unquote_plus

    import boto3

    from modelops.local import bootstrap

    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # keep mock_aws: the CLI fills in only what is unset
    monkeypatch.setenv("MODELOPS_BUCKET", "lake")
    data = tmp_path / "orders.csv"
    sample(rows=24).to_csv(data, index=False)
    argv = ["orders", "--data", str(data), "--target", "returned", "--timestamp-column", "placed_at", "--upload"]
    argv += ["--models-dir", str(tmp_path), "--expectations-dir", str(tmp_path)]
    with mock_aws():
        assert scaffold.main(argv) == 0
        sqs = boto3.client("sqs")
        url = sqs.get_queue_url(QueueName=bootstrap.queue_name("orders"))["QueueUrl"]
        bodies = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            bodies += [json.loads(m["Body"]) for m in batch]
    keys = {unquote_plus(r["s3"]["object"]["key"]) for b in bodies for r in b.get("Records", [])}
    assert keys == {f"raw/orders/dt=2026-10-0{d}/orders.csv" for d in (1, 2, 3)}


def test_true_false_and_numeric_code_categories_keep_their_type_in_the_suite(tmp_path):
    """Raw files read back True/False and numeric codes as bool and int: the drafted suite must
    list them so, or every batch of such a model would fail validation (text is for capture)."""
    from modelops.batches import read_batch

    frame = sample().assign(vip=lambda f: f["items"] > 6)
    data = tmp_path / "orders.csv"
    frame.to_csv(data, index=False)
    argv = ["orders", "--data", str(data), "--target", "returned", "--timestamp-column", "placed_at"]
    argv += ["--id-column", "order_id", "--categorical", "items", "--drop", "minutes,segment"]
    assert scaffold.main([*argv, "--models-dir", str(tmp_path), "--expectations-dir", str(tmp_path)]) == 0
    suite = json.loads((tmp_path / "orders.json").read_text())
    sets = {
        e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in suite["expectations"] if e["type"].endswith("in_set")
    }
    assert sorted(sets["vip"]) == [False, True] and sorted(sets["items"]) == list(range(1, 12))
    assert sets["channel"] == ["app", "phone", "web"]
    day = frame[frame["placed_at"].str.startswith("2026-10-02")]
    raw = read_batch(day.to_csv(index=False).encode(), "csv", "day.csv")  # as ingest and retrain read it
    assert validate_dataframe(raw, tmp_path / "orders.json", data_name="day.csv").success


def test_a_first_model_must_beat_chance_or_a_constant(tmp_path):
    """Without gate.min_primary any first model is promoted: the draft sets one a bit above chance
    (a ceiling a bit below a constant predictor's error for an error metric) and says why."""
    frame = sample()
    assert declare(frame, "returned")["gate"]["min_primary"] == 0.6  # roc_auc: chance 0.5
    assert declare(frame, "segment")["gate"]["min_primary"] == 0.4  # f1_macro, 4 classes: chance 0.25
    ceiling = ModelConfig.model_validate(declare(frame, "minutes")).gate.min_primary  # rmse: lower is better
    assert ceiling == pytest.approx(0.9 * frame["minutes"].std(ddof=0), rel=0.01)

    data = tmp_path / "orders.csv"
    frame.to_csv(data, index=False)
    argv = ["orders", "--data", str(data), "--target", "minutes", "--id-column", "order_id"]
    argv += ["--drop", "returned,segment,placed_at", "--models-dir", str(tmp_path), "--expectations-dir", str(tmp_path)]
    assert scaffold.main(argv) == 0
    text = (tmp_path / "orders.yaml").read_text()
    line = next(line for line in text.splitlines() if "min_primary:" in line)
    assert "# a ceiling: 0.9 x the rmse of always predicting the mean" in line
    assert load_model_config(tmp_path / "orders.yaml").gate.min_primary == ceiling


def test_label_balance_refuses_a_single_class_batch(tmp_path):
    frame = sample().assign(placed_at=pd.date_range("2026-10-01", periods=300, freq="20min", tz="UTC").astype(str))
    config = ModelConfig.model_validate(declare(frame, "returned"))  # 72 rows a day, ~14 returns
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(scaffold.draft_suite(frame, config)))
    assert validate_dataframe(frame, path, data_name="sample").success
    assert validate_dataframe(sample(seed=1), path, data_name="another batch").success
    single = validate_dataframe(frame.assign(returned=0), path, data_name="no returns at all")
    kinds = {(f["column"], f["expectation_type"]) for f in single.failures}
    assert ("returned", "expect_column_unique_value_count_to_be_between") in kinds
    lopsided = frame.assign(returned=[1] * 3 + [0] * 297)  # 99% one class
    assert not validate_dataframe(lopsided, path, data_name="lopsided").success

    sparse = ModelConfig.model_validate(declare(sample(), "returned"))  # 8 rows a day: often no return
    suite = scaffold.draft_suite(sample(), sparse)
    assert suite["meta"]["label_balance"].startswith("not drafted: a typical batch of 8 rows")
    assert not any(e["type"] == "expect_column_unique_value_count_to_be_between" for e in suite["expectations"])


def test_widened_ranges_keep_the_samples_sign():
    rng = np.random.default_rng(3)
    frame = sample().assign(rate=rng.uniform(0.0, 1.0, 300), loss=lambda f: -f["basket_eur"])
    config = ModelConfig.model_validate(declare(frame, "minutes"))
    ranges = {
        e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for e in scaffold.draft_suite(frame, config)["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    assert ranges["basket_eur"][0] == 0.0 and ranges["distance_km"][0] == 0.0 and ranges["minutes"][0] >= 0.0
    assert ranges["loss"][1] == 0.0 and ranges["loss"][0] < frame["loss"].min()
    assert ranges["rate"] == (0.0, 1.0)
    assert ranges["items"][0] == 0.0  # whole numbers from 1: the lower bound stops at 0, the upper is not capped
    assert ranges["items"][1] > 11


def test_a_two_valued_numeric_column_gets_a_categorical_hint(tmp_path, capsys):
    frame = sample().assign(sex=lambda f: (f["basket_eur"] > 40).astype(int))
    data = tmp_path / "orders.csv"
    frame.to_csv(data, index=False)
    argv = ["orders", "--data", str(data), "--target", "returned", "--id-column", "order_id"]
    argv += ["--drop", "minutes,segment,placed_at", "--models-dir", str(tmp_path), "--expectations-dir", str(tmp_path)]
    assert scaffold.main(argv) == 0
    out = capsys.readouterr().out
    assert "numeric column 'sex' has only 2 distinct values [0, 1]" in out and "--categorical sex" in out
    assert "'items'" not in out  # 11 whole values: a count, not a code
    assert "label balance" not in out  # no timestamp: one batch of 300 rows, balance drafted
    assert load_model_config(tmp_path / "orders.yaml").features[-1].type == "numeric"  # a hint, not a change
    assert scaffold.main([*argv, "--force", "--categorical", "sex"]) == 0
    assert "hint:" not in capsys.readouterr().out
