"""The inputs of a version now versus when it was trained, each compared and named.

Two kinds: what the rebuild reads (every snapshot object: its ETag now must be the manifest's, or
the rebuild would train on other bytes, so a changed or missing object *blocks* it), and what runs
the rebuild (code version, declaration and suite, library and Python versions, the model's own
code): a difference there is reported beside the outcome, so a mismatch names its likely cause
and a match says it held despite the change.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from modelops import versioning
from modelops.config import ConfigError, get_model
from modelops.store import Store

log = logging.getLogger(__name__)

SAME = "same"
CHANGED = "changed"
MISSING = "missing"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class InputCheck:
    """One input compared: ``subject`` (``snapshot object s3://...``, ``code version``, ...)."""

    subject: str
    then: str
    now: str
    status: str
    #: True: the rebuild cannot use the original input (it would read other bytes).
    blocks: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.status == SAME:
            return f"{self.subject}: unchanged ({_short(self.now)})"
        return f"{self.subject}: {self.status} (then {_short(self.then)}, now {_short(self.now)})"


def _short(value: str) -> str:
    return value[:16] + "…" if len(value) > 40 else value


def _compare(subject: str, then: str | None, now: str | None, blocks: bool = False) -> InputCheck:
    then, now = then or UNKNOWN, now or UNKNOWN
    status = UNKNOWN if UNKNOWN in (then, now) else SAME if then == now else CHANGED
    return InputCheck(subject, then, now, status, blocks and status != SAME)


def snapshot_objects(manifest: dict, store: Store) -> list[InputCheck]:
    """Every object the snapshot read (readable ones: what training used), its ETag now."""
    from botocore.exceptions import ClientError

    unreadable = {item["key"] for item in manifest.get("unreadable", [])}
    checks = []
    for entry in manifest["objects"]:
        if entry["key"] in unreadable:
            continue
        subject = f"snapshot object {store.uri(entry['key'])}"
        try:
            now = store.client.head_object(Bucket=store.bucket, Key=entry["key"])["ETag"].strip('"')
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
            checks.append(InputCheck(subject, entry["etag"], "(deleted)", MISSING, blocks=True))
            continue
        checks.append(_compare(subject, entry["etag"], now, blocks=True))
    return checks


def _declared_now(model: str):
    try:
        return get_model(model)
    except ConfigError:
        return None


def runtime_inputs(model: str, recorded: dict[str, str]) -> list[InputCheck]:
    """Code version, declaration and suite hashes, libraries and Python: then (tags) versus now."""
    current = _declared_now(model)
    libraries = versioning.library_versions()
    checks = [
        _compare("code version", recorded.get(versioning.CODE_VERSION_TAG), versioning.code_version()),
        _compare(
            "declaration SHA-256",
            recorded.get(versioning.DECLARATION_TAG),
            versioning.declaration_hash(current) if current is not None else "(no declaration now)",
        ),
        _compare(
            "suite SHA-256",
            recorded.get(versioning.SUITE_TAG),
            versioning.suite_hash(current) if current is not None else "(no declaration now)",
        ),
    ]
    for distribution, tag in versioning.LIBRARY_TAGS.items():
        checks.append(_compare(f"{distribution} version", recorded.get(tag), libraries[distribution]))
    checks.append(_compare("python version", recorded.get(versioning.PYTHON_TAG), platform.python_version()))
    return checks


def folder_sha256(folder: Path | None) -> str | None:
    """SHA-256 over the relative paths and contents of a code folder's Python files (None: no folder)."""
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def own_code(model: str, logged_package: Path | None) -> InputCheck | None:
    """The model's own code package logged with the version versus ``include/models/<package>``
    now (the rebuild uses the logged copy: this only names a later change). None: no own code."""
    if logged_package is None:
        return None
    from modelops.usercode.loader import package_dir

    current = _declared_now(model)
    now = folder_sha256(package_dir(current)) if current is not None and current.code is not None else None
    return _compare(f"model's own code ({logged_package.name})", folder_sha256(logged_package), now or "(absent now)")
