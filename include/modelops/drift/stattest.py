"""The registry of drift methods: each statistical test says which feature kinds it judges,
in which regime it decides, and which DriftSpec setting (with its default) is its threshold.

One test per module (``ks``, ``wasserstein``, ``chi_square``, ``jensen_shannon``, ``psi``), as
in Evidently's stattests: a module registers its test here when imported, so :mod:`.detect`
picks a method by feature kind and regime instead of hard-coding a table of its own. The small
helpers every test shares (proportions, aligned category counts, the per-feature result schema)
live here too, so each test module reads as the statistic and its verdict only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelops.config import DriftSpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical"]
Regime = Literal["test", "distance"]

#: Keys of every per-feature result, in order: the schema does not depend on kind or status.
#: ``statistic`` is the method's own number (KS D, chi-square, or the distance); ``threshold`` is
#: what it is judged against (the p-value level for tests, the distance threshold otherwise);
#: ``effect_size``/``effect_threshold`` is the floor every verdict must also clear, and
#: ``severity`` = effect_size / effect_threshold orders features across methods.
RESULT_KEYS = (
    "feature",
    "kind",
    "status",
    "method",
    "statistic",
    "p_value",
    "p_value_adjusted",
    "threshold",
    "effect_measure",
    "effect_size",
    "effect_threshold",
    "severity",
    "drifted",
    "psi",
    "psi_threshold",
    "psi_drifted",
    "reference_count",
    "current_count",
    "reference_null_fraction",
    "current_null_fraction",
    "current_invalid_count",
    "message",
    "details",
)


@dataclass(frozen=True)
class StatTest:
    """One drift method: its name, the feature kinds it allows, the regime it decides in
    (``None``: reported only, never decides) and the DriftSpec field holding its threshold."""

    name: str
    kinds: tuple[Kind, ...]
    regime: Regime | None
    threshold_setting: str
    func: Callable[..., Any]

    @property
    def default_threshold(self) -> float:
        """The threshold a model gets when its config does not set one."""
        return DriftSpec.model_fields[self.threshold_setting].default

    def threshold(self, spec: DriftSpec) -> float:
        return getattr(spec, self.threshold_setting)


STATTESTS: dict[str, StatTest] = {}
#: The modules that register a method: looked up on first use, so a caller asking for a
#: method by name or by kind and regime finds every one without importing them itself.
METHOD_MODULES = ("ks", "wasserstein", "chi_square", "jensen_shannon", "psi")


def _load_methods() -> None:
    for module in METHOD_MODULES:
        importlib.import_module(f"modelops.drift.{module}")


def register(
    name: str, *, kinds: tuple[Kind, ...], regime: Regime | None, threshold_setting: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``func`` as the drift method ``name`` (names are unique)."""
    if threshold_setting not in DriftSpec.model_fields:
        raise ValueError(f"{name}: {threshold_setting!r} is not a DriftSpec setting")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in STATTESTS and STATTESTS[name].func is not func:
            raise ValueError(f"drift method {name!r} is registered twice")
        STATTESTS[name] = StatTest(name, kinds, regime, threshold_setting, func)
        return func

    return decorate


def get_stattest(name: str) -> StatTest:
    """The registered method ``name``; the error lists the known ones."""
    _load_methods()
    try:
        return STATTESTS[name]
    except KeyError:
        raise ValueError(f"unknown drift method {name!r}; known: {sorted(STATTESTS)}") from None


def stattest_for(kind: str, regime: Regime) -> StatTest:
    """The method that decides drift for a feature of ``kind`` in ``regime``."""
    _load_methods()
    for test in STATTESTS.values():
        if test.regime == regime and kind in test.kinds:
            return test
    raise ValueError(f"no drift method judges {kind} features in the {regime!r} regime")


def feature_result(**values: Any) -> dict[str, Any]:
    """A per-feature result with every key of :data:`RESULT_KEYS` (None where not given)."""
    result = dict.fromkeys(RESULT_KEYS)
    result.update(values)
    return result


def severity(effect: float | None, threshold: float) -> float | None:
    return None if effect is None else effect / threshold


def proportions(counts: Sequence[float]) -> np.ndarray:
    import numpy as np

    array = np.asarray(counts, dtype=float)
    total = array.sum()
    if array.ndim != 1 or total <= 0 or (array < 0).any():
        raise ValueError(f"counts must be non-negative with a positive total, got {array.tolist()}")
    return array / total


def aligned(reference: Mapping[str, float], current: Mapping[str, float]) -> tuple[list[str], list[float], list[float]]:
    """Both count vectors over the union of categories (reference order first, then new ones)."""
    names = [k for k in reference] + sorted((k for k in current if k not in reference), key=lambda k: (-current[k], k))
    return names, [float(reference.get(k, 0)) for k in names], [float(current.get(k, 0)) for k in names]
