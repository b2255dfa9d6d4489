"""The text of an exported training script (see :mod:`modelops.reproduce.export`).

Plain Python, pandas and scikit-learn: no modelops import, so it runs anywhere those are
installed. The split and the row caps below are the platform's rules written out
(``training.time_split.split_snapshot_frame``, ``training.candidate.refit_chosen``); a unit test
runs an exported script and checks that it predicts exactly what the registered version does,
so a change to those rules that is not made here too fails that test.
"""

from __future__ import annotations

SCRIPT = '''\
#!/usr/bin/env python3
"""Train @@MODEL@@ version @@VERSION@@ again: plain pandas and scikit-learn, nothing else.

Exported by `python -m modelops.reproduce @@MODEL@@ @@VERSION@@ --export`. It reads the snapshot
the training run read (the files under data/, each checked against the SHA-256 recorded in
manifest.json), splits it as the platform did, builds the same pipeline with the same
parameters and seed, fits, evaluates on the held-out split and writes predictions.csv.
Change anything you like; see README.md.

    python train.py [--out predictions.csv] [--save-model model.pkl]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import sys
from pathlib import Path

# The OpenMP threads the training run used (HistGradientBoosting's sums depend on the thread
# count in their last bits); set before numpy and scikit-learn load. Remove it to use every core.
OPENMP_THREADS = "@@THREADS@@"
if OPENMP_THREADS:
    os.environ["OMP_NUM_THREADS"] = OPENMP_THREADS

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "code"))  # the model's own code, as logged with the version (if any)

@@IMPORTS@@

#: The declaration's settings the training run used.
SETTINGS = @@SETTINGS@@


def build_pipeline():
    """The candidate's pipeline with the chosen parameters and seed (unfitted)."""
    return @@PIPELINE@@


def read_snapshot() -> pd.DataFrame:
    """The snapshot's rows, file by file in the manifest's order, each file checked by SHA-256."""
    manifest = json.loads((HERE / "manifest.json").read_text())
    frames = []
    for entry in manifest["files"]:
        data = (HERE / entry["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SystemExit(f"{entry['path']}: not the bytes the training run read (SHA-256 differs)")
        if SETTINGS["file_format"] == "csv":
            frames.append(pd.read_csv(io.BytesIO(data), index_col=False, float_precision="round_trip"))
        else:
            frames.append(pd.read_parquet(io.BytesIO(data)))
    return pd.concat(frames, ignore_index=True, sort=False)


def parse_times(values):
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(values, utc=True, format="mixed", errors="coerce")


def random_split(frame: pd.DataFrame):
    from sklearn.model_selection import train_test_split

    stratify = None
    target = SETTINGS["target"]
    if SETTINGS["is_classifier"] and target in frame.columns:
        counts = frame[target].value_counts()
        if len(counts) > 1 and counts.min() >= 2:
            stratify = frame[target]
    train, test = train_test_split(frame, test_size=SETTINGS["test_fraction"], random_state=SETTINGS["random_seed"],
                                   shuffle=True, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def split(frame: pd.DataFrame):
    """Labelled rows (at most max_rows, a seeded sample); the most recent test_fraction held out
    when there is a timestamp column (rows sharing the cut instant stay together), else random."""
    frame = frame[frame[SETTINGS["target"]].notna()]
    if len(frame) > SETTINGS["max_rows"]:
        frame = frame.sample(n=SETTINGS["max_rows"], random_state=SETTINGS["random_seed"]).sort_index()
    column = SETTINGS["timestamp_column"]
    if not column or column not in frame.columns:
        return random_split(frame)
    times = parse_times(frame[column])
    order = times.reset_index(drop=True).sort_values(kind="stable").index
    ordered = frame.iloc[order].reset_index(drop=True)
    sorted_times = times.iloc[order].reset_index(drop=True)
    n_train = max(1, min(len(frame) - 1, int(round(len(frame) * (1.0 - SETTINGS["test_fraction"])))))
    cutoff = sorted_times.iloc[n_train - 1]
    is_train = sorted_times <= cutoff
    if is_train.all():
        is_train = sorted_times < cutoff
    if is_train.all() or not is_train.any():
        return random_split(frame)
    train, test = ordered[is_train.to_numpy()], ordered[~is_train.to_numpy()]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fit_rows(X: pd.DataFrame, y: pd.Series):
    """The rows the final fit used: all of them, or a seeded sample of fit_max_rows."""
    limit = SETTINGS["fit_max_rows"]
    if limit is None or len(X) <= limit:
        return X, y
    positions = np.sort(np.random.RandomState(SETTINGS["random_seed"]).choice(len(X), limit, replace=False))
    return X.iloc[positions], y.iloc[positions]


def evaluate(model, X: pd.DataFrame, y: pd.Series) -> dict:
    predictions = model.predict(X)
    if not SETTINGS["is_classifier"]:
        return {"rmse": float(np.sqrt(skm.mean_squared_error(y, predictions))),
                "mae": float(skm.mean_absolute_error(y, predictions)), "r2": float(skm.r2_score(y, predictions))}
    scores = {"accuracy": float(skm.accuracy_score(y, predictions))}
    if hasattr(model, "predict_proba") and y.nunique() > 1:
        probabilities = model.predict_proba(X)
        if probabilities.shape[1] == 2:
            scores["roc_auc"] = float(skm.roc_auc_score(y, probabilities[:, 1]))
        else:
            scores["roc_auc_ovr"] = float(skm.roc_auc_score(y, probabilities, multi_class="ovr", labels=model.classes_))
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "predictions.csv"), help="predictions on the held-out rows")
    parser.add_argument("--save-model", default=None, help="pickle the fitted pipeline to this file")
    args = parser.parse_args()
    features, target = SETTINGS["features"], SETTINGS["target"]
    train, test = split(read_snapshot())
    X = train[features]
    y = pd.Series(np.asarray(train[target]), name=target)
    X_fit, y_fit = fit_rows(X, y)
    model = build_pipeline().fit(X_fit, y_fit)
    X_test, y_test = test[features], pd.Series(np.asarray(test[target]), name=target)
    out = pd.DataFrame({"prediction": model.predict(X_test)})
    if hasattr(model, "predict_proba"):
        for i, label in enumerate(model.classes_):
            out[f"probability_{label}"] = model.predict_proba(X_test)[:, i]
    out.to_csv(args.out, index_label="row")
    if args.save_model:
        Path(args.save_model).write_bytes(pickle.dumps(model))
    print(f"trained on {len(X_fit)} rows, evaluated on {len(test)}: {evaluate(model, X_test, y_test)}")
    print(f"predictions: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

README = """\
# {model} version {version}: the training, as a script

`train.py` trains this version again with plain pandas and scikit-learn: the same snapshot, the
same split, the same pipeline, parameters and seed. Run it, read it, change it.

```bash
pip install "scikit-learn=={sklearn}" "pandas=={pandas}" "numpy=={numpy}"   # the versions it was trained with
python train.py                      # fits, prints held-out metrics, writes predictions.csv
python train.py --save-model model.pkl
```

| what | value |
|---|---|
| candidate | `{candidate}` |
| chosen parameters | `{params}` |
| random seed | {seed} |
| training run (MLflow) | `{mlflow_run_id}` (Airflow run `{airflow_run_id}`) |
| snapshot | `{manifest_uri}`, dataset hash `{dataset_hash}` |
| rows | {rows} in the snapshot; the fit used {fit_rows} |
| code version | `{code_version}` |

Files:

- `data/`: the snapshot's objects, at their S3 keys (bucket `{bucket}`); `manifest.json` lists
  each with the ETag and SHA-256 the training run recorded. The script refuses a file whose bytes
  differ. To read them from S3 instead, fetch the same keys (boto3 `get_object`) and check the ETag.
- `code/`: the model's own code as logged with the version (only when it has some); the script
  puts it first on `sys.path`.
- `train.py`: `SETTINGS` holds the declaration's settings it used (target, features, split, row
  caps, seed); `build_pipeline()` the pipeline as code; `split()` the platform's split rule.

With the libraries above, the predictions in `predictions.csv` are the registered version's
predictions on its evaluation split (`python -m modelops.reproduce {model} {version}` checks the
same thing against the registry). Models trained this way can be sent back to the gate with
`python -m modelops.submit` (see the project's README).
"""
