"""Serving benchmark: our compiled scoring path, our pipeline path, the HTTP floor and ``mlflow models serve``.

``run_chain`` trains and promotes churn version 1 in-process; the deploy's parity gate
(:func:`modelops.deploy.scoring_path.parity_gate`) checks its compiled form against the pipeline on
its held-out split and tags it. Then these targets serve it, side by side on one machine:

* ``floor``: ``python -m benchmarks.serving_floor``: the same uvicorn stack, one worker, parsing
  the same body and answering without scoring (the HTTP floor);
* ``compiled``: ``python -m modelops.serving``, one worker, capture on: the compiled scorer;
* ``compiled_capture_off``: the same with ``MODELOPS_CAPTURE_ENABLED=false`` (capture's cost);
* ``pipeline``: one worker, capture on, ``MODELOPS_SERVING_SCORING_PATH=pipeline`` (the fallback forced);
* ``mlflow_serve``: ``mlflow models serve -m models:/churn/1 --env-manager local --workers 1``;
* ``compiled_2_workers``: ``python -m modelops.serving --workers 2``, capture on.

One load generator (:mod:`benchmarks.serving_load`, a plain asyncio HTTP/1.1 client in its own
process, ``CONCURRENCY`` keep-alive connections, closed loop) measures every target, in
interleaved rounds with the order rotating, so background load falls on all alike. The load
generator shares the 2 cores with the servers: its CPU per request is recorded beside theirs.
Bodies are churn records from :func:`modelops.local.datagen.generate_batch`, the same records to
every target. Every row sent to a capture-on target must be in S3 after the servers stop.

Shadow scoring on vs off (issue 16) is its own case, ``python -m benchmarks.run serving_shadow``
(:mod:`benchmarks.serving_shadow`), reusing this module's bodies, rounds and summary.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.serving_load import CONCURRENCY, LoadGenerator, start, stop, tree_cpu, wait_for

log = logging.getLogger("bench.serving")

WARMUP_S = 0.5
MEASURE_S = 3.0
ROUNDS = 5
SCENARIOS = {"single": 1, "batch_100": 100}
TARGETS = ("floor", "compiled", "compiled_capture_off", "pipeline", "mlflow_serve", "compiled_2_workers")
CAPTURE_ON = ("compiled", "pipeline", "compiled_2_workers")
MODELOPS_TARGETS = ("compiled", "compiled_capture_off", "pipeline", "compiled_2_workers")
#: Distinct bodies per scenario, cycled through by the load generator.
DISTINCT_BODIES = {"single": 64, "batch_100": 8}
AS_OF = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DATA_DAY = dt.date(2026, 11, 21)  # the day after the training window: unseen records
CANDIDATES = ("hist_gradient_boosting",)
TARGETS_SET = {"single_rps": 1500, "single_vs_mlflow": 20.0, "single_p99_ms": 10.0, "batch_100_rows_per_s": 50_000}


# ------------------------------------------------------------------------------------------------
# Bodies
# ------------------------------------------------------------------------------------------------


def _records(model, rows: int, seed: int) -> list[dict]:
    from modelops.local import datagen

    frame = datagen.generate_batch("churn", DATA_DAY, rows, seed=seed)[model.feature_names]
    return [
        {
            k: (None if isinstance(v, float) and v != v else (v.item() if hasattr(v, "item") else v))
            for k, v in r.items()
        }
        for r in frame.to_dict(orient="records")
    ]


def _bodies(model, scenario: str, without_nulls: bool) -> dict[str, list[bytes]]:
    size = SCENARIOS[scenario]
    modelops, mlflow = [], []
    for k in range(DISTINCT_BODIES[scenario]):
        records = _records(model, size * 4 if without_nulls else size, seed=1000 + k)
        if without_nulls:
            records = [r for r in records if all(v is not None for v in r.values())][:size]
            assert len(records) == size
        modelops.append(json.dumps({"records": records}).encode())
        mlflow.append(json.dumps({"dataframe_records": records}).encode())
    return {"modelops": modelops, "mlflow": mlflow}


def _summary(runs: list[dict], rows_per_request: int, cpu_s: float) -> dict:
    latencies = sorted(x for run in runs for x in run["latencies"])
    seconds = sum(run["measure_s"] for run in runs)
    n = len(latencies)

    def pct(p: float) -> float | None:
        if not n:
            return None
        return round(latencies[min(n - 1, int(round(p * (n - 1))))] * 1000, 1)

    per_round = [len(run["latencies"]) / run["measure_s"] for run in runs]

    def round_p99(run: dict) -> float | None:
        ordered = sorted(run["latencies"])
        return (
            round(ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))] * 1000, 1) if ordered else None
        )

    return {
        "rps": round(n / seconds, 1),
        "rows_per_s": round(n * rows_per_request / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if n else None,
        "errors": sum(run["errors"] for run in runs),
        "requests": n,
        "rps_per_round": [round(x, 1) for x in per_round],
        #: One stall (a collector pause, a neighbour's burst on a 2-core machine) sets a pooled p99;
        #: the rounds' own p99s show whether it is every round or one.
        "p99_ms_per_round": [round_p99(run) for run in runs],
        "server_cpu_ms_per_request": round(cpu_s / n * 1000, 2) if n else None,
        "loadgen_cpu_ms_per_request": round(sum(r["loadgen_cpu_s"] for r in runs) / n * 1000, 2) if n else None,
        #: The load generator's own longest stall per round: a round whose p99 matches it was slowed
        #: on the client's side (or the whole machine's), not by the server.
        "loadgen_max_lag_ms_per_round": [run.get("loadgen_max_lag_ms") for run in runs],
        "error_samples": [s for run in runs for s in run["error_samples"]][:3],
    }


def _captured_rows(bucket: str) -> tuple[int, int]:
    import pyarrow.parquet as pq

    from modelops.store import Store

    store = Store(bucket=bucket)
    files = rows = 0
    for obj in store.list("capture/churn/"):
        files += 1
        rows += pq.read_metadata(io.BytesIO(store.get_bytes(obj.key))).num_rows
    return files, rows


def _start_targets(env: dict, logs: Path) -> tuple[dict, dict]:
    """Every target's process and URL (free ports), started side by side."""
    from modelops.local.stack_config import free_port

    serving = [sys.executable, "-m", "modelops.serving", "--host", "127.0.0.1"]
    ports = {target: free_port() for target in TARGETS}
    argv = {
        "floor": [sys.executable, "-m", "benchmarks.serving_floor", "--port", str(ports["floor"])],
        "compiled": [*serving, "--port", str(ports["compiled"])],
        "compiled_capture_off": [*serving, "--port", str(ports["compiled_capture_off"])],
        "pipeline": [*serving, "--port", str(ports["pipeline"])],
        "compiled_2_workers": [*serving, "--port", str(ports["compiled_2_workers"]), "--workers", "2"],
        "mlflow_serve": [
            str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", "models:/churn/1",
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(ports["mlflow_serve"]), "--workers", "1",
        ],
    }  # fmt: skip
    extra_env = {
        "compiled_capture_off": {"MODELOPS_CAPTURE_ENABLED": "false"},
        "pipeline": {"MODELOPS_SERVING_SCORING_PATH": "pipeline"},
    }
    project = str(Path(__file__).resolve().parent.parent)
    processes = {}
    for target in TARGETS:
        target_env = {**env, **extra_env.get(target, {})}
        if target == "floor":
            target_env["PYTHONPATH"] = os.pathsep.join([project, target_env.get("PYTHONPATH", "")])
        processes[target] = start(target, argv[target], target_env, logs)
    urls = {t: f"http://127.0.0.1:{ports[t]}/models/churn/predict" for t in TARGETS}
    urls["mlflow_serve"] = f"http://127.0.0.1:{ports['mlflow_serve']}/invocations"
    try:
        for target in TARGETS:
            base = f"http://127.0.0.1:{ports[target]}"
            wait_for(_ready(target, base), target, 240, processes[target], logs / f"{target}.log")
    except BaseException:
        for process in processes.values():
            stop(process)
        raise
    return processes, urls


def _ready(target: str, base: str):
    import httpx

    if target == "mlflow_serve":
        return lambda: httpx.get(f"{base}/ping", timeout=5).status_code == 200
    if target == "floor":
        return lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200
    return lambda: httpx.get(f"{base}/health", timeout=5).json()["models"]["churn"]["loaded"]


def _scoring_paths(urls: dict) -> dict:
    """What each of our servers says it scores version 1 with (``/models``)."""
    import httpx

    paths = {}
    for target in MODELOPS_TARGETS:
        models = httpx.get(urls[target].replace("/models/churn/predict", "/models"), timeout=10).json()["models"]
        churn = next(m for m in models if m["name"] == "churn")
        paths[target] = {"path": churn["scoring_path"], "reason": churn["scoring_path_reason"]}
    return paths


def _agreeing_bodies(model, urls: dict, sent: dict) -> tuple[dict, str, dict]:
    """Bodies every target accepts (without nulls if MLflow refuses them); predictions must agree."""
    import httpx

    def probe(bodies: dict, scenario: str) -> dict:
        answers = {}
        for target, url in urls.items():
            body = bodies[scenario]["mlflow" if target == "mlflow_serve" else "modelops"][0]
            answers[target] = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
            if target in CAPTURE_ON and answers[target].status_code == 200:
                sent[target] += SCENARIOS[scenario]
        return answers

    bodies = {s: _bodies(model, s, without_nulls=False) for s in SCENARIOS}
    note = "records as generated (nullable features sometimes null), same records to every target"
    if any(probe(bodies, s)["mlflow_serve"].status_code != 200 for s in SCENARIOS):
        bodies = {s: _bodies(model, s, without_nulls=True) for s in SCENARIOS}
        note = "MLflow refused null values: every target got the same records with no null feature"
    agreement = {}
    for scenario in SCENARIOS:
        answers = probe(bodies, scenario)
        for target, answer in answers.items():
            if answer.status_code != 200:
                raise RuntimeError(f"{target} refused the {scenario} body: {answer.status_code} {answer.text[:500]}")
        scored = {t: [str(p) for p in a.json()["predictions"]] for t, a in answers.items() if t != "floor"}
        agreement[scenario] = all(p == scored["mlflow_serve"] for p in scored.values())
    if not all(agreement.values()):
        raise RuntimeError(f"the targets disagree on predictions for the same records: {agreement}")
    return bodies, note, agreement


def _load(urls: dict, bodies: dict, pids: dict, sent: dict) -> tuple[dict, dict, list[float]]:
    """Interleaved rounds, the order rotating; each run's results, server CPU, the load average per run."""
    runs: dict = {s: {t: [] for t in TARGETS} for s in SCENARIOS}
    cpu: dict = {s: dict.fromkeys(TARGETS, 0.0) for s in SCENARIOS}
    load_avg: list[float] = []
    loadgen = LoadGenerator()
    try:
        for scenario in SCENARIOS:
            for rnd in range(ROUNDS):
                order = TARGETS[rnd % len(TARGETS) :] + TARGETS[: rnd % len(TARGETS)]
                for target in order:
                    kind = "mlflow" if target == "mlflow_serve" else "modelops"
                    before = tree_cpu(pids[target])
                    result = loadgen.run(urls[target], bodies[scenario][kind], WARMUP_S, MEASURE_S)
                    used = tree_cpu(pids[target]) - before  # warm-up + window + tail: scaled to the window
                    total = result["ok_total"] + result["errors_total"]
                    cpu[scenario][target] += used * (len(result["latencies"]) / total if total else 0)
                    runs[scenario][target].append(result)
                    load_avg.append(os.getloadavg()[0])
                    if target in CAPTURE_ON:
                        sent[target] += result["ok_total"] * SCENARIOS[scenario]
                    log.warning(
                        "%s %s round %d: %.1f req/s, %d errors (load average %.2f)",
                        scenario, target, rnd, len(result["latencies"]) / MEASURE_S, result["errors"], load_avg[-1],
                    )  # fmt: skip
    finally:
        loadgen.close()
    return runs, cpu, load_avg


def _ratio(a, b, digits: int = 2):
    return round(a / b, digits) if a is not None and b else None


def _ratios(results: dict) -> dict:
    ratios = {}
    for scenario in SCENARIOS:
        r = results[scenario]
        ratios[scenario] = {
            "compiled_vs_mlflow": _ratio(r["compiled"]["rps"], r["mlflow_serve"]["rps"]),
            "pipeline_vs_mlflow": _ratio(r["pipeline"]["rps"], r["mlflow_serve"]["rps"]),
            "compiled_vs_pipeline": _ratio(r["compiled"]["rps"], r["pipeline"]["rps"]),
            "compiled_vs_floor": _ratio(r["compiled"]["rps"], r["floor"]["rps"]),
            "two_workers_vs_one": _ratio(r["compiled_2_workers"]["rps"], r["compiled"]["rps"]),
            "capture_overhead": round(1 - r["compiled"]["rps"] / r["compiled_capture_off"]["rps"], 3)
            if r["compiled_capture_off"]["rps"]
            else None,
            "compiled_vs_mlflow_per_round": [
                _ratio(a, b) for a, b in zip(r["compiled"]["rps_per_round"], r["mlflow_serve"]["rps_per_round"], strict=True)
            ],
            "two_workers_vs_one_per_round": [
                _ratio(a, b) for a, b in zip(r["compiled_2_workers"]["rps_per_round"], r["compiled"]["rps_per_round"], strict=True)
            ],
        }  # fmt: skip
    return ratios


def _targets_met(results: dict, ratios: dict) -> dict:
    single, batch = results["single"]["compiled"], results["batch_100"]["compiled"]
    return {
        "single_rps_at_least_1500": single["rps"] >= TARGETS_SET["single_rps"],
        "single_at_least_20x_mlflow": (ratios["single"]["compiled_vs_mlflow"] or 0) >= TARGETS_SET["single_vs_mlflow"],
        "single_p99_at_most_10ms": single["p99_ms"] is not None and single["p99_ms"] <= TARGETS_SET["single_p99_ms"],
        "batch_100_at_least_50k_rows_per_s": batch["rows_per_s"] >= TARGETS_SET["batch_100_rows_per_s"],
    }


def _settings(note: str, load_avg: list[float], before: float, after: float) -> dict:
    return {
        "load_generator": "plain asyncio HTTP/1.1 client (uvloop) in a spawned process, keep-alive, closed loop",
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "warmup_s_per_run": WARMUP_S,
        "measure_s_per_run": MEASURE_S,
        "order": "interleaved: per scenario, each round runs every target once, rotating the order",
        "bodies": {s: f"{DISTINCT_BODIES[s]} distinct bodies of {n} record(s), cycled" for s, n in SCENARIOS.items()},
        "nulls": note,
        "servers": {
            "floor": "python -m benchmarks.serving_floor (uvicorn, 1 worker): parse the body, answer, no scoring",
            "modelops": "python -m modelops.serving (uvicorn, 1 worker unless --workers 2), the stack's environment",
            "mlflow": "mlflow models serve -m models:/churn/1 --env-manager local --workers 1",
        },
        "cpus": os.cpu_count(),
        "load_average_1min": {
            "before": round(before, 2),
            "after": round(after, 2),
            "mean_during": round(statistics.fmean(load_avg), 2),
            "max_during": round(max(load_avg), 2),
        },  # fmt: skip
    }


def _print(results: dict, ratios: dict, settings: dict) -> None:
    for scenario in SCENARIOS:
        for target in TARGETS:
            r = results[scenario][target]
            print(
                f"[serving] {scenario:9s} {target:21s} {r['rps']:8.1f} req/s {r['rows_per_s']:10.1f} rows/s "
                f"p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms",
                flush=True,
            )
        print(
            f"[serving] {scenario} ratios: {json.dumps({k: v for k, v in ratios[scenario].items() if 'round' not in k})}"
        )
    print(f"[serving] load average: {settings['load_average_1min']}", flush=True)


def bench_serving() -> dict:
    from benchmarks.run import running_stack
    from benchmarks.serving_pieces import piece_timings
    from modelops.config import get_model
    from modelops.deploy.scoring_path import parity_gate
    from modelops.deploy.serving_client import reload_serving
    from modelops.training.chain import run_chain

    model = get_model("churn")
    started_at = time.perf_counter()
    timings: dict[str, float] = {}
    processes: dict = {}
    with running_stack() as stack:
        cfg = stack.config
        timings["stack_up_s"] = time.perf_counter() - started_at
        try:
            t0 = time.perf_counter()
            # HistGradientBoosting alone: the family churn's chain promotes, without its slow forest search.
            chain = run_chain(model, AS_OF, "bench_serving", params={"candidates": list(CANDIDATES)})
            timings["train_and_promote_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            verdict = parity_gate(model, "1")  # what the deploy task does before serving loads the version
            timings["parity_gate_s"] = time.perf_counter() - t0
            if reload_serving("churn", "1")["new_version"] != "1":
                raise RuntimeError(f"expected version 1 to serve; decision: {chain.get('decision')}")
            t0 = time.perf_counter()
            processes, urls = _start_targets(cfg.environment(), stack.home / "bench-logs")
            timings["servers_up_s"] = time.perf_counter() - t0
            paths = _scoring_paths(urls)
            sent = dict.fromkeys(CAPTURE_ON, 0)
            bodies, note, agreement = _agreeing_bodies(model, urls, sent)
            before = os.getloadavg()[0]
            t0 = time.perf_counter()
            pids = {t: p.pid for t, p in processes.items()}
            runs, cpu, load_avg = _load(urls, bodies, pids, sent)
            timings["load_s"] = time.perf_counter() - t0
            after = os.getloadavg()[0]
            results = {s: {t: _summary(runs[s][t], SCENARIOS[s], cpu[s][t]) for t in TARGETS} for s in SCENARIOS}
            t0 = time.perf_counter()
            for target in list(processes):  # SIGTERM: each server flushes its capture buffer as it stops
                stop(processes.pop(target))
            files, captured = _captured_rows(cfg.bucket)
            timings["stop_and_count_capture_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pieces = piece_timings(model, cfg.mlflow_url, bodies)
            timings["piece_timings_s"] = time.perf_counter() - t0
        finally:
            for process in processes.values():
                stop(process)
    timings["total_s"] = time.perf_counter() - started_at
    ratios = _ratios(results)
    settings = _settings(note, load_avg, before, after)
    _print(results, ratios, settings)
    return {
        "model": "churn",
        "model_version": "1",
        "candidates_trained": list(CANDIDATES),
        "estimator": pieces.get("estimator"),
        "parity_gate": verdict.to_json(),
        "scoring_paths": paths,
        "settings": settings,
        "results": results,
        "ratios": ratios,
        "targets": TARGETS_SET,
        "targets_met": _targets_met(results, ratios),
        "capture": {
            "rows_sent_to_capture_on_targets": sum(sent.values()),
            "rows_sent_per_target": sent,
            "rows_captured_in_s3": captured,
            "files_in_s3": files,
            "complete": captured == sum(sent.values()),
        },
        "predictions_agree": agreement,
        "where_the_time_goes_ms": pieces,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
