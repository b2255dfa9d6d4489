"""The data scientist's own tests, beside their code: `make test` collects them with the platform's."""

from __future__ import annotations

import pandas as pd
from sklearn.base import clone

from churn_plus.candidates import SEARCH_SPACE, make_lightgbm
from churn_plus.features import renewal_window


def test_near_renewal_marks_the_month_before_and_of_a_renewal() -> None:
    frame = pd.DataFrame(
        {"contract": ["one-year", "one-year", "one-year", "two-year", "month-to-month", "one-year"],
         "tenure_months": [11, 12, 5, 23, 11, 0]}
    )  # fmt: skip
    out = renewal_window().fit_transform(frame)
    assert out["near_renewal"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert list(out.columns[:2]) == ["contract", "tenure_months"]  # the declared columns are kept


def test_the_step_is_a_clonable_stateless_transformer() -> None:
    step = renewal_window()
    assert clone(step).get_params() == step.get_params()


def test_every_setting_builds_an_estimator() -> None:
    for setting in SEARCH_SPACE:
        assert make_lightgbm(**setting, random_seed=1).get_params()["num_leaves"] == setting["num_leaves"]
