"""A model's own code (``code:`` in its declaration): what the declaration refuses, and how the
loader imports and calls their package, every failure located in *their* file and line.

Each test writes a throw-away package into a temporary models folder (``MODELOPS_MODELS_DIR``)
under a name of its own, so no two tests share a module in ``sys.modules``."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.own_code import ADD_GAP, line_of

from modelops.config import ConfigError, ModelConfig, load_model_config
from modelops.training.search_spaces import search_space_for
from modelops.usercode import loader
from modelops.usercode.loader import UserCodeError

DECLARATION: dict[str, Any] = {
    "name": "own",
    "problem_type": "binary_classification",
    "target": "y",
    "features": [
        {"name": "x0", "type": "numeric"},
        {"name": "x1", "type": "numeric"},
        {"name": "segment", "type": "categorical"},
    ],
    "training": {"candidates": ["linear", "own_logit"], "random_seed": 7},
    "metrics": {"primary": "roc_auc"},
}
CODE: dict[str, Any] = {
    "package": "own_pkg",
    "feature_steps": ["own_pkg.features:add_gap"],
    "engineered_features": [{"name": "gap", "type": "numeric"}],
    "candidates": [{"name": "own_logit", "factory": "own_pkg.candidates:make_logit"}],
    "trusted_types": ["own_pkg.features.AddGap"],
}


def _model(package: str, **code: Any) -> ModelConfig:
    """The declaration with ``code: {package, **code}``, training ``linear`` and their candidates."""
    training = {"candidates": ["linear", *(c["name"] for c in code.get("candidates", ()))], "random_seed": 7}
    return ModelConfig.model_validate(DECLARATION | {"training": training, "code": {"package": package, **code}})


# -- the declaration's code: section -----------------------------------------------------------


def _declare(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    raw = copy.deepcopy(DECLARATION | {"code": CODE})
    change(raw)
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _set(*keys: Any, value: Any) -> Callable[[dict], None]:
    def change(raw: dict) -> None:
        target = raw
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def test_the_example_declaration_with_code_is_valid(tmp_path):
    """The baseline every refusal below changes in one place."""
    config = load_model_config(_declare(tmp_path, lambda raw: None))
    assert set(config.custom_candidates) == {"own_logit"}
    assert config.candidate_names >= {"linear", "own_logit"}
    assert config.model_numeric_features == ["x0", "x1", "gap"]


def test_an_unknown_candidate_is_refused_naming_the_models_own_choices(tmp_path):
    path = _declare(tmp_path, _set("training", "candidates", value=["linear", "own_logti"]))
    with pytest.raises(ConfigError) as refused:
        load_model_config(path)
    message = str(refused.value)
    assert str(path) in message and "field 'training.candidates'" in message and "['own_logti']" in message
    assert re.search(r"choose from \[[^\]]*'own_logit'", message), message  # their candidate is offered
    assert re.search(r"choose from \[[^\]]*'lightgbm'", message), message  # beside the built-in ones


@pytest.mark.parametrize("name", ["lightgbm", "linear", "submitted"])
def test_a_custom_candidate_named_like_a_built_in_one_is_refused(tmp_path, name):
    def change(raw: dict) -> None:
        raw["code"]["candidates"][0]["name"] = name
        raw["training"]["candidates"] = ["linear"]

    with pytest.raises(ConfigError, match=rf"field 'code\.candidates\.0\.name': '{name}' is a built-in candidate name"):
        load_model_config(_declare(tmp_path, change))


@pytest.mark.parametrize(
    "change, where",
    [
        (_set("code", "candidates", 0, "factory", value="other_pkg.candidates:make_logit"), "candidates.0.factory"),
        (_set("code", "feature_steps", value=["sklearn.preprocessing:StandardScaler"]), "feature_steps.0"),
        (_set("code", "candidates", 0, "search_space", value="other_pkg.spaces:SPACE"), "candidates.0.search_space"),
    ],
    ids=["factory", "feature_step", "search_space"],
)
def test_a_reference_outside_the_declared_package_is_refused(tmp_path, change, where):
    """The message names the entry's place in the declaration (``code.<where>``) and the reference."""
    with pytest.raises(ConfigError) as refused:
        load_model_config(_declare(tmp_path, change))
    message = str(refused.value)
    assert f"field 'code': {where}: '" in message
    assert "is outside the declared code.package 'own_pkg'" in message


@pytest.mark.parametrize(
    "where, reference, field_name",
    [
        (("candidates", 0, "factory"), "own_pkg.candidates.make_logit", "code': candidates.0.factory: "),
        (("feature_steps", 0), "own_pkg/features.py:add_gap", "code': feature_steps.0: "),
        (("candidates", 0, "search_space"), "own_pkg.spaces:", "code.candidates.0.search_space"),
    ],
    ids=["factory-without-colon", "feature-step-as-a-path", "search-space-without-name"],
)
def test_a_reference_that_is_not_package_module_name_is_refused(tmp_path, where, reference, field_name):
    with pytest.raises(ConfigError) as refused:
        load_model_config(_declare(tmp_path, _set("code", *where, value=reference)))
    message = str(refused.value)
    assert f"field '{field_name}" in message
    assert f"'{reference}' is not a reference of the form 'package.module:name'" in message


@pytest.mark.parametrize("entry", ["*", "foo", "own_pkg.*"])
def test_trusted_types_must_name_each_type_fully(tmp_path, entry):
    """Never "trust everything": a wildcard or a bare name is refused, naming the entry."""
    with pytest.raises(ConfigError) as refused:
        load_model_config(_declare(tmp_path, _set("code", "trusted_types", value=[entry])))
    message = str(refused.value)
    assert "field 'code'" in message and f"trusted_types.0: '{entry}' is not a fully qualified name" in message


@pytest.mark.parametrize("name", ["x0", "segment", "y"], ids=["numeric-feature", "categorical-feature", "target"])
def test_an_engineered_feature_named_like_a_declared_column_is_refused(tmp_path, name):
    path = _declare(tmp_path, _set("code", "engineered_features", value=[{"name": name, "type": "numeric"}]))
    with pytest.raises(ConfigError) as refused:
        load_model_config(path)
    message = str(refused.value)
    assert f"field 'code.engineered_features': '{name}' is already a declared feature or the target" in message


def test_engineered_features_without_feature_steps_are_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_model_config(_declare(tmp_path, _set("code", "feature_steps", value=[])))
    message = str(refused.value)
    assert "field 'code'" in message and "engineered_features: declared, but no feature_steps add them" in message


# -- importing their code ------------------------------------------------------------------------

GOOD_CANDIDATES = """\
    from sklearn.linear_model import LogisticRegression


    def make_logit(C=1.0):
        return LogisticRegression(C=C)
    """


def test_a_syntax_error_in_their_module_names_the_model_the_file_and_the_line(models):
    source = """\
        import pandas as pd


        def add_gap(:
            return None
        """
    package = models.package({"features.py": source, "candidates.py": GOOD_CANDIDATES})
    model = _model(package, feature_steps=[f"{package}.features:add_gap"])
    features = models.path / package / "features.py"
    with pytest.raises(UserCodeError) as failed:
        loader.resolve(model, f"{package}.features:add_gap", "feature step")
    error = failed.value
    assert Path(error.file) == features and error.line == line_of(source, "def add_gap(:")
    message = str(error)
    assert message.startswith("model 'own': importing") and f"{features}, line 4" in message
    assert "SyntaxError" in message
    # The DAG import check (declared_code_errors) reports the same error, and only it.
    assert [str(e) for e in loader.declared_code_errors(model)] == [message]


def test_an_exception_at_import_time_names_their_file_and_the_line_that_raised(models):
    source = """\
        import os

        THRESHOLD = float(os.environ.get("GAP_THRESHOLD", "0.5"))
        raise RuntimeError("no lookup table next to the code")
        """
    package = models.package({"features.py": source})
    model = _model(package, feature_steps=[f"{package}.features:add_gap"])
    with pytest.raises(UserCodeError) as failed:
        loader.resolve(model, f"{package}.features:add_gap", "feature step")
    error = failed.value
    assert Path(error.file) == models.path / package / "features.py"
    assert error.line == line_of(source, "raise RuntimeError") == 4
    assert error.problem == "RuntimeError: no lookup table next to the code"
    assert "no lookup table" in error.trace and error.to_dict()["line"] == 4


def test_a_missing_attribute_names_the_module_and_the_attribute(models):
    package = models.package({"features.py": ADD_GAP, "candidates.py": GOOD_CANDIDATES})
    model = _model(
        package,
        feature_steps=[f"{package}.features:add_gap"],
        candidates=[{"name": "own_logit", "factory": f"{package}.candidates:make_logistic"}],
    )
    errors = loader.declared_code_errors(model)
    assert len(errors) == 1
    error = errors[0]
    assert error.problem == f"module '{package}.candidates' has no 'make_logistic'"
    assert Path(error.file) == models.path / package / "candidates.py"
    assert "factory of candidate 'own_logit'" in str(error)


def test_their_declared_code_that_imports_has_no_errors(models):
    """The contrast of the tests around it: a package that imports is reported clean."""
    package = models.package({"features.py": ADD_GAP, "candidates.py": GOOD_CANDIDATES})
    model = _model(
        package,
        feature_steps=[f"{package}.features:add_gap"],
        candidates=[{"name": "own_logit", "factory": f"{package}.candidates:make_logit"}],
    )
    assert loader.declared_code_errors(model) == []
    assert loader.package_dir(model) == (models.path / package).resolve()


def test_a_missing_package_is_reported_naming_the_folder_it_was_looked_for_in(models):
    model = _model("own_nowhere_to_be_found", feature_steps=["own_nowhere_to_be_found.features:add_gap"])
    errors = loader.declared_code_errors(model)
    assert len(errors) == 1
    message = str(errors[0])
    assert "code.package 'own_nowhere_to_be_found'" in message
    assert f"{models.path}/own_nowhere_to_be_found/__init__.py" in message


@pytest.mark.parametrize(
    "returned", ["{'C': C}", "'LogisticRegression'", "None"], ids=["a-dict", "a-string", "nothing"]
)
def test_a_factory_that_returns_no_estimator_is_refused_clearly(models, returned):
    package = models.package({"candidates.py": f"def make_logit(C=1.0):\n    return {returned}\n"})
    model = _model(
        package,
        candidates=[{"name": "own_logit", "factory": f"{package}.candidates:make_logit"}],
    )
    with pytest.raises(UserCodeError, match=r"not a scikit-learn estimator \(needs fit, predict and get_params"):
        loader.make_estimator(model, model.custom_candidates["own_logit"], {"C": 1.0})


def test_a_feature_step_that_returns_no_transformer_is_refused_clearly(models):
    package = models.package({"features.py": "def add_gap():\n    return lambda frame: frame\n"})
    model = _model(package, feature_steps=[f"{package}.features:add_gap"])
    with pytest.raises(
        UserCodeError, match=r"returned function, not a transformer \(needs fit, transform and get_params"
    ):
        loader.feature_steps(model)


RECORDING_CANDIDATES = """\
    from sklearn.linear_model import LogisticRegression

    CALLS = []


    def with_both(C=1.0, random_seed=None, problem_type=None):
        CALLS.append({"C": C, "random_seed": random_seed, "problem_type": problem_type})
        return LogisticRegression(C=C)


    def with_seed_only(C=1.0, random_seed=None):
        CALLS.append({"C": C, "random_seed": random_seed})
        return LogisticRegression(C=C)


    def with_neither(C=1.0):
        CALLS.append({"C": C})
        return LogisticRegression(C=C)


    def with_any(**settings):
        CALLS.append(dict(settings))
        return LogisticRegression(**settings)


    def with_seed_and_any(random_seed=None, **settings):
        CALLS.append({"random_seed": random_seed, **settings})
        return LogisticRegression(random_state=random_seed, **settings)
    """


@pytest.mark.parametrize(
    "factory, received",
    [
        ("with_both", {"C": 0.5, "random_seed": 7, "problem_type": "binary_classification"}),
        ("with_seed_only", {"C": 0.5, "random_seed": 7}),
        ("with_neither", {"C": 0.5}),
        ("with_any", {"C": 0.5}),  # **settings go to the estimator: nothing is slipped in
        ("with_seed_and_any", {"random_seed": 7, "C": 0.5}),
    ],
)  # fmt: skip
def test_a_factory_gets_the_seed_and_problem_type_only_if_its_signature_names_them(models, factory, received):
    package = models.package({"candidates.py": RECORDING_CANDIDATES})
    model = _model(
        package,
        candidates=[{"name": "own_logit", "factory": f"{package}.candidates:{factory}"}],
    )
    estimator = loader.make_estimator(model, model.custom_candidates["own_logit"], {"C": 0.5})
    assert estimator.C == 0.5
    assert [received] == sys.modules[f"{package}.candidates"].CALLS


SPACES = """\
    SEARCH_SPACE = [{"C": 0.5}, {"C": 2.0}]
    NOT_A_LIST = {"C": 0.5}


    def grid(random_seed):
        return [{"C": 1.0, "seed_used": random_seed}]
    """


def _model_with_space(models, reference: str) -> ModelConfig:
    """A model whose candidate ``own_logit`` takes its search space from ``spaces:<reference>``."""
    package = models.package({"candidates.py": GOOD_CANDIDATES, "spaces.py": SPACES})
    candidate = {"name": "own_logit", "factory": f"{package}.candidates:make_logit"}
    return _model(package, candidates=[candidate | {"search_space": f"{package}.spaces:{reference}"}])


@pytest.mark.parametrize(
    "reference, expected",
    [("SEARCH_SPACE", [{"C": 0.5}, {"C": 2.0}]), ("grid", [{"C": 1.0, "seed_used": 7}])],
    ids=["a-list", "a-callable"],
)
def test_a_search_space_may_be_a_reference_to_a_list_or_to_a_function(models, reference, expected):
    model = _model_with_space(models, reference)
    assert loader.search_space(model, model.custom_candidates["own_logit"]) == expected
    assert search_space_for(model, "own_logit") == expected  # what training asks


def test_a_search_space_that_is_not_a_list_of_mappings_is_refused(models):
    model = _model_with_space(models, "NOT_A_LIST")
    with pytest.raises(UserCodeError, match="must be a list of at most 20 mappings"):
        loader.search_space(model, model.custom_candidates["own_logit"])


def test_an_inline_search_space_is_used_as_declared(models):
    model = _model(
        "own_unused",
        candidates=[{"name": "own_logit", "factory": "own_unused.candidates:make_logit",
                     "search_space": [{"C": 0.1}, {"C": 10.0}]}],
    )  # fmt: skip
    assert search_space_for(model, "own_logit") == [{"C": 0.1}, {"C": 10.0}]
