"""The drift-method registry: every method says which kinds it judges, in which regime, with which threshold."""

from __future__ import annotations

import pytest

from modelops.config import DriftSpec
from modelops.drift.stattest import STATTESTS, get_stattest, stattest_for


def test_each_kind_has_one_deciding_method_per_regime():
    assert stattest_for("numeric", "test").name == "ks"
    assert stattest_for("numeric", "distance").name == "wasserstein"
    assert stattest_for("categorical", "test").name == "chi_square"
    assert stattest_for("categorical", "distance").name == "jensen_shannon"
    for regime in ("test", "distance"):
        for kind in ("numeric", "categorical"):
            deciding = [t for t in STATTESTS.values() if t.regime == regime and kind in t.kinds]
            assert len(deciding) == 1, (kind, regime, deciding)


def test_psi_is_reported_but_never_decides():
    assert get_stattest("psi").regime is None
    assert set(get_stattest("psi").kinds) == {"numeric", "categorical"}


def test_default_thresholds_come_from_the_drift_spec():
    spec = DriftSpec()
    assert get_stattest("ks").default_threshold == spec.p_value
    assert get_stattest("wasserstein").default_threshold == spec.wasserstein_threshold
    assert get_stattest("jensen_shannon").threshold(DriftSpec(jensen_shannon_threshold=0.3)) == 0.3


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: .*chi_square"):
        get_stattest("anderson")
