"""The drift benchmark's data: 12 numeric + 8 categorical features from a deterministic generator,
a known subset drifted in the current stream, written chunk by chunk to Parquet. Used by
:mod:`benchmarks.drift` and its children.
"""

from __future__ import annotations

import time
from pathlib import Path

SEED = 20261125
CHUNK_ROWS = 100_000


#: name -> (distribution, parameters); numeric values are float64 except the Poisson count.
NUMERIC = {
    "num_00": ("normal", (50.0, 10.0)),
    "num_01": ("normal", (0.0, 1.0)),
    "num_02": ("lognormal", (3.0, 0.5)),
    "num_03": ("exponential", (2.0,)),
    "num_04": ("uniform", (0.0, 100.0)),
    "num_05": ("gamma", (2.0, 3.0)),
    "num_06": ("uniform", (-1.0, 1.0)),
    "num_07": ("poisson", (3.0,)),
    "num_08": ("normal", (1000.0, 200.0)),
    "num_09": ("beta", (2.0, 5.0)),
    "num_10": ("student_t", (5.0,)),
    "num_11": ("normal", (-5.0, 3.0)),
}
#: name -> number of categories (Zipf-like frequencies, 1/(k+1)^0.8), values "v0", "v1", ...
CATEGORICAL = {
    "cat_00": 4,
    "cat_01": 3,
    "cat_02": 10,
    "cat_03": 2,
    "cat_04": 6,
    "cat_05": 30,
    "cat_06": 5,
    "cat_07": 12,
}
#: Missing values (2%) in one numeric and one categorical feature, the same on both sides.
NULL_SHARE = {"num_04": 0.02, "cat_02": 0.02}
#: The planted drift in the current data (ground truth for both tools).
DRIFTED = {
    "num_00": "mean shifted by +0.5 reference std",
    "num_02": "mean shifted by +0.5 reference std",
    "num_06": "mean shifted by +0.5 reference std",
    "cat_00": "category frequencies reversed (most frequent becomes least)",
    "cat_04": "new category 'v_new' on 15% of rows (others scaled down)",
}
NEW_CATEGORY_SHARE = 0.15
STREAMS = {"reference": 1, "current": 2}


def _std(name: str) -> float:
    """The population std of a numeric feature's reference distribution (for the planted shift)."""
    import math

    kind, params = NUMERIC[name]
    if kind == "normal":
        return params[1]
    if kind == "lognormal":
        mu, sigma = params
        return math.sqrt((math.exp(sigma**2) - 1) * math.exp(2 * mu + sigma**2))
    if kind == "uniform":
        return (params[1] - params[0]) / math.sqrt(12)
    raise ValueError(f"no planted shift for {name} ({kind})")


def _category_probabilities(k: int) -> list[float]:
    weights = [1.0 / (i + 1) ** 0.8 for i in range(k)]
    total = sum(weights)
    return [w / total for w in weights]


def _chunk_table(stream: str, index: int, rows: int):
    """One chunk as a pyarrow Table: a pure function of (stream, chunk index), so the 100k current
    rows are the first chunk of the 1M and 5M data, whatever process generates them."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([SEED, STREAMS[stream], index])
    drift = stream == "current"
    columns: dict[str, pa.Array] = {}
    for name, (kind, params) in NUMERIC.items():
        if kind == "normal":
            values = rng.normal(params[0], params[1], rows)
        elif kind == "lognormal":
            values = rng.lognormal(params[0], params[1], rows)
        elif kind == "exponential":
            values = rng.exponential(params[0], rows)
        elif kind == "uniform":
            values = rng.uniform(params[0], params[1], rows)
        elif kind == "gamma":
            values = rng.gamma(params[0], params[1], rows)
        elif kind == "poisson":
            values = rng.poisson(params[0], rows).astype(np.int64)
        elif kind == "beta":
            values = rng.beta(params[0], params[1], rows)
        elif kind == "student_t":
            values = rng.standard_t(params[0], rows)
        else:  # pragma: no cover - table above is fixed
            raise ValueError(kind)
        if drift and name in DRIFTED:
            values = values + 0.5 * _std(name)
        mask = rng.random(rows) < NULL_SHARE[name] if name in NULL_SHARE else None
        columns[name] = pa.array(values, mask=mask)
    for name, k in CATEGORICAL.items():
        labels = [f"v{i}" for i in range(k)]
        probabilities = _category_probabilities(k)
        if drift and name == "cat_00":
            probabilities = probabilities[::-1]
        if drift and name == "cat_04":
            labels = labels + ["v_new"]
            probabilities = [p * (1 - NEW_CATEGORY_SHARE) for p in probabilities] + [NEW_CATEGORY_SHARE]
        codes = rng.choice(len(labels), size=rows, p=probabilities)
        values = np.asarray(labels, dtype=object)[codes]
        mask = rng.random(rows) < NULL_SHARE[name] if name in NULL_SHARE else None
        columns[name] = pa.array(values, type=pa.string(), mask=mask)
    return pa.table(columns)


def _write_parquet(path: Path, stream: str, rows: int) -> float:
    """Write ``rows`` rows of a stream, one row group per chunk; returns seconds taken."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    writer = None
    try:
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            table = _chunk_table(stream, index, min(CHUNK_ROWS, rows - start))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=CHUNK_ROWS)
    finally:
        if writer is not None:
            writer.close()
    return time.perf_counter() - started


def model_config():
    """The benchmark's ModelConfig: 12 numeric + 8 categorical features, default drift settings."""
    from modelops.config import ModelConfig

    return ModelConfig.model_validate(
        {
            "name": "drift_bench",
            "description": "Synthetic 12 numeric + 8 categorical features for the drift benchmark.",
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": n, "type": "numeric", "nullable": n in NULL_SHARE} for n in NUMERIC]
            + [{"name": n, "type": "categorical", "nullable": n in NULL_SHARE} for n in CATEGORICAL],
            "metrics": {"primary": "roc_auc"},
        }
    )


# ------------------------------------------------------------------------------------------------
# Children: ours (this venv) and Evidently (its own venv)
# ------------------------------------------------------------------------------------------------
