"""The Wasserstein effect size against the exact W1 of the samples, old baselines, and chunking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import wasserstein_distance

from modelops.config import DriftSpec, ModelConfig
from modelops.data.baseline import histogram, profile_baseline
from modelops.drift.binning import Binner
from modelops.drift.detect import compare, drift_dataframe
from modelops.drift.streaming import StreamingProfile
from modelops.drift.wasserstein import binned_mean_wasserstein, binned_wasserstein

SPEC = DriftSpec()
ROWS = 5_000
SHIFTS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SCALES = (0.2, 0.5, 0.8, 1.25, 2.0, 5.0)
SHAPES = {"normal": lambda rng, n: rng.normal(50.0, 10.0, n), "lognormal": lambda rng, n: rng.lognormal(3.0, 0.5, n)}


def config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "effect",
            "problem_type": "regression",
            "target": "y",
            "features": [{"name": "x", "type": "numeric", "nullable": True}, {"name": "c", "type": "categorical"}],
            "metrics": {"primary": "rmse"},
        }
    )


def without_fine_bins(baseline: dict) -> dict:
    old = json.loads(json.dumps(baseline))
    for profile in old["features"].values():
        profile.pop("fine_bins", None)
    return old


@pytest.fixture(scope="module")
def references() -> dict[str, tuple[np.ndarray, dict]]:
    out = {}
    for i, (shape, draw) in enumerate(SHAPES.items()):
        rng = np.random.default_rng([1, i])
        values = draw(rng, ROWS)
        frame = pd.DataFrame({"x": values, "c": rng.choice(["a", "b", "c"], ROWS), "y": 0.0})
        out[shape] = (values, profile_baseline(frame, config()))
    return out


def changed(reference: np.ndarray, shape: str, seed: int, shift: float, scale: float, std: float) -> np.ndarray:
    fresh = SHAPES[shape](np.random.default_rng([2, seed]), ROWS)
    return (fresh - reference.mean()) * scale + reference.mean() + shift * std


def judge(baseline: dict, x: np.ndarray) -> dict:
    frame = pd.DataFrame({"x": x, "c": np.array(["a", "b", "c"])[np.arange(x.size) % 3]})
    return next(r for r in drift_dataframe(baseline, frame, SPEC)["features"] if r["feature"] == "x")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_effect_size_tracks_the_exact_w1_from_small_to_very_large_changes(references, shape):
    """Exact: scipy's W1 on every value of both samples over the reference std (the same scale)."""
    reference, baseline = references[shape]
    std = baseline["features"]["x"]["std"]
    cases = [(s, 1.0) for s in SHIFTS] + [(0.0, c) for c in SCALES] + [(1.0, 2.0), (-0.5, 0.5)]
    worst_old = 0.0
    for seed, (shift, scale) in enumerate(cases):
        current = changed(reference, shape, seed, shift, scale, std)
        exact = wasserstein_distance(reference, current) / std
        ours, old = judge(baseline, current), judge(without_fine_bins(baseline), current)
        assert ours["effect_size"] == pytest.approx(exact, rel=0.10), (shift, scale)
        assert ours["details"]["wasserstein_bins"] == "fine_bin_means"
        worst_old = max(worst_old, abs(old["effect_size"] / exact - 1))
    assert worst_old > 0.5  # the 12-bin estimate this replaces: a 4-8 sd shift or x5 scale read at half or less


def test_a_shift_beyond_the_training_range_is_read_in_full(references):
    """The case the issue names: 4 sd read 2.0 before; the open end bins now carry their sums."""
    reference, baseline = references["normal"]
    std = baseline["features"]["x"]["std"]
    current = changed(reference, "normal", 99, 4.0, 1.0, std)
    exact = wasserstein_distance(reference, current) / std
    assert judge(baseline, current)["effect_size"] == pytest.approx(exact, rel=1e-6)  # no crossing: exact
    assert judge(without_fine_bins(baseline), current)["effect_size"] == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_verdicts_do_not_change_away_from_the_threshold(references, shift):
    reference, baseline = references["normal"]
    current = changed(reference, "normal", 7, shift, 1.0, baseline["features"]["x"]["std"])
    assert judge(baseline, current)["drifted"] == judge(without_fine_bins(baseline), current)["drifted"] == (shift > 0)


def test_an_old_baseline_gives_the_old_binned_number(references):
    """No fine_bins: the 12 coarse bins with representative points, exactly as before."""
    reference, baseline = references["lognormal"]
    old = without_fine_bins(baseline)
    current = changed(reference, "lognormal", 11, 0.7, 1.5, baseline["features"]["x"]["std"])
    result = judge(old, current)
    profile = old["features"]["x"]
    edges = profile["bins"]["edges"]
    assert result["details"]["current_bin_counts"] == histogram(current, edges)
    expected = binned_wasserstein(
        edges,
        profile["bins"]["counts"],
        histogram(current, edges),
        reference_min=profile["min"],
        reference_max=profile["max"],
    )
    assert result["details"]["wasserstein_bins"] == "bin_points"
    assert result["effect_size"] == pytest.approx(expected / profile["std"], rel=1e-12)


def test_binned_means_are_exact_without_a_crossing_and_a_lower_bound_with_one():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    edges = [-1.0, 0.0, 1.0]

    def distance(x, y):
        index_x, index_y = np.searchsorted(edges, x, "right"), np.searchsorted(edges, y, "right")
        return binned_mean_wasserstein(
            edges,
            np.bincount(index_x, minlength=4),
            np.bincount(index_x, weights=x, minlength=4),
            np.bincount(index_y, minlength=4),
            np.bincount(index_y, weights=y, minlength=4),
        )

    assert distance(a, a + 3.0) == pytest.approx(wasserstein_distance(a, a + 3.0), rel=1e-9)  # pure shift
    assert distance(a, a * 2.0) == pytest.approx(wasserstein_distance(a, a * 2.0), rel=1e-9)  # crosses at edge 0
    assert distance(a, b) <= wasserstein_distance(a, b) + 1e-12  # noise crosses inside bins
    with pytest.raises(ValueError, match="edges need"):
        binned_mean_wasserstein(edges, [1, 1], [0.0, 0.0], [1, 1], [0.0, 0.0])


def test_the_grid_binner_equals_searchsorted():
    rng = np.random.default_rng(5)
    cases = [
        np.quantile(rng.lognormal(0, 3, 1000), np.linspace(0.05, 0.95, 39)),  # very uneven spacing
        np.array([0.5, 1.5, 2.5, 3.5]),
        np.array([1.0, 1.0, 2.0]),  # a tie
        np.array([7.0]),  # one edge: no grid
    ]
    for edges in cases:
        values = np.concatenate([rng.normal(edges.mean(), edges.std() + 1, 2000), edges, np.nextafter(edges, -np.inf)])
        values = np.concatenate([values, [-1e300, 1e300]])
        assert np.array_equal(Binner(edges).index(values), np.searchsorted(edges, values, side="right"))
    with pytest.raises(ValueError, match="sorted"):
        Binner([2.0, 1.0])


def test_streaming_chunks_arrow_or_pandas_equal_the_one_shot_result(references):
    reference, baseline = references["normal"]
    rng = np.random.default_rng(8)
    x = changed(reference, "normal", 21, 0.4, 1.3, baseline["features"]["x"]["std"])
    x[rng.random(x.size) < 0.05] = np.nan
    frame = pd.DataFrame({"x": x, "c": rng.choice(["a", "b", "z", None], x.size)})
    one_shot = StreamingProfile.from_baseline(baseline).update(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    chunked = [StreamingProfile.from_baseline(baseline) for _ in range(3)]
    for start in range(0, len(frame), 3_001):
        chunked[0].update(frame.iloc[start : start + 3_001])
    for batch in table.to_batches(max_chunksize=4_999):
        chunked[1].update(batch)
    chunked[2].update(table)
    expected = compare(baseline, one_shot, SPEC)
    for profile in chunked:
        live, want = profile.features["x"], one_shot.features["x"]
        assert np.array_equal(live.bin_counts, want.bin_counts) and np.array_equal(live.counts, want.counts)
        assert live.bin_sums == pytest.approx(want.bin_sums, rel=1e-12)
        assert (live.nulls, live.n, live.mean, live.min, live.max) == pytest.approx(
            (want.nulls, want.n, want.mean, want.min, want.max), rel=1e-12
        )
        assert np.array_equal(live.sample, want.sample)
        assert profile.features["c"].counts == one_shot.features["c"].counts
        assert (
            profile.features["c"].unseen == one_shot.features["c"].unseen == {"z": one_shot.features["c"].unseen["z"]}
        )
        assert profile.features["c"].nulls == one_shot.features["c"].nulls > 0
        report = compare(baseline, profile, SPEC)
        for got, want_result in zip(report["features"], expected["features"], strict=True):
            assert got["feature"] == want_result["feature"] and got["drifted"] == want_result["drifted"]
            assert got["effect_size"] == pytest.approx(want_result["effect_size"], rel=1e-9)
    assert one_shot.features["x"].counts.tolist() == histogram(x, baseline["features"]["x"]["bins"]["edges"])


def test_arrow_and_pandas_count_missing_and_invalid_values_alike(references):
    _, baseline = references["normal"]
    x = pa.array([1.0, None, float("nan"), float("inf"), 50.0], pa.float64())
    arrow = StreamingProfile.from_baseline(baseline).update(
        pa.record_batch({"x": x, "c": pa.array(["a", None, "b", "a", "q"])})
    )
    frame = pd.DataFrame({"x": [1.0, None, float("nan"), float("inf"), 50.0], "c": ["a", None, "b", "a", "q"]})
    pandas = StreamingProfile.from_baseline(baseline).update(frame)
    text = StreamingProfile.from_baseline(baseline).update(
        pd.DataFrame({"x": pd.Series(["1", None, "oops", "inf", "50"], dtype=object), "c": frame["c"].astype(object)})
    )
    for profile in (arrow, pandas):
        live = profile.features["x"]
        assert (live.rows, live.nulls, live.invalid, live.n) == (5, 2, 1, 2)
        assert profile.features["c"].counts == {"a": 2, "b": 1} and profile.features["c"].unseen == {"q": 1}
    assert (text.features["x"].nulls, text.features["x"].invalid, text.features["x"].n) == (1, 2, 2)
    for typed in (pa.array([1, None, 3], pa.int32()), pa.array([True, None, False])):
        ints = StreamingProfile.from_baseline(baseline).update(pa.record_batch({"x": typed, "c": pa.array(["a"] * 3)}))
        assert (ints.features["x"].nulls, ints.features["x"].n, ints.features["x"].invalid) == (1, 2, 0)
