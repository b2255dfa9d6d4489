"""The reviewed suites accept normal batches and refuse every kind of broken one, readably."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from modelops import batches
from modelops.batches import read_batch, to_csv_bytes
from modelops.config import get_model
from modelops.data import validation
from modelops.data.validation import SuiteError, ValidationFailed, ValidationOutcome, load_suite, validate_dataframe
from modelops.local.datagen import corrupt_batch, generate_batch

DAY = datetime.date(2026, 11, 1)
MODELS = ["churn", "delivery_time"]
ROWS = 1000

#: The expectation each corruption must trip (truncated files never reach GX).
FAILING_EXPECTATION = {
    "nulls_in_required": "expect_column_values_to_not_be_null",
    "unit_change": "expect_column_values_to_be_between",
    "new_column": "expect_table_columns_to_match_set",
    "missing_column": "expect_table_columns_to_match_set",
    "wrong_type": "expect_column_values_to_be_in_type_list",
    "duplicate_ids": "expect_column_values_to_be_unique",
    "out_of_range": "expect_column_values_to_be_between",
}


@pytest.fixture(scope="module")
def context():
    """One ephemeral GX context for the module: the import and set-up cost seconds."""
    return validation.make_context()


@pytest.fixture(scope="module")
def normal() -> dict[str, pd.DataFrame]:
    return {model: generate_batch(model, DAY, ROWS) for model in MODELS}


def _as_raw_file(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """What the pipeline validates: the frame as read back from the raw CSV."""
    return read_batch(to_csv_bytes(df), "csv", name)


def _validate(df: pd.DataFrame, model: str, context, data_name: str = "test-batch") -> ValidationOutcome:
    return validate_dataframe(df, get_model(model).suite_path, data_name=data_name, context=context)


# -- suite files ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_suite_files_are_gx_1x_suites(model: str, context) -> None:
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    raw = json.loads(get_model(model).suite_path.read_text())
    assert raw["name"] == model
    for item in raw["expectations"]:
        get_expectation_impl(item["type"])  # raises ExpectationNotFoundError for unknown types
        assert item.get("notes"), f"{item['type']} on {item['kwargs'].get('column')}: say why in 'notes'"
    # GX's own loading path keeps every expectation (it silently drops invalid ones).
    assert len(gx.ExpectationSuite(**raw).expectations) == len(raw["expectations"])
    assert len(validation.build_suite(load_suite(get_model(model).suite_path)).expectations) == len(raw["expectations"])


@pytest.mark.parametrize("model", MODELS)
def test_suites_agree_with_the_model_config(model: str) -> None:
    config = get_model(model)
    suite = load_suite(config.suite_path)
    by_type: dict[str, list[dict]] = {}
    for item in suite["expectations"]:
        by_type.setdefault(item["type"], []).append(item["kwargs"])
    (columns,) = by_type["expect_table_columns_to_match_set"]
    assert columns["column_set"] == [
        config.data.id_column,
        config.data.timestamp_column,
        *config.feature_names,
        config.target,
    ]
    assert columns["exact_match"] is True
    not_null = {kw["column"]: kw.get("mostly") for kw in by_type["expect_column_values_to_not_be_null"]}
    for feature in config.features:
        assert feature.name in not_null, feature.name
        assert (not_null[feature.name] is not None) == feature.nullable, feature.name
    assert not_null[config.target] is None
    unique = [kw["column"] for kw in by_type["expect_column_values_to_be_unique"]]
    assert unique == [config.data.id_column]
    in_set = {kw["column"] for kw in by_type["expect_column_values_to_be_in_set"]}
    assert set(config.categorical_features) <= in_set
    between = {kw["column"] for kw in by_type["expect_column_values_to_be_between"]}
    assert set(config.numeric_features) <= between
    (rows,) = by_type["expect_table_row_count_to_be_between"]
    assert rows["min_value"] <= 10


def test_bad_suite_files_are_refused_with_the_file_named(tmp_path: Path, context) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(SuiteError, match="broken.json: not valid JSON"):
        load_suite(path)
    path.write_text(json.dumps({"name": "x", "expectations": [{"expectation_type": "expect_x", "kwargs": {}}]}))
    with pytest.raises(SuiteError, match="type"):
        load_suite(path)
    path.write_text(
        json.dumps({"name": "x", "expectations": [{"type": "expect_column_to_be_lovely", "kwargs": {"column": "a"}}]})
    )
    with pytest.raises(SuiteError, match="expect_column_to_be_lovely"):
        validate_dataframe(pd.DataFrame({"a": [1]}), path, data_name="d", context=context)


# -- normal data and scenarios --------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_normal_batches_pass_in_memory_and_as_read_from_csv(model: str, normal, context) -> None:
    outcome = _validate(normal[model], model, context)
    assert outcome.success, validation.summarize_failures(outcome)
    later = generate_batch(model, DAY + datetime.timedelta(days=37), 300, seed=3)
    outcome = _validate(_as_raw_file(later, "raw.csv"), model, context)
    assert outcome.success, validation.summarize_failures(outcome)
    assert outcome.failures == []
    assert outcome.statistics["unsuccessful_expectations"] == 0


@pytest.mark.parametrize(
    ("model", "scenario", "passes"),
    [
        ("churn", "covariate_shift", True),
        ("churn", "concept_shift", True),
        ("churn", "unit_change", False),
        ("churn", "null_column", False),
        ("churn", "new_category", False),
        ("delivery_time", "covariate_shift", True),
        ("delivery_time", "concept_shift", True),
    ],
)
def test_suites_check_validity_not_drift(model: str, scenario: str, passes: bool, context) -> None:
    outcome = _validate(_as_raw_file(generate_batch(model, DAY, ROWS, scenario=scenario), "raw.csv"), model, context)
    assert outcome.success is passes, validation.summarize_failures(outcome)


# -- corruptions ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FAILING_EXPECTATION))
@pytest.mark.parametrize("model", MODELS)
def test_each_corruption_fails_and_the_summary_names_it(model: str, kind: str, normal, context) -> None:
    broken = corrupt_batch(normal[model], kind)
    outcome = _validate(_as_raw_file(broken, f"raw/{model}/bad.csv"), model, context, data_name=f"raw/{model}/bad.csv")
    assert not outcome.success
    failed = {f["expectation_type"] for f in outcome.failures}
    assert FAILING_EXPECTATION[kind] in failed, failed
    summary = validation.summarize_failures(outcome)
    assert f"raw/{model}/bad.csv" in summary
    assert FAILING_EXPECTATION[kind] in summary
    assert f"{len(outcome.failures)} of {outcome.statistics['evaluated_expectations']} expectations" in summary


def test_corruptions_fail_in_memory_too(normal, context) -> None:
    """The in-memory frame (mixed-type object column) is caught as well as the CSV read-back."""
    outcome = _validate(corrupt_batch(normal["churn"], "wrong_type"), "churn", context)
    assert "expect_column_values_to_be_in_type_list" in {f["expectation_type"] for f in outcome.failures}


@pytest.mark.parametrize("model", MODELS)
def test_truncated_csv_never_reaches_validation(model: str, normal) -> None:
    with pytest.raises(batches.BatchReadError, match="truncated"):
        read_batch(corrupt_batch(normal[model], "truncated_file"), "csv", "raw/cut.csv")


def test_summary_shows_column_expected_observed_and_samples(normal, context) -> None:
    outcome = _validate(corrupt_batch(normal["churn"], "out_of_range"), "churn", context, data_name="raw/churn/day.csv")
    (failure,) = outcome.failures
    assert failure["column"] == "tenure_months"
    assert failure["sample_unexpected_values"] == [-3]
    assert failure["unexpected_count"] > 0 and 0 < failure["unexpected_percent"] < 100
    summary = validation.summarize_failures(outcome)
    assert "raw/churn/day.csv: 1 of" in summary
    assert "column 'tenure_months'" in summary and "between 0" in summary and "e.g. -3" in summary

    columns = validation.summarize_failures(_validate(corrupt_batch(normal["churn"], "new_column"), "churn", context))
    assert "unexpected: ['promo_code']" in columns


def test_validation_failed_carries_the_outcome(normal, context) -> None:
    outcome = _validate(corrupt_batch(normal["churn"], "duplicate_ids"), "churn", context)
    error = ValidationFailed(outcome)
    assert error.outcome is outcome
    assert "expect_column_values_to_be_unique" in str(error)


def test_result_is_json_safe(normal, context) -> None:
    outcome = _validate(corrupt_batch(normal["churn"], "nulls_in_required"), "churn", context)
    json.dumps(outcome.result_json, allow_nan=False)
    json.dumps(outcome.to_dict(), allow_nan=False)
    assert outcome.result_json["statistics"] == outcome.statistics
    assert len(outcome.result_json["results"]) == outcome.statistics["evaluated_expectations"]


# -- report ---------------------------------------------------------------------------------


def test_html_report_is_self_contained(normal, context) -> None:
    outcome = _validate(
        corrupt_batch(normal["churn"], "unit_change"), "churn", context, data_name="raw/churn/<day>.csv"
    )
    page = validation.render_data_docs_html(outcome)
    assert page.startswith("<!DOCTYPE html>")
    assert "suite churn" in page and "failed" in page
    assert "raw/churn/&lt;day&gt;.csv" in page  # escaped
    assert "expect_column_values_to_be_between" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("<tr class=") == outcome.statistics["evaluated_expectations"]


# --------------------------------------------------------------------------------------------
# Summary wording (plain failure dicts, no GX run)
# --------------------------------------------------------------------------------------------


def _failure(**overrides) -> dict:
    failure = {
        "expectation_type": "expect_column_values_to_be_between",
        "column": "monthly_charges",
        "kwargs": {"min_value": 0.0, "max_value": 31.380000000000003},
        "observed_value": None,
        "unexpected_count": 1926,
        "unexpected_percent": 100.0,  # GX: of the non-null values
        "element_count": 2000,
        "sample_unexpected_values": [45.120000000000005],
        "exception": None,
        "notes": None,
    }
    return {**failure, **overrides}


def _outcome(failures: list[dict], evaluated: int) -> ValidationOutcome:
    stats = {"evaluated_expectations": evaluated, "unsuccessful_expectations": len(failures)}
    return ValidationOutcome("churn", "batch.csv", False, stats, failures)


def test_summary_counts_the_share_of_all_rows_and_rounds_floats():
    text = validation.summarize_failures(_outcome([_failure()], evaluated=12))
    assert "1926 of 2000 values unexpected (96.3%)" in text, text
    assert "between 0.0 and 31.38" in text and "45.12" in text
    assert "000000" not in text


def test_summary_of_an_unreadable_file_does_not_count_expectations():
    unreadable = _failure(column=None, unexpected_count=None, exception="could not parse the file as csv")
    text = validation.summarize_failures(_outcome([unreadable], evaluated=0))
    assert "1 of 0" not in text and "could not be validated" in text.splitlines()[0], text


def test_summary_names_the_plain_problem_before_the_gx_error():
    missing = _failure(
        unexpected_count=None,
        exception='MetricResolutionError: Error: The column "monthly_charges" in BatchData does not exist.',
    )
    changed = _failure(
        unexpected_count=None, exception="Traceback...\nTypeError: '>=' not supported between 'str' and 'float'"
    )
    text = validation.summarize_failures(_outcome([missing, changed], evaluated=12))
    assert "column 'monthly_charges' is missing from the data" in text, text
    assert "its type may have changed" in text and "Traceback" not in text


def test_summary_names_the_file_when_given():
    text = validation.summarize_failures(_outcome([_failure()], evaluated=12), source="raw/churn/dt=2026-11-17/a.csv")
    assert "  - raw/churn/dt=2026-11-17/a.csv: column 'monthly_charges'" in text, text
    assert "a.csv" not in validation.summarize_failures(_outcome([_failure()], evaluated=12))


# --------------------------------------------------------------------------------------------
# Reuse of GX's set-up between validations (prepared_suite)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def suite_copy(tmp_path: Path) -> Path:
    """The churn suite under a path no other test uses, so prepared-suite counts are this test's."""
    path = tmp_path / "churn.json"
    path.write_bytes(get_model("churn").suite_path.read_bytes())
    return path


@pytest.fixture
def counted_contexts(monkeypatch) -> list:
    """Every GX context validation builds (constructions are counted, never time)."""
    built: list = []
    real = validation.make_context

    def counting():
        built.append(real())
        return built[-1]

    monkeypatch.setattr(validation, "make_context", counting)
    return built


def test_second_validation_with_the_same_suite_reuses_context_suite_and_definition(
    suite_copy: Path, counted_contexts: list, normal
) -> None:
    first = validate_dataframe(normal["churn"], suite_copy, data_name="a")
    prepared = validation.prepared_suite(suite_copy)
    second = validate_dataframe(normal["churn"].head(500), suite_copy, data_name="b")
    assert first.success and second.success
    assert len(counted_contexts) == 1  # one context for both validations
    assert validation.prepared_suite(suite_copy) is prepared  # same suite, data source, batch definition
    assert prepared.context is counted_contexts[0]
    assert list(prepared.context.data_sources.all()) == [f"modelops_{prepared.suite_sha256[:12]}"]
    batch_ids = {o.result_json["results"][0]["expectation_config"]["kwargs"]["batch_id"] for o in (first, second)}
    assert len(batch_ids) == 1
    assert len(prepared.metric_graphs) == 1  # built by the first validation, reused by the second


def test_metric_graphs_are_built_once_per_prepared_suite(suite_copy: Path, normal) -> None:
    before = validation.PREPARE_COUNT["metric_graphs"]
    for rows in (2000, 300, 40):
        validate_dataframe(normal["churn"].head(rows), suite_copy, data_name=f"{rows} rows")
    assert validation.PREPARE_COUNT["metric_graphs"] == before + 1
    validate_dataframe(normal["churn"], suite_copy, data_name="fresh", reuse=False)  # builds its own, keeps none
    assert validation.PREPARE_COUNT["metric_graphs"] == before + 1


def test_an_edited_suite_file_is_prepared_again_not_served_stale(
    suite_copy: Path, counted_contexts: list, normal
) -> None:
    assert validate_dataframe(normal["churn"], suite_copy, data_name="a").success
    raw = json.loads(suite_copy.read_text())
    for item in raw["expectations"]:
        if item["type"] == "expect_column_values_to_be_between" and item["kwargs"]["column"] == "tenure_months":
            item["kwargs"]["max_value"] = 1
    suite_copy.write_text(json.dumps(raw))
    outcome = validate_dataframe(normal["churn"], suite_copy, data_name="a")
    assert not outcome.success
    assert [(f["column"], f["kwargs"]["max_value"]) for f in outcome.failures] == [("tenure_months", 1)]
    assert len(counted_contexts) == 2


def _comparable(outcome: ValidationOutcome) -> dict:
    """The outcome without what names the run (data source, batch id, load time)."""
    result = json.loads(json.dumps(outcome.result_json))
    result["meta"].pop("active_batch_definition")
    result["meta"]["batch_markers"].pop("ge_load_time")
    for item in result["results"]:
        item["expectation_config"]["kwargs"].pop("batch_id")
        # An evaluation error is keyed by its metric's id, which hashes the batch id.
        item["exception_info"] = {
            re.sub(r"metric_domain_kwargs_id='\w+'", "", key): value for key, value in item["exception_info"].items()
        }
    return {
        "success": outcome.success,
        "statistics": outcome.statistics,
        "failures": outcome.failures,
        "result": result,
    }


@pytest.mark.parametrize("kind", [None, "out_of_range", "missing_column", "wrong_type", "duplicate_ids", "new_column"])
def test_verdicts_and_failure_details_are_identical_with_and_without_reuse(kind, suite_copy: Path, normal) -> None:
    frame = normal["churn"] if kind is None else corrupt_batch(normal["churn"], kind)
    frame = _as_raw_file(frame, "raw.csv")
    # The reused path is warmed by a file of another kind: what it keeps must not depend on the data.
    other = corrupt_batch(normal["churn"], "missing_column") if kind is None else normal["churn"].head(50)
    validate_dataframe(_as_raw_file(other, "other.csv"), suite_copy, data_name="warm-up")
    reused = validate_dataframe(frame, suite_copy, data_name="raw.csv")
    fresh = validate_dataframe(frame, suite_copy, data_name="raw.csv", reuse=False)
    assert _comparable(reused) == _comparable(fresh)
    assert validation.summarize_failures(reused) == validation.summarize_failures(fresh)
    assert validation.render_data_docs_html(reused).count("fail") == validation.render_data_docs_html(fresh).count(
        "fail"
    )
    assert reused.success is (kind is None)
