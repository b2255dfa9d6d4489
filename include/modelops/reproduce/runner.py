"""Reproduce one registered version: read its lineage, compare its inputs now with then, rebuild
it in a fresh process from local copies of its snapshot, and judge the result.

A snapshot object whose ETag changed (or that is gone) stops the rebuild before it starts: the
training bytes are no longer there, and the report names each such object. Everything else that
changed (code, declaration, suite, libraries, the model's own code) is named beside the verdict.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

from modelops.reproduce import inputs as input_checks
from modelops.reproduce.lineage import Lineage, NotReproducible, read_lineage
from modelops.reproduce.materialise import ChangedInput, download_model, download_snapshot, logged_code_folder
from modelops.reproduce.rebuild import RebuildFailed, run_in_fresh_process
from modelops.reproduce.report import MISMATCH, NOT_REPRODUCIBLE, Report, judge
from modelops.store import Store

log = logging.getLogger(__name__)


def logged_package(lineage: Lineage, model_dir: Path) -> tuple[Path | None, Path | None]:
    """The artifact's logged code folder and, inside it, the model's own package (None, None: no own code)."""
    code = logged_code_folder(model_dir)
    if code is None or lineage.config.code is None:
        return code, None
    package = code / lineage.config.code.package
    return code, package if package.is_dir() else None


def rebuild_request(lineage: Lineage, folder: Path, files: list[dict], model_dir: Path, code: Path | None) -> dict:
    """What the rebuild process needs, all of it recorded: declaration, candidate, params, files."""
    from modelops import versioning

    return {
        "model": lineage.model,
        "version": lineage.version,
        "declaration": versioning.declaration_record(lineage.config),
        "candidate": lineage.candidate,
        "params": lineage.params,
        "folder": str(folder),
        "files": files,
        "model_dir": str(model_dir),
        "code_folder": str(code) if code is not None else None,
        "openmp_threads": lineage.openmp_threads,
    }


def _blocked(model: str, lineage: Lineage, checks: list) -> Report:
    reasons = [f"{c.subject} changed since the training run read it (ETag then {c.then}, now {c.now}): "
               "not rebuilt, the training data is no longer there" for c in checks if c.blocks]  # fmt: skip
    return Report(model, lineage.version, MISMATCH, reasons, checks, lineage.to_json())


def reproduce(
    model: str, version: str, *, workdir: Path | None = None, store: Store | None = None, timeout: float = 3600.0
) -> Report:
    """The :class:`~modelops.reproduce.report.Report` of rebuilding ``model`` version ``version``
    (a number or an alias). ``workdir`` keeps the local copies and the rebuild's request and
    result (default: a temporary folder, removed after)."""
    store = store or Store()
    try:
        lineage = read_lineage(model, version, store=store)
    except NotReproducible as exc:
        return Report(model, str(version), NOT_REPRODUCIBLE, [str(exc)])
    checks = input_checks.snapshot_objects(lineage.manifest, store) + input_checks.runtime_inputs(
        model, lineage.versions
    )
    if any(c.blocks for c in checks):
        return _blocked(model, lineage, checks)
    with tempfile.TemporaryDirectory(prefix=f"reproduce-{model}-") as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            files = download_snapshot(lineage.manifest, folder, store)
        except ChangedInput as exc:  # changed between the check and the read
            return Report(model, lineage.version, MISMATCH, [str(exc)], checks, lineage.to_json())
        model_dir = download_model(lineage.model_uri, folder)
        code, package = logged_package(lineage, model_dir)
        own = input_checks.own_code(model, package)
        checks += [own] if own is not None else []
        try:
            comparison = run_in_fresh_process(rebuild_request(lineage, folder, files, model_dir, code), folder, timeout)
        except (RebuildFailed, subprocess.TimeoutExpired) as exc:
            return Report(model, lineage.version, MISMATCH, [f"the rebuild failed: {exc}"], checks, lineage.to_json())
    log.info("%s version %s rebuilt: %s", model, lineage.version, comparison)
    return judge(model, lineage.version, checks, lineage.to_json(), comparison)
