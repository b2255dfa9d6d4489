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


def best_of(runs: list[dict]) -> dict:
    """Of repeated runs, the fastest (wall), with the least CPU of any; an error if any failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    best = dict(min(runs, key=lambda r: r["seconds_end_to_end"]))
    best["cpu_seconds"] = min(r["cpu_seconds"] for r in runs)
    best["repeats_seconds"] = [round(r["seconds_end_to_end"], 3) for r in runs]
    best["repeats_cpu_seconds"] = [round(r["cpu_seconds"], 3) for r in runs]
    return best


def floor_and_before(floors: dict, ours: dict, ours_pandas: dict, before: dict, before_include: str | None) -> dict:
    """Ours as a ratio to the floor (wall and CPU) and to the code before (same reader, same run)."""
    from benchmarks.drift import BEFORE_ENV, CURRENT_SIZES, FLOOR_BINNINGS, FLOOR_TARGET, _r, _size_label

    sizes = {}
    for rows in CURRENT_SIZES:
        a = ours.get(rows)
        if not a or "error" in a:
            continue
        entry: dict = {
            "ours_seconds": _r(a["seconds_end_to_end"]),
            "ours_cpu_seconds": _r(a["cpu_seconds"]),
        }
        for binning in FLOOR_BINNINGS:
            f = floors.get((rows, binning), {"error": "not run"})
            if "error" in f:
                entry[f"floor_{binning}"] = f
                continue
            entry[f"floor_{binning}_seconds"] = _r(f["seconds_end_to_end"])
            entry[f"floor_{binning}_cpu_seconds"] = _r(f["cpu_seconds"])
            entry[f"ratio_wall_over_floor_{binning}"] = _r(a["seconds_end_to_end"] / f["seconds_end_to_end"])
            entry[f"ratio_cpu_over_floor_{binning}"] = _r(a["cpu_seconds"] / f["cpu_seconds"])
        p = ours_pandas.get(rows, {})
        if p and "error" not in p:
            entry["ours_through_pandas_seconds"] = _r(p["seconds_end_to_end"])
            entry["ours_through_pandas_cpu_seconds"] = _r(p["cpu_seconds"])
        b = before.get(rows)
        if b and "error" not in b:
            entry["before_seconds"] = _r(b["seconds_end_to_end"])
            entry["before_cpu_seconds"] = _r(b["cpu_seconds"])
            entry["ratio_wall_over_before"] = _r(a["seconds_end_to_end"] / b["seconds_end_to_end"])
            entry["ratio_cpu_over_before"] = _r(a["cpu_seconds"] / b["cpu_seconds"])
            if p and "error" not in p:
                entry["ratio_cpu_through_pandas_over_before"] = _r(p["cpu_seconds"] / b["cpu_seconds"])
            entry["same_verdicts_as_before"] = all(
                b["features"][n]["drifted"] == a["features"][n]["drifted"] for n in a["features"]
            )
        elif b:
            entry["before"] = b
        sizes[_size_label(rows)] = entry
    return {
        "floor": "decode the Parquet file (same reader settings as ours) and bin every column once: numeric "
        "values on the baseline's 12 bins (searchsorted: np.searchsorted + np.bincount; grid: the lookup-grid "
        "Binner ours uses), categorical values counted with pyarrow.compute.value_counts",
        "before": f"the drift code of another revision ({BEFORE_ENV}={before_include}), reading pandas batches as "
        "it had to, judged against the same baseline file (it ignores fine_bins)"
        if before_include
        else f"not measured ({BEFORE_ENV} not set)",
        "target_ratio_cpu_over_floor": FLOOR_TARGET,
        "sizes": sizes,
    }
