"""``--export DIR``: a registered version as a standalone training script a data scientist can run
and change (Autopilot's generated code, here from the version's own lineage).

``DIR`` receives ``train.py`` (plain pandas + scikit-learn, see
:mod:`modelops.reproduce.script_template`), ``README.md``, ``manifest.json`` (the files with
their S3 keys, ETags and SHA-256), ``data/`` (local copies of the snapshot's objects, verified as
they are downloaded) and ``code/`` (the model's own code as logged with the version, if any).
The pipeline in the script is the platform's own ``build_pipeline`` written out as code
(:mod:`modelops.reproduce.render`), built with the logged code of the version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pprint
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from modelops import versioning
from modelops.reproduce import inputs as input_checks
from modelops.reproduce.lineage import Lineage, read_lineage
from modelops.reproduce.materialise import download_model, download_snapshot, logged_code_folder
from modelops.reproduce.render import render
from modelops.reproduce.script_template import README, SCRIPT
from modelops.store import Store

log = logging.getLogger(__name__)

SCRIPT_NAME = "train.py"


class ExportRefused(RuntimeError):
    """The version cannot be exported as it was trained; the message names why."""


@contextlib.contextmanager
def logged_code_first(code: Path | None) -> Iterator[None]:
    """The version's logged code first on ``sys.path`` for the block; its modules forgotten after."""
    if code is None:
        yield
        return
    packages = {p.stem if p.suffix == ".py" else p.name for p in code.iterdir()}
    saved = list(sys.path)

    def forget() -> None:
        for name in [n for n in sys.modules if n.split(".")[0] in packages]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, str(code))
    try:
        yield
    finally:
        sys.path[:] = saved
        forget()


def settings_of(lineage: Lineage) -> dict:
    """The declaration's settings the script needs, from the recorded declaration."""
    config = lineage.config
    return {
        "target": config.target,
        "features": list(config.feature_names),
        "is_classifier": config.is_classifier,
        "file_format": config.data.file_format,
        "timestamp_column": config.data.timestamp_column,
        "test_fraction": config.training.test_fraction,
        "max_rows": config.training.max_rows,
        "fit_max_rows": config.training.fit_max_rows.get(lineage.candidate),
        "random_seed": config.training.random_seed,
        "openmp_threads": lineage.openmp_threads,
    }


def script_text(lineage: Lineage, code: Path | None) -> str:
    from modelops.training.pipelines import build_pipeline

    with logged_code_first(code):
        source, imports = render(build_pipeline(lineage.config, lineage.candidate, lineage.params))
    text = SCRIPT.replace("@@MODEL@@", lineage.model).replace("@@VERSION@@", lineage.version)
    text = text.replace("@@THREADS@@", str(lineage.openmp_threads or ""))
    text = text.replace("@@IMPORTS@@", "\n".join(imports)).replace("@@PIPELINE@@", source.strip())
    return text.replace("@@SETTINGS@@", pprint.pformat(settings_of(lineage), sort_dicts=False, width=100))


def readme_text(lineage: Lineage, store: Store) -> str:
    versions = lineage.versions
    return README.format(
        model=lineage.model, version=lineage.version, candidate=lineage.candidate, params=lineage.params,
        seed=lineage.config.training.random_seed, mlflow_run_id=lineage.mlflow_run_id,
        airflow_run_id=lineage.airflow_run_id, manifest_uri=lineage.manifest.get("uri"),
        dataset_hash=lineage.manifest.get("dataset_hash"), rows=lineage.manifest.get("rows"),
        fit_rows=lineage.training_rows.get("fit", "every"), bucket=store.bucket,
        code_version=versions.get(versioning.CODE_VERSION_TAG, "unknown"),
        sklearn=versions.get(versioning.LIBRARY_TAGS["scikit-learn"], "?"),
        pandas=versions.get(versioning.LIBRARY_TAGS["pandas"], "?"),
        numpy=versions.get(versioning.LIBRARY_TAGS["numpy"], "?"),
    )  # fmt: skip


def export(model: str, version: str, folder: Path, *, store: Store | None = None) -> dict:
    """Write the export of ``model`` version ``version`` (a number or an alias) into ``folder``;
    returns what was written. Refuses (naming them) snapshot objects that changed since training."""
    store = store or Store()
    lineage = read_lineage(model, version, store=store)  # NotReproducible: the caller says so
    changed = [c for c in input_checks.snapshot_objects(lineage.manifest, store) if c.blocks]
    if changed:
        raise ExportRefused("; ".join(f"{c.subject} changed since the training run read it "
                                      f"(ETag then {c.then}, now {c.now})" for c in changed))  # fmt: skip
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = download_snapshot(lineage.manifest, folder, store)
    with tempfile.TemporaryDirectory(prefix="reproduce-export-") as scratch:
        logged = logged_code_folder(download_model(lineage.model_uri, Path(scratch)))
        code = None
        if logged is not None:
            code = folder / "code"
            shutil.rmtree(code, ignore_errors=True)
            shutil.copytree(logged, code, ignore=shutil.ignore_patterns("__pycache__"))
        text = script_text(lineage, code)
    manifest = {key: lineage.manifest.get(key) for key in ("uri", "model", "run_id", "as_of", "window", "rows",
                                                           "dataset_hash", "objects")} | {"files": files}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (folder / SCRIPT_NAME).write_text(text)
    (folder / "README.md").write_text(readme_text(lineage, store))
    log.info("exported %s version %s to %s", model, lineage.version, folder)
    return {"model": model, "version": lineage.version, "folder": str(folder), "script": str(folder / SCRIPT_NAME),
            "files": len(files), "own_code": code is not None}  # fmt: skip
