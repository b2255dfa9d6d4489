"""Serving benchmark, case ``serving_shadow``: what scoring a shadow costs the answers (issue 16).

``run_chain`` trains and promotes churn version 1 (HistGradientBoosting) and the deploy's parity
gate tags it; version 2 is the same model registered by a run of its own whose gate passed, put in
shadow the way ``deploy_churn mode=shadow`` does (:func:`modelops.deploy.shadow.start_shadow`: its
own parity gate, the alias, the record). Two servers then serve churn side by side, one worker
each, capture on:

* ``shadow_off``: ``MODELOPS_SERVING_SHADOW_ENABLED=false`` (the alias is ignored);
* ``shadow_on``: every answered request is also scored by version 2, off the response path;
* ``control``: a second shadow-off server, the same as the first. Off vs control is the harness's
  own noise on the same machine (an A/A comparison): an off -> on difference no larger than that
  is not evidence of a cost.

With ``MODELOPS_SERVING_SHADOW_CPUS`` set (the shadow process on CPUs of its own, the shadow-on
worker on the others) the two shadow-off servers are put on the worker's CPUs too, so the three
answer on equal cores. The AWS stand-in's CPU in each target's rounds is reported too (moto
parsing the captures' PUTs: on AWS that would not use this machine).

The same load generator and bodies as :mod:`benchmarks.serving` (``CONCURRENCY`` connections,
closed loop, interleaved rounds, the order alternating). The target: the shadow adds at most 20% to
p99. The shadow's own counters (scored, dropped, stale, failed) come from ``/metrics``, and every
row it scored must be in ``shadow/churn/`` after the servers stop.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.serving import AS_OF, CANDIDATES, MEASURE_S, ROUNDS, SCENARIOS, WARMUP_S, _bodies, _summary
from benchmarks.serving_load import LoadGenerator, start, stop, tree_cpu, wait_for

log = logging.getLogger("bench.serving_shadow")

TARGETS = ("shadow_off", "shadow_on", "control")
#: The paced passes: these shares of the lower saturation throughput of the two servers, the same
#: rate to both: traffic both carry at the same utilisation or less (a quarter: a fleet's usual load).
PACED_SHARES = (0.5, 0.25)
#: Paced rounds are longer than saturated ones: a worker writes a capture file every 5,000 rows
#: (``MODELOPS_CAPTURE_FLUSH_RECORDS``), every ~5 s of single records at these rates. In a 3-second
#: round, whether a file's write fell inside the window decided the round's p99 (3 ms or 40 ms);
#: 12 seconds holds two or more writes at either share, so both servers' p99 include them.
PACED_MEASURE_S = 12.0
PACED_ROUNDS = 3
#: Issue 16: the shadow adds no more than 20% to p99 latency.
MAX_P99_INCREASE = 0.20


def _shadow_version(model, store) -> str:
    """Version 2: version 1's model under a run id of its own, with a passing gate record; in shadow."""
    from modelops import registry
    from modelops.deploy import shadow
    from modelops.layout import decision_record_key

    champion = registry.version_for_alias(model.name, registry.CHAMPION)
    run_id = "bench_serving_shadow"
    record = store.get_json(decision_record_key(model.name, champion.tags["airflow_run_id"]))
    store.put_json(decision_record_key(model.name, run_id), record | {"note": "benchmark: the champion's twin"})
    tags = {k: v for k, v in champion.tags.items() if not k.startswith("scoring_path")} | {"airflow_run_id": run_id}
    version = registry.register_version(model.name, champion.source, champion.run_id, tags)
    shadow.start_shadow(model, str(version.version), actor="bench", run_id=run_id, store=store)
    return str(version.version)


def _start(env: dict, logs: Path) -> tuple[dict, dict]:
    from modelops.local.stack_config import free_port

    ports = {t: free_port() for t in TARGETS}
    off = {"MODELOPS_SERVING_SHADOW_ENABLED": "false"}
    extra = {"shadow_off": off, "shadow_on": {}, "control": off}
    processes = {
        t: start(t, [sys.executable, "-m", "modelops.serving", "--host", "127.0.0.1", "--port", str(ports[t])],
                 {**env, **extra[t]}, logs)
        for t in TARGETS
    }  # fmt: skip
    bases = {t: f"http://127.0.0.1:{ports[t]}" for t in TARGETS}
    try:
        import httpx

        for t in TARGETS:
            ready = lambda b=bases[t]: httpx.get(f"{b}/health", timeout=5).json()["models"]["churn"]["loaded"]  # noqa: E731
            wait_for(ready, t, 240, processes[t], logs / f"{t}.log")
    except BaseException:
        for process in processes.values():
            stop(process)
        raise
    if os.environ.get("MODELOPS_SERVING_SHADOW_CPUS"):
        _equal_cores(processes)
    return processes, bases


def _equal_cores(processes: dict) -> None:
    """With ``MODELOPS_SERVING_SHADOW_CPUS`` the shadow-on worker runs on the other CPUs: the two
    shadow-off servers are put on those too, so all three answer on the same cores and the
    comparison is of the shadow alone, not of a worker given fewer cores."""
    from modelops.serving import cpus

    worker_cpus = cpus.allowed() - cpus.parse(os.environ["MODELOPS_SERVING_SHADOW_CPUS"])
    for target in ("shadow_off", "control"):
        cpus.pin_threads(worker_cpus, processes[target].pid)
    log.warning("shadow-off servers on CPU(s) %s, as the shadow-on worker", cpus.text(worker_cpus))


def _shadow_counters(base: str) -> dict[str, float]:
    import httpx

    counters = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("modelops_shadow_") and 'model="churn"' in line:
            name, value = line.rsplit(" ", 1)
            counters[name.split("{")[0].removeprefix("modelops_shadow_").removesuffix("_total")] = float(value)
    return counters


def _capture_writer(base: str) -> dict[str, float]:
    """The worker's capture files (every stream) and its writer thread's CPU per file: the burst a
    file's write puts beside the answers, every 5,000 single records."""
    import httpx

    files = cpu = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("modelops_capture_files_written_total{"):
            files += float(line.rsplit(" ", 1)[1])
        elif line.startswith("modelops_capture_writer_cpu_seconds_total "):
            cpu = float(line.rsplit(" ", 1)[1])
    return {
        "files": files,
        "writer_cpu_s": cpu,
        "writer_cpu_ms_per_file": round(cpu / files * 1000, 1) if files else None,
    }


def _rows_in(bucket: str, prefix: str) -> int:
    import pyarrow.parquet as pq

    from modelops.store import Store

    store = Store(bucket=bucket)
    return sum(pq.read_metadata(io.BytesIO(store.get_bytes(o.key))).num_rows for o in store.list(prefix))


def _load(bases: dict, bodies: dict, pids: dict, aws_pid: int | None) -> tuple[dict, dict, dict, dict, dict, dict]:
    """Saturation rounds (closed loop), then paced rounds at each of ``PACED_SHARES`` of the lower
    saturation throughput of the two servers: at saturation a shadow's work takes capacity from the
    champion's; below it, what a request pays for the shadow is what p99 shows. Returns the runs,
    the server CPU seconds per (pass, scenario, target), the shadow processes' and the AWS stand-in's
    (moto: the captures' PUTs, which on AWS would not use this machine) in each target's rounds,
    the paced runs per share, and the rates."""

    runs = {s: {t: [] for t in TARGETS} for s in SCENARIOS}
    paced = {share: {s: {t: [] for t in TARGETS} for s in SCENARIOS} for share in PACED_SHARES}
    cpu = {p: {s: dict.fromkeys(TARGETS, 0.0) for s in SCENARIOS} for p in ("saturated", *PACED_SHARES)}
    children = {p: {s: dict.fromkeys(TARGETS, 0.0) for s in SCENARIOS} for p in ("saturated", *PACED_SHARES)}
    stand_in = {p: {s: dict.fromkeys(TARGETS, 0.0) for s in SCENARIOS} for p in ("saturated", *PACED_SHARES)}
    rates: dict = {share: {} for share in PACED_SHARES}
    loadgen = LoadGenerator()
    try:
        for scenario in SCENARIOS:
            for share in (None, *PACED_SHARES):
                rate, into, measure_s, rounds = None, runs, MEASURE_S, ROUNDS
                if share is not None:
                    saturated = min(
                        statistics.median(len(r["latencies"]) / MEASURE_S for r in runs[scenario][target])
                        for target in TARGETS
                    )
                    rate = rates[share][scenario] = share * saturated
                    into, measure_s, rounds = paced[share], PACED_MEASURE_S, PACED_ROUNDS
                for rnd in range(rounds):
                    for target in TARGETS[rnd % len(TARGETS) :] + TARGETS[: rnd % len(TARGETS)]:
                        url = f"{bases[target]}/models/churn/predict"
                        before = tree_cpu(pids[target]), tree_cpu(pids[target], descendants_only=True)
                        aws_before = tree_cpu(aws_pid) if aws_pid else 0.0
                        result = loadgen.run(url, bodies[scenario], WARMUP_S, measure_s, rate=rate)
                        total = result["ok_total"] + result["errors_total"]
                        used = tree_cpu(pids[target]) - before[0]
                        # The server's CPU (its shadow process included) per measured request, and the shadow process's.
                        measured = len(result["latencies"]) / total if total else 0
                        key = "saturated" if share is None else share
                        cpu[key][scenario][target] += used * measured
                        children[key][scenario][target] += measured * (
                            tree_cpu(pids[target], descendants_only=True) - before[1]
                        )
                        if aws_pid:
                            stand_in[key][scenario][target] += measured * (tree_cpu(aws_pid) - aws_before)
                        into[scenario][target].append(result)
                        ordered = sorted(result["latencies"]) or [0.0]
                        log.warning(
                            "%s %s %s round %d: %.1f req/s, p99 %.1f ms, load generator's longest stall %.1f ms",
                            scenario,
                            target,
                            f"paced {rate:.0f}/s" if rate else "saturated",
                            rnd,
                            len(result["latencies"]) / measure_s,
                            ordered[int(0.99 * (len(ordered) - 1))] * 1000,
                            result["loadgen_max_lag_ms"],
                        )
    finally:
        loadgen.close()
    return runs, cpu, children, stand_in, paced, rates


def bench_serving_shadow() -> dict:
    import httpx

    from benchmarks.run import quiet, running_stack
    from modelops.config import get_model
    from modelops.deploy.scoring_path import parity_gate
    from modelops.deploy.serving_client import reload_serving
    from modelops.store import Store
    from modelops.training.chain import run_chain

    model = get_model("churn")
    processes: dict = {}
    started = time.perf_counter()
    with running_stack() as stack:
        cfg = stack.config
        try:
            run_chain(model, AS_OF, "bench_serving", params={"candidates": list(CANDIDATES)})
            champion_path = parity_gate(model, "1").path
            reload_serving("churn", "1")
            shadow_version = _shadow_version(model, Store(cfg.bucket))
            stopped = quiet(stack)  # the two servers below need only S3 and the registry
            processes, bases = _start(cfg.environment(), stack.home / "bench-logs")
            bodies = {s: _bodies(model, s, without_nulls=False)["modelops"] for s in SCENARIOS}
            before_load = os.getloadavg()[0]
            pids = {t: p.pid for t, p in processes.items()}
            runs, cpu, children, stand_in, paced_runs, rates = _load(bases, bodies, pids, stack.running()["aws"])
            load_avg = [before_load, os.getloadavg()[0]]
            counters = _shadow_counters(bases["shadow_on"])
            capture = {t: _capture_writer(b) for t, b in bases.items()}
            described = {t: httpx.get(f"{b}/models", timeout=10).json()["models"] for t, b in bases.items()}
            for target in list(processes):  # SIGTERM: each flushes its shadow queue and capture buffer
                stop(processes.pop(target))
            shadow_rows = _rows_in(cfg.bucket, "shadow/churn/")
        finally:
            for process in processes.values():
                stop(process)

    def summary(runs_of: list, scenario: str, cpu_pass: str | float, target: str) -> dict:
        out = _summary(runs_of, SCENARIOS[scenario], cpu[cpu_pass][scenario][target])
        n = out["requests"]
        out["shadow_process_cpu_ms_per_request"] = (
            round(children[cpu_pass][scenario][target] / n * 1000, 2) if n else None
        )
        out["aws_stand_in_cpu_ms_per_request"] = (
            round(stand_in[cpu_pass][scenario][target] / n * 1000, 3) if n else None
        )
        return out

    results = {s: {t: summary(runs[s][t], s, "saturated", t) for t in TARGETS} for s in SCENARIOS}
    paced = {
        share: {s: {t: summary(paced_runs[share][s][t], s, share, t) for t in TARGETS} for s in SCENARIOS}
        for share in PACED_SHARES
    }

    def increase(of: dict) -> dict:
        """Pooled p99 off -> on, and the median of the rounds' own p99s (one stall sets a pooled p99);
        the control's p99 against shadow-off's is the same comparison between two equal servers."""
        out = {}
        for s in SCENARIOS:
            off, on, control = of[s]["shadow_off"], of[s]["shadow_on"], of[s]["control"]
            off_med, on_med = statistics.median(off["p99_ms_per_round"]), statistics.median(on["p99_ms_per_round"])
            out[s] = {
                "off_ms": off["p99_ms"],
                "on_ms": on["p99_ms"],
                "increase": round(on["p99_ms"] / off["p99_ms"] - 1, 3),
                "round_median_off_ms": off_med,
                "round_median_on_ms": on_med,
                "round_median_increase": round(on_med / off_med - 1, 3),
                "control_ms": control["p99_ms"],
                "control_increase": round(control["p99_ms"] / off["p99_ms"] - 1, 3),
            }
        return out

    p99 = increase(results)
    p99_paced = {}
    for share in PACED_SHARES:
        p99_paced[str(share)] = increase(paced[share])
        for scenario, rate in rates[share].items():
            p99_paced[str(share)][scenario]["rate_per_s"] = round(rate, 1)
    paced = {str(share): v for share, v in paced.items()}
    summary = {
        "model": "churn",
        "champion": "1",
        "shadow": shadow_version,
        "scoring_paths": {
            t: {m["name"]: (m["scoring_path"], m.get("shadow")) for m in d if m["name"] == "churn"}
            for t, d in described.items()
        },
        "champion_parity_path": champion_path,
        "results": results,
        "p99": p99,
        "target_max_p99_increase": MAX_P99_INCREASE,
        "target_met_at_saturation": all(v["increase"] <= MAX_P99_INCREASE for v in p99.values()),
        "paced_results": paced,
        "p99_paced": p99_paced,
        "target_met_paced": {
            share: all(v["increase"] <= MAX_P99_INCREASE for v in by_scenario.values())
            for share, by_scenario in p99_paced.items()
        },
        # The harness's own spread: the largest p99 difference between the two equal servers.
        "control_largest_difference": max(
            abs(v["control_increase"]) for rows in (p99, *p99_paced.values()) for v in rows.values()
        ),
        "shadow_counters": counters,
        "capture_writer": capture,
        "shadow_rows_in_s3": shadow_rows,
        "load_average_1min": load_avg,
        "stack_components_stopped_for_the_load": stopped,
        # The shadow process's CPUs of its own, when the run was asked for them (the shadow-on server only).
        "shadow_cpus": os.environ.get("MODELOPS_SERVING_SHADOW_CPUS") or None,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"[serving_shadow] p99 saturated: {p99}; paced: {p99_paced}; shadow counters: {counters}; rows in S3: {shadow_rows}; capture writer: {capture}",
        flush=True,
    )
    return summary
