"""What each served version is judged against, from the model registry: its baseline and test metrics.

A model version is registered with tags pointing at its training baseline (``baseline_uri``) and
its gate decision record (``decision_uri``); monitoring follows them so each version is compared
with its own training, not with whatever is champion today.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.store import Store

log = logging.getLogger(__name__)


def registry_baselines(store: Store, model: str) -> Callable[[str], Mapping[str, Any] | None]:
    """version -> the training baseline that version was registered with (its ``baseline_uri`` tag)."""
    from modelops import registry

    def load(version: str) -> Mapping[str, Any] | None:
        try:
            tags = registry.client().get_model_version(model, str(version)).tags or {}
        except Exception:  # noqa: BLE001 - an unknown version has no baseline; reported as such
            log.warning("%s version %s is not in the registry", model, version)
            return None
        uri = tags.get("baseline_uri")
        return store.get_json(store.key_of(uri)) if uri else None

    return load


def registry_evaluations(store: Store, model: str) -> Callable[[str], Mapping[str, Any] | None]:
    """version -> the test-split evaluation its gate decision recorded (the performance reference)."""
    from modelops import registry

    def load(version: str) -> Mapping[str, Any] | None:
        try:
            tags = registry.client().get_model_version(model, str(version)).tags or {}
        except Exception:  # noqa: BLE001
            return None
        uri = tags.get("decision_uri")
        return store.get_json(store.key_of(uri)).get("candidate") if uri else None

    return load
