"""The synthetic batches are deterministic, match the model configs, and drift or break as named."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.batches import BatchReadError, read_batch, to_csv_bytes
from modelops.config import get_model
from modelops.local import datagen
from modelops.local.datagen import corrupt_batch, generate_batch

DAY = datetime.date(2026, 11, 1)
MODELS = ["churn", "delivery_time"]
INCLUDE_DIR = Path(datagen.__file__).resolve().parents[2]


def _features(df: pd.DataFrame, model: str) -> pd.DataFrame:
    return df[get_model(model).feature_names]


def _x(df: pd.DataFrame, columns: list[str], like: pd.DataFrame | None = None) -> pd.DataFrame:
    encoded = pd.get_dummies(df[columns], dummy_na=True, dtype=float)
    return encoded if like is None else encoded.reindex(columns=like.columns, fill_value=0.0)


# -- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("generator", MODELS)
def test_same_arguments_give_identical_frames(generator: str) -> None:
    first = generate_batch(generator, DAY, 300, seed=7)
    second = generate_batch(generator, DAY, 300, seed=7)
    pd.testing.assert_frame_equal(first, second)
    assert to_csv_bytes(first) == to_csv_bytes(second)


@pytest.mark.parametrize("generator", MODELS)
def test_day_and_seed_change_the_data(generator: str) -> None:
    base = to_csv_bytes(generate_batch(generator, DAY, 200))
    assert to_csv_bytes(generate_batch(generator, DAY + datetime.timedelta(days=1), 200)) != base
    assert to_csv_bytes(generate_batch(generator, DAY, 200, seed=1)) != base


def test_output_does_not_depend_on_the_process_hash_seed() -> None:
    """Python's hash() is salted per process; a fresh interpreter must produce the same bytes."""
    expected = hashlib.sha256(to_csv_bytes(generate_batch("churn", DAY, 200, scenario="new_category"))).hexdigest()
    code = (
        "import datetime, hashlib, sys\n"
        "from modelops.batches import to_csv_bytes\n"
        "from modelops.local.datagen import generate_batch\n"
        "df = generate_batch('churn', datetime.date(2026, 11, 1), 200, scenario='new_category')\n"
        "sys.stdout.write(hashlib.sha256(to_csv_bytes(df)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(INCLUDE_DIR)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout == expected


def test_datetime_day_is_treated_as_its_date() -> None:
    as_datetime = generate_batch("churn", datetime.datetime(2026, 11, 1, 15, 30), 50)
    pd.testing.assert_frame_equal(as_datetime, generate_batch("churn", DAY, 50))


# -- schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_columns_are_the_config_schema(model: str) -> None:
    config = get_model(model)
    df = generate_batch(config.data.generator, DAY, 200)
    assert list(df.columns) == [
        config.data.id_column,
        config.data.timestamp_column,
        *config.feature_names,
        config.target,
    ]
    for feature in config.features:
        is_numeric = pd.api.types.is_numeric_dtype(df[feature.name])
        assert is_numeric == (feature.type == "numeric"), feature.name


@pytest.mark.parametrize("model", MODELS)
def test_non_nullable_columns_have_no_nulls(model: str) -> None:
    config = get_model(model)
    df = generate_batch(config.data.generator, DAY, 3000)
    required = [f.name for f in config.features if not f.nullable]
    required += [config.data.id_column, config.data.timestamp_column, config.target]
    assert df[required].notna().all().all()


def test_churn_null_rates_follow_the_description() -> None:
    df = pd.concat([generate_batch("churn", DAY + datetime.timedelta(days=i), 2000) for i in range(3)])
    rates = df.isna().mean()
    assert 0.008 < rates["total_charges"] < 0.03
    assert 0.025 < rates["avg_session_minutes"] < 0.055
    assert 0.01 < rates["payment_method"] < 0.03
    assert df.loc[df["tenure_months"] == 0, "total_charges"].isna().all()
    assert (df["tenure_months"] == 0).any()


def test_churn_values_are_in_their_documented_ranges() -> None:
    df = generate_batch("churn", DAY, 3000)
    assert df["tenure_months"].between(0, 72).all() and df["tenure_months"].dtype == "int64"
    assert df["monthly_charges"].between(18, 120).all()
    assert df["support_calls"].between(0, 15).all() and df["support_calls"].dtype == "int64"
    assert (df["avg_session_minutes"].dropna() > 0).all()
    assert set(df["contract"]) == set(datagen.CONTRACTS)
    assert set(df["plan"]) == set(datagen.PLANS)
    assert set(df["payment_method"].dropna()) == set(datagen.PAYMENT_METHODS)
    assert set(df["region"]) == set(datagen.REGIONS)
    assert set(df["churned"]) == {0, 1}
    # Premium costs more than basic: charges follow the plan.
    by_plan = df.groupby("plan")["monthly_charges"].mean()
    assert by_plan["basic"] < by_plan["standard"] < by_plan["premium"]
    # total_charges is about tenure x monthly_charges.
    ratio = (df["total_charges"] / (df["tenure_months"] * df["monthly_charges"])).dropna()
    assert ratio.between(0.8, 1.2).mean() > 0.99


def test_delivery_values_are_in_their_documented_ranges() -> None:
    df = generate_batch("delivery_time", DAY, 3000)
    assert set(df["courier_type"]) == set(datagen.COURIER_TYPES)
    assert set(df["weather"]) == set(datagen.WEATHER)
    assert (df["distance_km"] > 0).all() and df["items"].ge(1).all()
    assert (df["hour_of_day"] == df["ordered_at"].dt.hour).all()
    assert (df["delivery_minutes"] > 0).all()


@pytest.mark.parametrize("model", MODELS)
def test_ids_are_unique_within_and_across_days_and_times_stay_in_the_day(model: str) -> None:
    config = get_model(model)
    days = [DAY, DAY + datetime.timedelta(days=1)]
    frames = [generate_batch(config.data.generator, day, 500) for day in days]
    ids = pd.concat([f[config.data.id_column] for f in frames])
    assert ids.is_unique
    for day, frame in zip(days, frames, strict=True):
        times = frame[config.data.timestamp_column]
        assert str(times.dt.tz) == "UTC"
        assert (times.dt.date == day).all()
        assert times.is_monotonic_increasing


def test_churn_label_balance() -> None:
    means = [generate_batch("churn", DAY + datetime.timedelta(days=i), 2000)["churned"].mean() for i in range(5)]
    assert all(0.2 <= m <= 0.32 for m in means), means


# -- learnability ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def churn_model():
    """A small gradient-boosting model on three days of normal churn data, shared by tests."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = pd.concat([generate_batch("churn", DAY - datetime.timedelta(days=i), 1000) for i in range(1, 4)])
    features = get_model("churn").feature_names
    x_train = _x(train, features)
    model = HistGradientBoostingClassifier(random_state=0).fit(x_train, train["churned"])
    return model, train, x_train, features


def test_churn_label_is_learnable_and_non_linear(churn_model) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    model, train, x_train, features = churn_model
    test = generate_batch("churn", DAY, 2000)
    x_test = _x(test, features, like=x_train)
    boosted = roc_auc_score(test["churned"], model.predict_proba(x_test)[:, 1])

    mean, std = x_train.mean(), x_train.std().replace(0.0, 1.0)
    linear = LogisticRegression(max_iter=2000).fit(((x_train - mean) / std).fillna(0.0), train["churned"])
    linear_auc = roc_auc_score(test["churned"], linear.predict_proba(((x_test - mean) / std).fillna(0.0))[:, 1])

    assert boosted > 0.75
    assert 0.7 < linear_auc < boosted - 0.02, (linear_auc, boosted)


def test_delivery_time_is_learnable_below_the_gate() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import mean_squared_error

    features = get_model("delivery_time").feature_names
    train = pd.concat([generate_batch("delivery_time", DAY - datetime.timedelta(days=i), 1000) for i in range(1, 4)])
    test = generate_batch("delivery_time", DAY, 1000)
    x_train = _x(train, features)
    model = HistGradientBoostingRegressor(random_state=0).fit(x_train, train["delivery_minutes"])
    rmse = mean_squared_error(test["delivery_minutes"], model.predict(_x(test, features, like=x_train))) ** 0.5
    assert rmse < get_model("delivery_time").gate.min_primary * 0.6


# -- scenarios ------------------------------------------------------------------------------


def test_every_generator_has_described_scenarios() -> None:
    assert set(datagen.GENERATORS) == set(datagen.SCENARIOS) == set(MODELS)
    assert {"covariate_shift", "new_category", "concept_shift", "unit_change", "null_column"} <= set(
        datagen.SCENARIOS["churn"]
    )
    assert {"covariate_shift", "concept_shift"} <= set(datagen.SCENARIOS["delivery_time"])
    for scenarios in datagen.SCENARIOS.values():
        assert all(isinstance(text, str) and text and "\n" not in text for text in scenarios.values())


def test_unknown_scenario_and_generator_name_the_known_ones() -> None:
    with pytest.raises(ValueError, match="covariate_shift"):
        generate_batch("churn", DAY, 10, scenario="meteor_strike")
    with pytest.raises(ValueError, match="delivery_time"):
        generate_batch("fraud", DAY, 10)


@pytest.fixture(scope="module")
def churn_normal() -> pd.DataFrame:
    return generate_batch("churn", DAY, 3000)


def test_churn_covariate_shift_raises_charges_by_a_quarter(churn_normal: pd.DataFrame) -> None:
    shifted = generate_batch("churn", DAY, 3000, scenario="covariate_shift")
    ratio = shifted["monthly_charges"].mean() / churn_normal["monthly_charges"].mean()
    assert 1.2 < ratio < 1.3
    pd.testing.assert_series_equal(shifted["tenure_months"], churn_normal["tenure_months"])
    pd.testing.assert_series_equal(shifted["plan"], churn_normal["plan"])


def test_churn_new_category_adds_enterprise_plans(churn_normal: pd.DataFrame) -> None:
    shifted = generate_batch("churn", DAY, 3000, scenario="new_category")
    share = (shifted["plan"] == "enterprise").mean()
    assert 0.12 < share < 0.18
    assert set(shifted["plan"]) == {*datagen.PLANS, "enterprise"}
    kept = shifted["plan"] != "enterprise"
    pd.testing.assert_series_equal(shifted.loc[kept, "plan"], churn_normal.loc[kept, "plan"])


def test_churn_concept_shift_keeps_features_and_breaks_the_old_model(churn_model, churn_normal: pd.DataFrame) -> None:
    from sklearn.metrics import roc_auc_score

    model, _, x_train, features = churn_model
    shifted = generate_batch("churn", DAY, 3000, scenario="concept_shift")
    pd.testing.assert_frame_equal(_features(shifted, "churn"), _features(churn_normal, "churn"))
    assert (shifted["churned"] != churn_normal["churned"]).mean() > 0.15
    assert 0.1 < shifted["churned"].mean() < 0.4
    before = roc_auc_score(churn_normal["churned"], model.predict_proba(_x(churn_normal, features, like=x_train))[:, 1])
    after = roc_auc_score(shifted["churned"], model.predict_proba(_x(shifted, features, like=x_train))[:, 1])
    assert after < before - 0.15, (before, after)


def test_churn_data_bug_scenarios(churn_normal: pd.DataFrame) -> None:
    cents = generate_batch("churn", DAY, 3000, scenario="unit_change")
    np.testing.assert_allclose(cents["monthly_charges"], churn_normal["monthly_charges"] * 100, atol=0.5)
    pd.testing.assert_series_equal(cents["churned"], churn_normal["churned"])  # a data bug, not a new concept
    nulls = generate_batch("churn", DAY, 3000, scenario="null_column")
    assert nulls["avg_session_minutes"].isna().all()
    pd.testing.assert_frame_equal(
        nulls.drop(columns="avg_session_minutes"), churn_normal.drop(columns="avg_session_minutes")
    )


def test_delivery_scenarios() -> None:
    normal = generate_batch("delivery_time", DAY, 2000)
    farther = generate_batch("delivery_time", DAY, 2000, scenario="covariate_shift")
    assert 1.3 < farther["distance_km"].mean() / normal["distance_km"].mean() < 1.4
    slower = generate_batch("delivery_time", DAY, 2000, scenario="concept_shift")
    pd.testing.assert_frame_equal(_features(slower, "delivery_time"), _features(normal, "delivery_time"))
    assert slower["delivery_minutes"].mean() > normal["delivery_minutes"].mean() * 1.1
    drones = generate_batch("delivery_time", DAY, 2000, scenario="new_category")
    assert 0.1 < (drones["courier_type"] == "drone").mean() < 0.2
    metres = generate_batch("delivery_time", DAY, 2000, scenario="unit_change")
    np.testing.assert_allclose(metres["distance_km"], normal["distance_km"] * 1000, atol=0.5)
    assert generate_batch("delivery_time", DAY, 100, scenario="null_column")["distance_km"].isna().all()


# -- corruptions ----------------------------------------------------------------------------


@pytest.mark.parametrize("generator", MODELS)
def test_corruptions_do_what_they_say_and_leave_the_input_alone(generator: str) -> None:
    df = generate_batch(generator, DAY, 400)
    before = df.copy()
    schema = datagen.SCHEMAS[generator]
    broken = {kind: corrupt_batch(df, kind) for kind in datagen.CORRUPTIONS}
    pd.testing.assert_frame_equal(df, before)

    assert broken["nulls_in_required"][schema.required_numeric].isna().any()
    assert (broken["unit_change"][schema.unit_column] >= df[schema.unit_column] * 99).all()
    assert "promo_code" in broken["new_column"].columns
    assert schema.droppable not in broken["missing_column"].columns
    assert broken["wrong_type"][schema.unit_column].map(lambda v: isinstance(v, str)).any()
    assert not broken["duplicate_ids"][schema.id_column].is_unique
    assert (broken["out_of_range"][schema.required_numeric] < 0).any()

    truncated = broken["truncated_file"]
    assert isinstance(truncated, bytes) and not truncated.endswith(b"\n")
    header, last = truncated.split(b"\n")[0], truncated.split(b"\n")[-1]
    assert last.count(b",") < header.count(b",")
    assert corrupt_batch(df, "truncated_file") == truncated  # deterministic too


def test_unknown_corruption_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="duplicate_ids"):
        corrupt_batch(generate_batch("churn", DAY, 10), "cosmic_rays")


# -- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", MODELS)
def test_csv_round_trip(generator: str) -> None:
    df = generate_batch(generator, DAY, 300)
    data = to_csv_bytes(df)
    schema = datagen.SCHEMAS[generator]
    assert data.splitlines()[1].split(b",")[1].endswith(b"Z")  # ISO 8601 UTC
    back = read_batch(data, "csv", "raw/x.csv")
    back[schema.timestamp_column] = pd.to_datetime(back[schema.timestamp_column], utc=True)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_parquet_is_read() -> None:
    df = generate_batch("churn", DAY, 100)
    buffer = io.BytesIO()
    df.to_parquet(buffer)
    pd.testing.assert_frame_equal(read_batch(buffer.getvalue(), "parquet", "raw/x.parquet"), df)


@pytest.mark.parametrize(
    ("data", "file_format", "problem"),
    [
        (b"", "csv", "empty"),
        (b"  \n", "csv", "empty"),
        (b"customer_id,event_time\n", "csv", "no data rows"),
        (b"a,b,c\n1,2,3\n4,5", "csv", "truncated"),
        (b"a,b\n1,2,3\n", "csv", "unreadable CSV"),
        (b"\xff\xfe\x00garbage", "csv", "not UTF-8"),
        (b"PAR1 not really parquet", "parquet", "unreadable parquet"),
        (b"a,b\n1,2\n", "json", "unsupported file format"),
    ],
)
def test_unusable_files_raise_batch_read_error_naming_the_source(data: bytes, file_format: str, problem: str) -> None:
    with pytest.raises(BatchReadError, match=problem) as info:
        read_batch(data, file_format, "s3://bucket/raw/churn/2026-11-01.csv")
    assert "s3://bucket/raw/churn/2026-11-01.csv" in str(info.value)


@pytest.mark.parametrize("generator", MODELS)
def test_truncated_batch_is_detected(generator: str) -> None:
    truncated = corrupt_batch(generate_batch(generator, DAY, 200), "truncated_file")
    with pytest.raises(BatchReadError, match="truncated file: the last row has 3 of"):
        read_batch(truncated, "csv", "raw/part.csv")


def test_quoted_last_row_is_checked_as_a_record() -> None:
    complete = b'a,b,c\n1,"x\ny",3\n'
    assert read_batch(complete, "csv", "ok.csv").shape == (1, 3)
    with pytest.raises(BatchReadError, match="truncated"):
        read_batch(b'a,b,c\n1,2,3\n4,"x\ny"', "csv", "cut.csv")


# -- CLI ------------------------------------------------------------------------------------


def test_cli_writes_the_same_csv_as_the_library(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert (
        datagen.main(["--generator", "churn", "--day", "2026-11-01", "--rows", "25", "--scenario", "unit_change"]) == 0
    )
    assert capsysbinary.readouterr().out == to_csv_bytes(generate_batch("churn", DAY, 25, scenario="unit_change"))


def test_cli_lists_and_refuses_unknown_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert datagen.main(["--list"]) == 0
    assert "concept_shift" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        datagen.main(["--generator", "churn", "--day", "2026-11-01", "--scenario", "nope"])
    assert "known scenarios" in capsys.readouterr().err
