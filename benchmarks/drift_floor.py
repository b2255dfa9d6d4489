"""The floor of a drift check, measured beside ours: decode the file and bin every column once.

Any drift method must at least decode every value and put it in a bin (numeric: its bin on the
baseline's edges; categorical: a count per value). This child does only that, in plain
pyarrow/numpy, with the same reader settings as ours (record batches of ``READ_BATCH_ROWS``,
decoded on one thread, ``pre_buffer=False``), so ``ours / floor`` is the overhead of everything
else our check does (moments, per-bin sums, the reservoir, categories mapped to the baseline's
buckets, the comparison).

Two numeric binnings: ``searchsorted`` (``np.searchsorted`` + ``np.bincount``: the plain-numpy
floor) and ``grid`` (the lookup-grid :class:`modelops.drift.binning.Binner` ours uses, same
result, a few times faster), so the gap is reported against both.

Run by :mod:`benchmarks.drift` as ``python -m benchmarks.drift floor BASELINE CURRENT OUT MODE``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def floor_child(baseline_path: str, current_path: str, out_path: str, binning: str = "searchsorted") -> None:
    """Decode ``current_path`` batch by batch and bin every baseline feature once; write timings."""
    import gc

    import numpy as np
    import pandas  # noqa: F401 - the same imports as ours before the clock starts (allocators, kernels)
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import scipy.stats  # noqa: F401

    from benchmarks.drift import READ_BATCH_ROWS
    from benchmarks.drift import _cpu_s as cpu_s
    from benchmarks.drift import _maxrss_mb as maxrss_mb
    from modelops.drift.binning import Binner

    if binning not in ("searchsorted", "grid"):
        raise ValueError(f"binning must be 'searchsorted' or 'grid', got {binning!r}")
    baseline = json.loads(Path(baseline_path).read_text())
    numeric = {
        name: np.asarray(p["bins"]["edges"], dtype=float)
        for name, p in baseline["features"].items()
        if p["kind"] == "numeric"
    }
    categorical = [name for name, p in baseline["features"].items() if p["kind"] != "numeric"]
    binners = {name: Binner(edges) for name, edges in numeric.items()}
    counts = {name: np.zeros(edges.size + 1, dtype=np.int64) for name, edges in numeric.items()}
    categories: dict[str, dict] = {name: {} for name in categorical}
    gc.collect()
    rss_before, cpu_before = maxrss_mb(), cpu_s()
    started = time.perf_counter()
    rows = 0
    handle = pq.ParquetFile(current_path, pre_buffer=False)
    for batch in handle.iter_batches(batch_size=READ_BATCH_ROWS, use_threads=False):
        rows += batch.num_rows
        for name, edges in numeric.items():
            values = batch.column(name).to_numpy(zero_copy_only=False).astype(float, copy=False)
            values = values[~np.isnan(values)]
            index = binners[name].index(values) if binning == "grid" else np.searchsorted(edges, values, side="right")
            counts[name] += np.bincount(index, minlength=edges.size + 1)
        for name in categorical:
            counted = pc.value_counts(batch.column(name))
            for value, count in zip(
                counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
            ):
                categories[name][value] = categories[name].get(value, 0) + count
    seconds = time.perf_counter() - started
    result = {
        "mode": f"floor_{binning}",
        "rows": rows,
        "seconds_end_to_end": seconds,
        "cpu_seconds": cpu_s() - cpu_before,
        "peak_rss_mb": maxrss_mb(),
        "peak_rss_delta_mb": maxrss_mb() - rss_before,
        "binned_values": int(sum(int(c.sum()) for c in counts.values())),
    }
    Path(out_path).write_text(json.dumps(result))
