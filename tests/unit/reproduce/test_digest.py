"""The canonical model bytes: equal fitted state gives equal bytes across processes and through
skops; any difference in what was learnt (a seed, a parameter, one coefficient) changes them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import skops.io
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.reproduce.digest import canonical_bytes, model_digest
from modelops.reproduce.rebuild import randomness
from modelops.training.candidate import refit_chosen
from modelops.training.search_spaces import skops_trusted_types

CANDIDATES = ["linear", "random_forest", "hist_gradient_boosting"]


def _fit(candidate: str, problem: str = "binary_classification", seed: int = 7, params: dict | None = None):
    config = make_config(problem, training={"cv_folds": 3, "random_seed": seed})
    frame = make_frame(problem, n=200)
    return config, refit_chosen(config, candidate, params or {}, frame[config.feature_names], frame[config.target])


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
@pytest.mark.parametrize("candidate", CANDIDATES)
def test_a_model_and_its_skops_copy_have_the_same_digest(candidate, problem):
    config, model = _fit(candidate, problem)
    copy = skops.io.loads(skops.io.dumps(model), trusted=skops_trusted_types(candidate, config.problem_type))
    assert model_digest(copy) == model_digest(model)
    assert model_digest(_fit(candidate, problem)[1]) == model_digest(model)  # a second fit


def test_the_digest_is_the_same_in_another_process():
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from tests.unit.reproduce.test_digest import _fit;"
        "from modelops.reproduce.digest import model_digest;"
        "print(model_digest(_fit('random_forest')[1]))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == model_digest(_fit("random_forest")[1])


@pytest.mark.parametrize("candidate", ["random_forest", "hist_gradient_boosting"])
def test_another_seed_changes_the_digest(candidate):
    assert model_digest(_fit(candidate, seed=1)[1]) != model_digest(_fit(candidate, seed=2)[1])


def test_one_changed_coefficient_changes_the_digest():
    _, model = _fit("linear")
    before = model_digest(model)
    model[-1].coef_ = model[-1].coef_.copy()
    model[-1].coef_[0, 0] = np.nextafter(model[-1].coef_[0, 0], np.inf)
    assert model_digest(model) != before


def test_record_arrays_are_compared_field_by_field_not_with_their_padding():
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8], "itemsize": 16})
    left, right = np.zeros(2, dtype=dtype), np.zeros(2, dtype=dtype)
    right.view(np.uint8)[9:16] = 7  # padding bytes only
    assert canonical_bytes(left) == canonical_bytes(right)
    right["b"][1] = 1
    assert canonical_bytes(left) != canonical_bytes(right)


def test_unseeded_estimators_are_named_as_not_deterministic():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert randomness(_fit("random_forest")[1]) == []
    assert randomness(make_pipeline(StandardScaler(), RandomForestClassifier())) == [
        "randomforestclassifier__random_state"
    ]
