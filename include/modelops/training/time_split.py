"""The train/test split of a training set: the most recent rows held out when the data has a
time column (what serving will face), else a seeded random split.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelops.config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)


def parse_times(values):
    """UTC instants of a timestamp column: ISO 8601 of any precision or offset (rows may differ:
    ``...00:00+00:00`` beside ``...00:32:34.751131+00:00``), else inferred per value; a value
    that cannot be read becomes NaT for the caller to report."""
    import pandas as pd

    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(values, utc=True, format="mixed", errors="coerce")


def time_split(df: pd.DataFrame, config: ModelConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the most recent rows when the data has a time column, else a seeded random split.

    Testing on the future is what serving will face; a random split flatters the model when the
    world drifts. The cut is at the (1 - test_fraction) row quantile of time; rows sharing the
    cut timestamp stay together (on the train side, unless that would leave no test rows). A
    single timestamp for every row falls back to the random split. Same input, same split.
    """
    from sklearn.model_selection import train_test_split

    fraction = config.training.test_fraction
    if len(df) < 2:
        raise ValueError(f"{config.name}: need at least 2 rows to split, got {len(df)}")
    column = config.data.timestamp_column
    if column and column in df.columns:
        times = parse_times(df[column])
        if times.isna().any():
            bad = df.loc[times.isna(), column].head(3).tolist()
            raise ValueError(
                f"{config.name}: column '{column}' has {int(times.isna().sum())} missing or unparseable timestamps, e.g. {bad}"
            )
        order = times.reset_index(drop=True).sort_values(kind="stable").index.to_numpy()
        sorted_times = times.iloc[order].reset_index(drop=True)
        n_train = max(1, min(len(df) - 1, int(round(len(df) * (1.0 - fraction)))))
        cutoff = sorted_times.iloc[n_train - 1]
        is_train = sorted_times <= cutoff
        if is_train.all():  # the cut timestamp's block reaches the end: it goes to test instead
            is_train = sorted_times < cutoff
        if is_train.all() or not is_train.any():
            log.warning("%s: all rows share the cut timestamp %s; falling back to a random split", config.name, cutoff)
        else:
            # Each side taken once from the frame, in time order (no sorted copy of the whole frame).
            train, test = (_renumbered(df.iloc[order[mask]]) for mask in (is_train.to_numpy(), ~is_train.to_numpy()))
            log.info("%s: time split at %s: %d train rows, %d test rows", config.name, cutoff, len(train), len(test))
            return train, test

    stratify = None
    if config.is_classifier and config.target in df.columns:
        counts = df[config.target].value_counts()
        if len(counts) > 1 and counts.min() >= 2:
            stratify = df[config.target]
    train, test = train_test_split(
        df, test_size=fraction, random_state=config.training.random_seed, shuffle=True, stratify=stratify
    )
    log.info(
        "%s: random split (seed %d): %d train rows, %d test rows",
        config.name,
        config.training.random_seed,
        len(train),
        len(test),
    )
    return _renumbered(train), _renumbered(test)


def _renumbered(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a fresh 0..n-1 index, set in place: ``reset_index`` would copy every column."""
    import pandas as pd

    frame.index = pd.RangeIndex(len(frame))
    return frame


def training_split(model: ModelConfig, run_id: str, store=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's train/test split of its snapshot (labelled rows, capped at ``training.max_rows``):
    what its candidates trained on and its evaluation (and the deploy's parity check) scored."""
    from modelops.data.snapshot import load_manifest, load_snapshot_frame
    from modelops.store import Store

    store = store or Store()
    return split_snapshot_frame(model, load_snapshot_frame(model, load_manifest(model.name, run_id, store), store))


def split_snapshot_frame(model: ModelConfig, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled rows of a snapshot's frame, capped at ``training.max_rows`` (a seeded sample),
    split by :func:`time_split`: the one rule a run and its rebuild (``modelops.reproduce``) share."""
    labelled = frame[model.target].notna()
    if not labelled.all():  # a copy only when rows must go
        frame = frame[labelled]
    if len(frame) > model.training.max_rows:
        frame = frame.sample(n=model.training.max_rows, random_state=model.training.random_seed).sort_index()
    return time_split(frame, model)
