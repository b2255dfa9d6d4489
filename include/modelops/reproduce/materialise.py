"""Local copies of what a rebuild reads: the snapshot's objects (checked against the manifest's
ETag and SHA-256 as they are read) and the registered model's artifact (with its logged code).

The rebuild process and an exported script then need no S3, no MLflow and no credentials: the
files beside them are the evidence, each one verified to be the bytes the training run read.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from modelops.store import Store

log = logging.getLogger(__name__)

DATA_FOLDER = "data"
MODEL_FOLDER = "model"


class ChangedInput(RuntimeError):
    """An object's bytes are not the ones the manifest recorded; the message names it."""


def training_entries(manifest: dict) -> list[dict]:
    """The manifest's objects training read (unreadable ones left out, as the snapshot frame does)."""
    unreadable = {item["key"] for item in manifest.get("unreadable", [])}
    return [entry for entry in manifest["objects"] if entry["key"] not in unreadable]


def download_snapshot(manifest: dict, folder: Path, store: Store) -> list[dict]:
    """Each training object to ``folder/data/<key>``; returns ``[{key, path, sha256, rows}]``
    (``path`` relative to ``folder``). A file already there with the right SHA-256 is kept."""
    files = []
    for entry in training_entries(manifest):
        relative = Path(DATA_FOLDER) / entry["key"]
        target = folder / relative
        if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == entry["sha256"]):
            response = store.client.get_object(Bucket=store.bucket, Key=entry["key"])
            etag = response["ETag"].strip('"')
            body = response["Body"].read()
            if etag != entry["etag"] or hashlib.sha256(body).hexdigest() != entry["sha256"]:
                raise ChangedInput(
                    f"snapshot object {store.uri(entry['key'])} changed since the training run read it "
                    f"(ETag {etag}, recorded {entry['etag']})"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        files.append(
            {"key": entry["key"], "path": relative.as_posix(), "sha256": entry["sha256"], "rows": entry.get("rows")}
        )
    log.info("snapshot %s: %d files in %s", manifest.get("uri"), len(files), folder / DATA_FOLDER)
    return files


def download_model(model_uri: str, folder: Path) -> Path:
    """The registered model's artifact (MLmodel, the skops file, its logged code) in ``folder/model``."""
    from modelops.training.tracking import configured_mlflow

    target = folder / MODEL_FOLDER
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    local = configured_mlflow().artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(target))
    return Path(local)


def logged_code_folder(model_dir: Path) -> Path | None:
    """The folder the artifact's own code was logged in (it goes first on ``sys.path``), or None."""
    from modelops.usercode.models import flavor_conf

    code = flavor_conf(model_dir).get("code")
    folder = model_dir / code if code else None
    return folder if folder is not None and folder.is_dir() and any(folder.iterdir()) else None
