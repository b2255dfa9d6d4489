"""The pipeline written as code builds the same pipeline: every built-in candidate of every problem
type, with chosen parameters; the model's own classes by their import; what has no name is refused."""

from __future__ import annotations

import pytest
from tests.unit.training.training_helpers import make_config

from modelops.reproduce.render import NotRenderable, public_module, render
from modelops.training.pipelines import build_pipeline


def _build(source: str, imports: list[str]):
    namespace: dict = {}
    exec("\n".join(imports) + f"\npipeline = {source}", namespace)  # noqa: S102 - the text under test
    return namespace["pipeline"]


@pytest.mark.parametrize("problem", ["binary_classification", "multiclass_classification", "regression"])
@pytest.mark.parametrize(
    ("candidate", "params"),
    [("linear", {"C": 0.5}), ("random_forest", {"max_depth": 8, "min_samples_leaf": 5}),
     ("hist_gradient_boosting", {"learning_rate": 0.05})],
)  # fmt: skip
def test_the_written_pipeline_builds_the_same_pipeline(problem, candidate, params):
    metrics = {"primary": "accuracy"} if problem == "multiclass_classification" else None
    config = make_config(problem, **({"metrics": metrics} if metrics else {}))
    pipeline = build_pipeline(config, candidate, params)
    source, imports = render(pipeline)
    rebuilt = _build(source, imports)
    assert repr(rebuilt.get_params(deep=True)) == repr(pipeline.get_params(deep=True))
    assert all(not line.split()[1].split(".")[-1].startswith("_") for line in imports if line.startswith("from"))


def test_public_modules_are_preferred():
    from sklearn.ensemble import RandomForestClassifier

    assert public_module(RandomForestClassifier) == "sklearn.ensemble"


def test_a_lambda_is_refused_with_its_reason():
    from sklearn.preprocessing import FunctionTransformer

    with pytest.raises(NotRenderable, match="no importable name"):
        render(FunctionTransformer(lambda x: x))
