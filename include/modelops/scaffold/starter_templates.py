"""The text of the starter package ``--with-code`` writes (``string.Template``: ``$name`` placeholders).

Kept apart from :mod:`modelops.scaffold.starter_code`, which chooses the values, so the files a
data scientist will read are read here as they will be written. They pass the project's ruff
check and format, as everything under ``include/models/`` must (``make lint``).
"""

from __future__ import annotations

INIT = '''"""$name: the data scientist's own code for the $name model ($name.yaml beside this folder).

Drafted by ``python -m modelops.scaffold --with-code``: one feature step (features.py), one
candidate (candidates.py) and their tests (test_$name.py). Edit them; README.md, "Your own code".
"""
'''

_FEATURES_HEAD = '''"""Feature steps of $name: applied before the platform's shared preprocessing, in training and
serving alike (they are part of the logged model).

Drafted by ``python -m modelops.scaffold`` from the sample's columns, to show the shape of a step:
replace it with what you know about the data, and keep ``code.engineered_features`` in $name.yaml
naming every column the steps add.
"""

from __future__ import annotations

${numpy_import}import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

'''

_FEATURES_FACTORY = '''

def $factory() -> $class_name:
    """The feature step the declaration names (``$name.features:$factory``)."""
    return $class_name()
'''

FEATURES = {
    "ratio": _FEATURES_HEAD
    + '''#: The sample's first two numeric features.
NUMERATOR = $input_0_literal
DENOMINATOR = $input_1_literal
#: The column this step adds.
OUTPUT = $column_literal


class $class_name(TransformerMixin, BaseEstimator):
    """Adds ``$column``: NUMERATOR / (|DENOMINATOR| + 1).

    The + 1 keeps a zero denominator finite; a missing (or non-numeric) input gives a missing
    value, which the shared preprocessing imputes. Stateless: ``fit`` learns nothing.
    """

    def fit(self, X: pd.DataFrame, y=None) -> $class_name:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        numerator = pd.to_numeric(out[NUMERATOR], errors="coerce")
        denominator = pd.to_numeric(out[DENOMINATOR], errors="coerce")
        ratio = numerator / (denominator.abs() + 1.0)
        out[OUTPUT] = ratio.replace([np.inf, -np.inf], np.nan).astype("float64")
        return out
'''
    + _FEATURES_FACTORY,
    "log1p_abs": _FEATURES_HEAD
    + '''#: The sample's only numeric feature.
SOURCE = $input_0_literal
#: The column this step adds.
OUTPUT = $column_literal


class $class_name(TransformerMixin, BaseEstimator):
    """Adds ``$column``: log(1 + |SOURCE|), the magnitude compressed.

    Trees split the same either way; a linear candidate gains from a long tail pulled in. A
    missing (or non-numeric) input gives a missing value, which the shared preprocessing imputes.
    Stateless: ``fit`` learns nothing.
    """

    def fit(self, X: pd.DataFrame, y=None) -> $class_name:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        magnitude = np.log1p(pd.to_numeric(out[SOURCE], errors="coerce").abs())
        out[OUTPUT] = magnitude.replace([np.inf, -np.inf], np.nan).astype("float64")
        return out
'''
    + _FEATURES_FACTORY,
    "missing_count": _FEATURES_HEAD
    + '''#: The declared features whose gaps are counted.
COLUMNS = (
$inputs_literals)
#: The column this step adds.
OUTPUT = $column_literal


class $class_name(TransformerMixin, BaseEstimator):
    """Adds ``$column``: how many of COLUMNS are missing in the row.

    A gap often means something (a form not filled in, a source not joined). Stateless: ``fit``
    learns nothing.
    """

    def fit(self, X: pd.DataFrame, y=None) -> $class_name:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        out[OUTPUT] = out[list(COLUMNS)].isna().sum(axis=1).astype("float64")
        return out
'''
    + _FEATURES_FACTORY,
}

CANDIDATES = '''"""The $name candidates: an extra-trees model to start from (``$candidate`` in $name.yaml), searched
by the platform under K-fold CV over SEARCH_SPACE, next to the built-in families.

Drafted by ``python -m modelops.scaffold`` for a $problem_type label.
"""

from __future__ import annotations

#: Settings tried under the platform's K-fold CV (keyword arguments of make_model), simplest first.
SEARCH_SPACE = [
    {"max_depth": 8, "min_samples_leaf": 5},
    {"max_depth": 16, "min_samples_leaf": 2},
]


def make_model(max_depth: int = 8, min_samples_leaf: int = 5, n_estimators: int = 100, random_seed: int = 0):
    """An unfitted $estimator; the platform puts its preprocessing (imputation, one-hot) in front of it."""
    from sklearn.ensemble import $estimator

    return $estimator(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        n_jobs=1,  # a training task is one slot of the model's training pool
        random_state=random_seed,
    )
'''

TESTS_HEAD = '''"""The $name code's own tests, beside it: `make unit` collects them with the platform's."""

from __future__ import annotations
${math_import}
import pandas as pd
from sklearn.base import clone

from $name.candidates import SEARCH_SPACE, make_model
'''

FEATURE_TESTS = {
    "ratio": """from $name.features import DENOMINATOR, NUMERATOR, OUTPUT, $factory


def test_the_step_adds_the_ratio_and_keeps_the_inputs() -> None:
    frame = pd.DataFrame({NUMERATOR: [4.0, 3.0, None], DENOMINATOR: [1.0, 0.0, 2.0], $spare_literal: ["a", "b", "c"]})
    out = $factory().fit_transform(frame)
    assert list(out.columns) == [*frame.columns, OUTPUT]
    pd.testing.assert_frame_equal(out[frame.columns], frame)  # the inputs are kept as they were
    assert out[OUTPUT].tolist()[:2] == [2.0, 3.0]  # a zero denominator stays finite
    assert math.isnan(out[OUTPUT].iloc[2])  # a missing input: missing, for the platform to impute
""",
    "log1p_abs": """from $name.features import OUTPUT, SOURCE, $factory


def test_the_step_adds_the_magnitude_and_keeps_the_inputs() -> None:
    frame = pd.DataFrame({SOURCE: [0.0, -9.0, None], $spare_literal: ["a", "b", "c"]})
    out = $factory().fit_transform(frame)
    assert list(out.columns) == [*frame.columns, OUTPUT]
    pd.testing.assert_frame_equal(out[frame.columns], frame)  # the inputs are kept as they were
    assert out[OUTPUT].iloc[0] == 0.0 and math.isclose(out[OUTPUT].iloc[1], math.log(10.0))
    assert math.isnan(out[OUTPUT].iloc[2])  # a missing input: missing, for the platform to impute
""",
    "missing_count": """from $name.features import COLUMNS, OUTPUT, $factory


def test_the_step_counts_the_gaps_and_keeps_the_inputs() -> None:
    frame = pd.DataFrame({column: ["x", None] for column in COLUMNS}).assign(**{$spare_literal: [None, None]})
    out = $factory().fit_transform(frame)
    assert list(out.columns) == [*frame.columns, OUTPUT]
    pd.testing.assert_frame_equal(out[frame.columns], frame)  # the inputs are kept as they were
    assert out[OUTPUT].tolist() == [0.0, float(len(COLUMNS))]  # only the declared features count
""",
}

TESTS_TAIL = """

def test_the_step_is_a_clonable_stateless_transformer() -> None:
    step = $factory()
    assert clone(step).get_params() == step.get_params()


def test_every_setting_builds_an_unfitted_estimator_that_fits() -> None:
    for setting in SEARCH_SPACE:
        estimator = make_model(**setting, random_seed=1)
        params = clone(estimator).get_params()
        assert params["random_state"] == 1 and all(params[key] == value for key, value in setting.items())
        estimator.fit([[0.0], [1.0], [2.0], [3.0]], $labels)
"""
