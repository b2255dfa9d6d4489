"""Feature steps of churn_plus: applied before the platform's shared preprocessing, in training
and serving alike (they are part of the logged model)."""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

#: Contract length in months; a renewal falls on every multiple of it.
TERM_MONTHS = {"one-year": 12, "two-year": 24}


class RenewalWindow(TransformerMixin, BaseEstimator):
    """Adds ``near_renewal``: 1 when a fixed-term contract renews this month or next, else 0.

    Customers leave at renewal time; the raw tenure hides that behind a modulo no tree learns
    from 30 days of data. Stateless: ``fit`` learns nothing.
    """

    def fit(self, X: pd.DataFrame, y=None) -> RenewalWindow:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        term = out["contract"].map(TERM_MONTHS)
        tenure = pd.to_numeric(out["tenure_months"], errors="coerce")
        position = tenure % term
        near = (tenure > 0) & ((position == 0) | (position == term - 1))
        out["near_renewal"] = near.astype(float)
        return out


def renewal_window() -> RenewalWindow:
    """The feature step the declaration names (``churn_plus.features:renewal_window``)."""
    return RenewalWindow()
