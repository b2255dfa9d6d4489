"""Champion vs shadow on the same requests: agreement (classes) or differences (regression),
prediction drift between the two, and both live metrics once labels arrive; joined by request id
and record index, so rows only one side scored are not compared."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from modelops.config import ModelConfig
from modelops.layout import FEEDBACK, SHADOW, capture_file_key
from modelops.monitoring.shadow_compare import compare_shadow
from modelops.monitoring.shadow_html import shadow_section_html

DAY = dt.date(2026, 11, 20)
N = 400


def _config(name: str, problem: str, primary: str) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": name,
            "problem_type": problem,
            "target": "y",
            "features": [{"name": "x0", "type": "numeric"}],
            "metrics": {"primary": primary},
        }
    )


def _put(store, stream: str, model: str, frame: pd.DataFrame, file_id: str) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(capture_file_key(stream, model, DAY, file_id), buffer.getvalue())


def _rows(predictions, version: str, probabilities=None, classes=None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i // 10}" for i in range(len(predictions))],
            "record_index": [i % 10 for i in range(len(predictions))],
            "model_version": version,
            "prediction": predictions,
        }
    )
    if probabilities is not None:
        frame["probabilities"] = [list(p) for p in probabilities]
        frame["classes"] = [classes] * len(frame)
    return frame


def _binary(labels: np.ndarray, flip: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Predictions (as serving writes them) and probabilities: right on every row, flipped where ``flip``."""
    predicted = np.where(flip, 1 - labels, labels)
    p1 = np.where(predicted == 1, 0.9, 0.1)
    return [str(v) for v in predicted], np.column_stack([1 - p1, p1])


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 2, N)


def test_classifier_agreement_drift_and_live_metrics_on_the_same_records(store, labels):
    config = _config("toy", "binary_classification", "roc_auc")
    flip = np.zeros(N, dtype=bool)
    flip[::5] = True  # the shadow is wrong on every fifth record, the champion on none
    champion, champion_p = _binary(labels, np.zeros(N, dtype=bool))
    shadow, shadow_p = _binary(labels, flip)
    _put(store, "capture", "toy", _rows(champion, "1", champion_p, ["0", "1"]), "a")
    _put(store, SHADOW, "toy", _rows(shadow, "2", shadow_p, ["0", "1"]), "b")
    feedback = _rows([0] * N, "1").drop(columns=["model_version", "prediction"]).assign(label=labels.astype(str))
    _put(store, FEEDBACK, "toy", feedback, "c")

    result = compare_shadow(store, config, DAY)
    assert result["status"] == "ok" and result["rows_compared"] == N
    assert result["champion_versions"] == ["1"] and result["shadow_versions"] == ["2"]
    assert result["agreement_rate"] == pytest.approx(0.8) and result["disagreement_rate"] == pytest.approx(0.2)
    assert result["prediction_drift"]["method"] == "jensen_shannon"
    live = result["live"]
    assert live["status"] == "ok" and live["labelled_rows"] == N
    assert live["champion"]["roc_auc"] == pytest.approx(1.0)
    assert live["shadow"]["roc_auc"] < 0.9 and live["regression"] == pytest.approx(1.0 - live["shadow"]["roc_auc"])
    page = shadow_section_html(result)
    assert "<h2>Shadow</h2>" in page and "<td>0.8</td>" in page and "shadow live roc_auc" in page
    assert shadow_section_html(None) == ""


def test_regression_differences_and_the_ks_drift_of_a_shifted_shadow(store):
    config = _config("toy_reg", "regression", "rmse")
    truth = np.random.default_rng(4).normal(10, 3, N)
    _put(store, "capture", "toy_reg", _rows(truth, "1"), "a")
    _put(store, SHADOW, "toy_reg", _rows(truth + 2.0, "2"), "b")
    result = compare_shadow(store, config, DAY, min_labels=10)
    assert result["mean_abs_difference"] == pytest.approx(2.0)
    assert result["prediction_drift"]["method"] == "ks" and result["prediction_drift"]["drifted"]
    assert result["live"]["status"] == "insufficient_labels" and result["live"]["regression"] is None


def test_no_shadow_rows_is_none_and_rows_without_a_served_twin_are_not_compared(store):
    config = _config("toy_bare", "binary_classification", "accuracy")
    assert compare_shadow(store, config, DAY) is None
    _put(store, SHADOW, "toy_bare", _rows(["1"] * 20, "2"), "b")
    result = compare_shadow(store, config, DAY)
    assert result["status"] == "no_overlap" and result["rows_shadow"] == 20 and result["rows_compared"] == 0
    _put(store, "capture", "toy_bare", _rows(["1"] * 10 + ["0"] * 10, "1").iloc[5:], "a")  # 15 served rows
    result = compare_shadow(store, config, DAY)
    assert result["rows_compared"] == 15 and result["agreement_rate"] == pytest.approx(5 / 15)


def test_streamed_over_many_files_it_equals_a_plain_merge_of_the_whole_day(store):
    """Multiclass, each side split over files in another order, a shadow row written twice (the
    last counts), a third of the records labelled: every figure equals joining the day in pandas."""
    from sklearn.metrics import accuracy_score

    config = _config("toy_multi", "multiclass_classification", "accuracy")
    rng = np.random.default_rng(9)
    classes = ["a", "b", "c"]
    truth = rng.choice(classes, N)
    champion_p = rng.dirichlet(np.ones(3), N)
    shadow_p = rng.dirichlet(np.ones(3), N)
    champion = _rows(list(np.array(classes)[champion_p.argmax(axis=1)]), "1", champion_p, classes)
    shadow = _rows(list(np.array(classes)[shadow_p.argmax(axis=1)]), "2", shadow_p, classes)
    for k, part in enumerate((champion.iloc[:100], champion.iloc[100:250], champion.iloc[250:])):
        _put(store, "capture", "toy_multi", part, f"a{k}")
    stale = shadow.iloc[:7].assign(prediction="a")  # overwritten below by the same keys' last rows
    _put(store, SHADOW, "toy_multi", stale, "b0")
    for k, part in enumerate((shadow.iloc[::-1].iloc[:150], shadow.iloc[::-1].iloc[150:])):
        _put(store, SHADOW, "toy_multi", part, f"b{k + 1}")
    labelled = champion.iloc[::3][["request_id", "record_index"]].assign(label=truth[::3])
    _put(store, FEEDBACK, "toy_multi", labelled, "c")

    result = compare_shadow(store, config, DAY, min_labels=50)
    joined = champion.merge(shadow, on=["request_id", "record_index"], suffixes=("", "_shadow"))
    same = (joined["prediction"] == joined["prediction_shadow"]).mean()
    assert result["rows_compared"] == N and result["rows_shadow"] == N + 7 and result["rows_served"] == N
    assert result["agreement_rate"] == pytest.approx(same)
    live = result["live"]
    assert live["status"] == "ok" and live["labelled_rows"] == len(labelled)
    assert live["champion"]["accuracy"] == pytest.approx(accuracy_score(truth[::3], joined["prediction"][::3]))
    assert live["shadow"]["accuracy"] == pytest.approx(accuracy_score(truth[::3], joined["prediction_shadow"][::3]))
    assert live["regression"] == pytest.approx(live["champion"]["accuracy"] - live["shadow"]["accuracy"])
