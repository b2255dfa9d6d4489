"""The tree walker's two layouts (flat for a few rows, depth-sorted for batches) give every row the
leaf sklearn's own trees give it, NaN included, for boosted trees of uneven depth and a forest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from modelops.serving.compiled import tree_walk
from modelops.serving.compiled.forest import _walker
from modelops.serving.compiled.hist_boosting import LoweredHistBoosting


def _data(n: int = 3000):
    X, y = make_classification(n_samples=n, n_features=8, random_state=1)
    X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    return X, y


@pytest.fixture(scope="module")
def boosted():
    X, y = _data()
    model = HistGradientBoostingClassifier(max_iter=40, early_stopping=False, random_state=0).fit(X, y)
    return model, X


def test_both_layouts_give_the_same_leaves_and_the_depths_are_uneven(boosted):
    model, X = boosted
    walker = LoweredHistBoosting(model, True).walker
    assert len(set(walker.active)) > 1, "trees of one depth would not exercise the depth-sorted walk"
    batch = X[:200]
    sorted_leaves = walker._walk_sorted(batch)
    assert np.array_equal(sorted_leaves, walker._walk_flat(batch))
    one_by_one = np.vstack([walker.leaves(batch[i : i + 1]) for i in range(20)])
    assert np.array_equal(one_by_one, sorted_leaves[:20])


def test_boosted_probabilities_equal_sklearn_either_side_of_the_layout_switch(boosted):
    model, X = boosted
    lowered = LoweredHistBoosting(model, True)
    for rows in (1, tree_walk.SMALL_ROWS - 1, tree_walk.SMALL_ROWS, 500):
        np.testing.assert_allclose(lowered.predict_proba(X[:rows]), model.predict_proba(X[:rows]), rtol=0, atol=1e-12)


def test_forest_leaves_equal_sklearns_apply():
    X, y = _data(1500)
    X = np.nan_to_num(X)  # sklearn's forests accept NaN only in some versions: keep the test to the walk
    forest = RandomForestClassifier(n_estimators=12, max_depth=9, random_state=0).fit(X, y)
    walker = _walker(forest)
    offsets = np.concatenate([[0], np.cumsum([e.tree_.node_count for e in forest.estimators_])[:-1]])
    expected = forest.apply(X[:300]) + offsets
    assert np.array_equal(walker.leaves(X[:300]), expected)
    assert np.array_equal(walker.leaves(X[:3]), expected[:3])


def test_depths_must_match_the_trees():
    with pytest.raises(ValueError, match="2 depths for 1 trees"):
        tree_walk.TreeWalker(
            [np.zeros(1)], [np.zeros(1)], [np.zeros(1)], [np.zeros(1)], [np.ones(1)], [np.ones(1)], [0, 0]
        )
