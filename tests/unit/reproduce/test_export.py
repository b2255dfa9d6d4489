"""``--export``: the exported script, run on its own with plain pandas and scikit-learn, predicts
exactly what the registered version predicts on its evaluation split; the model's own code goes
with it; a changed snapshot object refuses the export, naming the object."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from tests.support.own_code import ADD_GAP
from tests.unit.reproduce.reproduce_helpers import churn_frames, train_and_register

from modelops.config import ModelConfig, get_model
from modelops.reproduce import cli
from modelops.reproduce.export import ExportRefused, export
from modelops.training.time_split import split_snapshot_frame
from modelops.usercode.models import load_model


def _run_script(folder) -> pd.DataFrame:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of modelops on the path
    completed = subprocess.run([sys.executable, str(folder / "train.py")], cwd=folder, env=env,
                               capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "evaluated on" in completed.stdout
    return pd.read_csv(folder / "predictions.csv", index_col="row", float_precision="round_trip")


def _registered_predictions(model: ModelConfig, registered, frames) -> tuple[np.ndarray, np.ndarray]:
    """The registered model on the platform's evaluation split of the same snapshot."""
    _, test = split_snapshot_frame(model, pd.concat(frames, ignore_index=True, sort=False))
    fitted = load_model(registered.record["model_uri"])
    X = test[model.feature_names]
    return fitted.predict(X), fitted.predict_proba(X)


def test_the_exported_script_reproduces_the_registered_predictions(tracked, store, tmp_path):
    churn = get_model("churn")
    frames = churn_frames()
    registered = train_and_register(churn, store, frames, "hist_gradient_boosting")
    folder = tmp_path / "export"

    assert cli.main(["churn", registered.version, "--export", str(folder)]) == 0

    script = (folder / "train.py").read_text()
    assert "import modelops" not in script and "from modelops" not in script
    assert "HistGradientBoostingClassifier(" in script and "random_state=42" in script
    assert "hist_gradient_boosting" in (folder / "README.md").read_text()
    assert sorted(p.name for p in (folder / "data").rglob("*.csv")) == ["batch.csv"] * 3
    got = _run_script(folder)
    predictions, probabilities = _registered_predictions(churn, registered, frames)
    assert len(got) == len(predictions) > 100
    assert np.array_equal(got["prediction"].to_numpy(), predictions)
    assert np.array_equal(got.filter(like="probability_").to_numpy(), probabilities)


def test_a_model_with_its_own_code_is_rebuilt_and_exported_with_its_logged_code(tracked, store, tmp_path, models):
    import yaml

    from modelops.config import MODELS_DIR
    from modelops.reproduce import report as reports
    from modelops.reproduce.runner import reproduce

    package = models.package(
        {"features.py": ADD_GAP.replace('"x0"', '"monthly_charges"').replace('"x1"', '"support_calls"')}
    )
    raw = get_model("churn", MODELS_DIR).model_dump(mode="json")
    raw["code"] = {"package": package, "feature_steps": [f"{package}.features:add_gap"],
                   "engineered_features": [{"name": "gap", "type": "numeric"}],
                   "trusted_types": [f"{package}.features.AddGap"]}  # fmt: skip
    (models.path / "churn.yaml").write_text(yaml.safe_dump(raw))
    own = get_model("churn")
    frames = churn_frames()
    registered = train_and_register(own, store, frames, "linear")
    # Their code changes after training: the rebuild and the export use the copy logged with the version.
    (models.path / package / "features.py").write_text("raise ImportError('changed since')\n")

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")
    written = export("churn", registered.version, tmp_path / "export", store=store)

    assert report.verdict == reports.MATCH, report.to_text()
    assert [c.subject for c in report.changed_inputs] == [f"model's own code ({package})"]
    folder = tmp_path / "export"
    assert written["own_code"] and (folder / "code" / package / "features.py").is_file()
    assert f"from {package}.features import AddGap" in (folder / "train.py").read_text()
    got = _run_script(folder)
    predictions, _ = _registered_predictions(own, registered, frames)
    assert np.array_equal(got["prediction"].to_numpy(), predictions)


def test_an_export_of_changed_data_is_refused_naming_the_object(tracked, store, tmp_path):
    churn = get_model("churn")
    registered = train_and_register(churn, store, churn_frames(150), "linear")
    key = registered.manifest["objects"][0]["key"]
    store.put_bytes(key, b"tenure_months\n1\n", "text/csv")

    with pytest.raises(ExportRefused, match=f"snapshot object {store.uri(key)} changed since"):
        export("churn", registered.version, tmp_path / "export", store=store)


def test_a_scaffolded_regression_model_on_parquet_is_reproduced_and_exported(tracked, store, tmp_path, models):
    """A declaration drafted by ``modelops.scaffold`` from a sample (regression, Parquet batches)."""
    import yaml
    from tests.unit.reproduce.reproduce_helpers import DAYS

    from modelops.layout import experiment_name
    from modelops.local import datagen
    from modelops.reproduce import report as reports
    from modelops.reproduce.runner import reproduce
    from modelops.scaffold.declaration import infer_declaration

    frames = [datagen.generate_batch("delivery_time", day, 150, seed=4) for day in DAYS]
    declaration = infer_declaration(
        pd.concat(frames, ignore_index=True), "deliveries", "delivery_minutes",
        timestamp_column="ordered_at", id_column="order_id", file_format="parquet",
    )  # fmt: skip
    (models.path / "deliveries.yaml").write_text(yaml.safe_dump(declaration))
    deliveries = get_model("deliveries")
    tracked.client.create_experiment(experiment_name("deliveries"), (tmp_path / "artifacts").as_uri())  # not ./mlruns
    registered = train_and_register(deliveries, store, frames, "linear")

    report = reproduce("deliveries", registered.version, store=store, workdir=tmp_path / "work")
    export("deliveries", registered.version, tmp_path / "export", store=store)

    assert report.verdict == reports.MATCH, report.to_text()
    assert report.comparison["probabilities"] is None and report.comparison["model_digest"]["identical"]
    got = _run_script(tmp_path / "export")
    _, test = split_snapshot_frame(deliveries, pd.concat(frames, ignore_index=True, sort=False))
    expected = load_model(registered.record["model_uri"]).predict(test[deliveries.feature_names])
    assert got["prediction"].dtype == np.float64 and np.array_equal(got["prediction"].to_numpy(), expected)
