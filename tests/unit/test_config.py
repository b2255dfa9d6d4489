"""Model declarations: the shipped ones parse; every kind of mistake names file, field, problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from modelops.config import (
    ConfigError,
    ModelNotDeclared,
    get_model,
    load_all_models,
    load_model_config,
    load_models_and_errors,
)

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "models"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def valid_dict(name: str = "mdl") -> dict:
    return {
        "name": name,
        "problem_type": "binary_classification",
        "target": "y",
        "features": [{"name": "a", "type": "numeric"}, {"name": "c", "type": "categorical"}],
        "metrics": {"primary": "roc_auc"},
    }


def test_shipped_models_parse():
    models = load_all_models(SHIPPED)
    assert {"churn", "delivery_time"} <= set(models)
    churn = models["churn"]
    assert churn.is_classifier and churn.primary_higher_is_better
    assert churn.raw_prefix == "raw/churn/"
    assert "plan" in churn.categorical_features and "tenure_months" in churn.numeric_features
    regression = models["delivery_time"]
    assert not regression.is_classifier and not regression.primary_higher_is_better
    for model in models.values():
        assert model.suite_path.exists(), f"{model.name} has no expectation suite at {model.suite_path}"


def test_minimal_config_gets_defaults(tmp_path):
    path = write(tmp_path, "mdl", yaml.safe_dump(valid_dict()))
    config = load_model_config(path)
    assert config.training.candidates == ("linear", "random_forest", "hist_gradient_boosting")
    assert config.schedule.monitor == "@daily"
    assert config.raw_prefix == "raw/mdl/"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d.update(problem_type="clustering"), "problem_type", "binary_classification"),
        (lambda d: d.update(target=""), "target", "at least 1 character"),
        (lambda d: d.update(features=[]), "features", "at least 1 item"),
        (lambda d: d["features"].append({"name": "a", "type": "numeric"}), "features", "listed twice: ['a']"),
        (
            lambda d: d["features"].append({"name": "z", "type": "text"}),
            "features.2.type",
            "'numeric' or 'categorical'",
        ),
        (
            lambda d: d.update(metrics={"primary": "rmse"}),
            "metrics.primary",
            "'rmse' is not a binary_classification metric",
        ),
        (lambda d: d.update(training={"window_days": 0}), "training.window_days", "greater than or equal to 1"),
        (lambda d: d.update(training={"candidates": ["svm"]}), "training.candidates", "unknown candidate(s) ['svm']"),
        (lambda d: d.update(gate={"slice_column": "a"}), "gate.slice_column", "'a' is not a categorical feature"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs are not permitted"),
        (lambda d: d.update(drift={"p_value": 2}), "drift.p_value", "less than 1"),
        (lambda d: d.update(target="a"), "target", "also listed as a feature"),
    ],
)
def test_invalid_config_names_file_field_and_problem(tmp_path, change, field, problem):
    data = valid_dict()
    change(data)
    path = write(tmp_path, "mdl", yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_model_config(path)
    message = str(error.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert problem in message


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"mdl\.yaml: not valid YAML"):
        load_model_config(write(tmp_path, "mdl", "name: [unclosed\n"))
    with pytest.raises(ConfigError, match="expected a mapping of fields at the top level, got list"):
        load_model_config(write(tmp_path, "mdl", "- a\n- b\n"))


def test_name_must_match_file(tmp_path):
    path = write(tmp_path, "other", yaml.safe_dump(valid_dict("mdl")))
    with pytest.raises(ConfigError, match="field 'name': 'mdl' must match the file name 'other'"):
        load_model_config(path)


def test_one_bad_file_does_not_hide_the_good_ones(tmp_path):
    write(tmp_path, "good", yaml.safe_dump(valid_dict("good")))
    bad = valid_dict("bad")
    bad["metrics"] = {"primary": "nonsense"}
    write(tmp_path, "bad", yaml.safe_dump(bad))
    models, errors = load_models_and_errors(tmp_path)
    assert [m.name for m in models] == ["good"]
    assert len(errors) == 1 and "bad.yaml" in str(errors[0])
    assert errors[0].path == tmp_path / "bad.yaml"  # what the Models page lists the file by
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_all_models(tmp_path)


def test_unknown_model_lists_known(tmp_path):
    write(tmp_path, "good", yaml.safe_dump(valid_dict("good")))
    with pytest.raises(ConfigError, match=r"unknown model 'nope'.*\['good'\]"):
        get_model("nope", tmp_path)
    # Undeclared is also a KeyError (a lookup that found nothing), with its message unquoted.
    with pytest.raises(KeyError) as caught:
        get_model("nope", tmp_path)
    assert isinstance(caught.value, ModelNotDeclared) and str(caught.value).startswith("unknown model 'nope'")
