"""The rebuild itself, in a process of its own: refit the recorded candidate on the snapshot's
files and compare it with the registered model on the evaluation split.

    python -m modelops.reproduce.rebuild <request.json> <result.json>

A fresh process so nothing of the caller (imported code, a module cache, a warmed model) can
make the two models agree by accident. It reads only local files (:mod:`modelops.reproduce.materialise`
put them there): the snapshot's objects, the registered model's artifact and its logged code,
which goes first on ``sys.path`` so the refit builds the pipeline with the code that trained the
version. The request carries the recorded declaration, candidate and parameters, and the OpenMP
thread count the fit ran with (HistGradientBoosting sums gradients in parallel: another thread
count changes the last bits of its trees).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Rows of the evaluation split whose predictions are shown when they differ.
SHOWN_DIFFERENCES = 5
_INCLUDE_DIR = str(Path(__file__).resolve().parents[2])


class RebuildFailed(RuntimeError):
    """The rebuild process failed; the message carries the end of its error output."""


def read_files(folder: Path, files: list[dict], file_format: str):
    """The snapshot's rows from the local copies, in the manifest's order (as the training run read them)."""
    import pandas as pd

    from modelops.batches import read_batch

    frames = [read_batch((folder / f["path"]).read_bytes(), file_format, f["key"]) for f in files]
    if not frames:
        raise ValueError("the snapshot has no readable objects")
    return pd.concat(frames, ignore_index=True, sort=False)


def randomness(pipeline: Any) -> list[str]:
    """Parameters that make a fit vary between runs: a ``random_state`` that is None or a generator."""
    import numbers

    params = pipeline.get_params(deep=True) if hasattr(pipeline, "get_params") else {}
    return sorted(
        name for name, value in params.items()
        if name.split("__")[-1] == "random_state" and not isinstance(value, numbers.Integral)
    )  # fmt: skip


def _first_differences(ours, theirs, limit: int = SHOWN_DIFFERENCES) -> list[dict]:
    import numpy as np

    rows = np.flatnonzero(np.asarray(ours != theirs).reshape(len(ours), -1).any(axis=1))[:limit]
    return [{"row": int(i), "registered": np.asarray(theirs[i]).tolist(), "rebuilt": np.asarray(ours[i]).tolist()}
            for i in rows]  # fmt: skip


def compare_models(rebuilt: Any, registered: Any, X) -> dict[str, Any]:
    """Predictions (and probabilities) of both models on ``X``, compared exactly, and their digests."""
    import numpy as np

    from modelops.reproduce.digest import model_digest

    ours, theirs = np.asarray(rebuilt.predict(X)), np.asarray(registered.predict(X))
    same_shape = ours.shape == theirs.shape
    predictions = {
        "rows": len(X),
        "identical": bool(same_shape and np.array_equal(ours, theirs)),
        "rows_differing": int(np.asarray(ours != theirs).reshape(len(X), -1).any(axis=1).sum())
        if same_shape
        else len(X),
        "first_differences": _first_differences(ours, theirs) if same_shape else [],
    }
    probabilities = None
    if hasattr(rebuilt, "predict_proba") and hasattr(registered, "predict_proba"):
        p_ours, p_theirs = np.asarray(rebuilt.predict_proba(X)), np.asarray(registered.predict_proba(X))
        same = p_ours.shape == p_theirs.shape
        probabilities = {
            "identical": bool(same and np.array_equal(p_ours, p_theirs)),
            "max_abs_difference": float(np.max(np.abs(p_ours - p_theirs))) if same and p_ours.size else None,
        }
    varying = randomness(rebuilt)
    digests = {"registered": model_digest(registered), "rebuilt": model_digest(rebuilt)}
    return {
        "predictions": predictions,
        "probabilities": probabilities,
        "deterministic": not varying,
        "random_parameters": varying,
        "model_digest": digests | {"identical": digests["registered"] == digests["rebuilt"]},
    }


def _load_registered(model_dir: Path, code_folder: Path | None):
    """The registered model from its local artifact, its logged code first on ``sys.path``."""
    import mlflow

    from modelops.usercode.models import logged_code_packages

    if code_folder is not None:
        sys.path.insert(0, str(code_folder))
        for name in [n for n in sys.modules if n.split(".")[0] in logged_code_packages(model_dir)]:
            del sys.modules[name]
    return mlflow.sklearn.load_model(str(model_dir))


def rebuild(request: dict[str, Any]) -> dict[str, Any]:
    """Refit and compare (runs in the fresh process; see the module docstring)."""
    from modelops.config import ModelConfig
    from modelops.training.candidate import refit_chosen
    from modelops.training.time_split import split_snapshot_frame

    folder = Path(request["folder"])
    code_folder = Path(request["code_folder"]) if request.get("code_folder") else None
    registered = _load_registered(Path(request["model_dir"]), code_folder)
    config = ModelConfig.model_validate(request["declaration"])
    frame = read_files(folder, request["files"], config.data.file_format)
    train, test = split_snapshot_frame(config, frame)
    rebuilt = refit_chosen(config, request["candidate"], request["params"], train[config.feature_names],
                           train[config.target])  # fmt: skip
    comparison = compare_models(rebuilt, registered, test[config.feature_names])
    return comparison | {"snapshot_rows": len(frame), "train_rows": len(train), "evaluation_rows": len(test)}


def run_in_fresh_process(request: dict[str, Any], folder: Path, timeout: float = 3600.0) -> dict[str, Any]:
    """:func:`rebuild` in a new Python process; its result, or :class:`RebuildFailed`."""
    request_path, result_path = folder / "rebuild-request.json", folder / "rebuild-result.json"
    request_path.write_text(json.dumps(request, indent=2))
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    if request.get("openmp_threads"):  # set before the OpenMP runtime loads: the fit's thread count
        env["OMP_NUM_THREADS"] = str(request["openmp_threads"])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_INCLUDE_DIR, env.get("PYTHONPATH")) if p)
    completed = subprocess.run(
        [sys.executable, "-m", "modelops.reproduce.rebuild", str(request_path), str(result_path)],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    if completed.returncode != 0 or not result_path.is_file():
        raise RebuildFailed(f"the rebuild process exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    return json.loads(result_path.read_text())


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    request_path, result_path = (Path(a) for a in argv)
    result = rebuild(json.loads(request_path.read_text()))
    result_path.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
