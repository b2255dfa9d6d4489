"""Serving benchmark: ``/predict`` with capture on and off vs ``mlflow models serve``, same model, same load.

Three targets serve churn version 1 (trained and promoted in-process by ``run_chain``):

* ``modelops_capture_on``: ``python -m modelops.serving`` started beside the stack with the
  stack's environment, capture to S3 with its default settings;
* ``modelops_capture_off``: a twin started the same way with ``MODELOPS_CAPTURE_ENABLED=false``
  (the only difference, so the overhead is the capture's alone; the stack's own serving process
  has been up for the whole run and serves every model, and is used only to check the champion);
* ``mlflow_serve``: ``mlflow models serve -m models:/churn/1 --env-manager local --workers 1``.

One load generator (:func:`_drive`) measures all three. It runs in its own process (spawned, so
it shares no GIL with anything it measures) and is closed-loop: ``CONCURRENCY`` connections each
send a request as soon as the previous one answered, for ``WARMUP_S`` + ``MEASURE_S`` seconds;
only requests *completed* inside the measurement window count. The targets are measured in
interleaved rounds (``ROUNDS``, the order rotating each round) so that background load on the
machine (other test runs) falls on all three alike rather than on whichever ran last.

Bodies are realistic churn records from :func:`modelops.local.datagen.generate_batch`; the same records
go to every target (``{"records": [...]}`` for modelops, ``{"dataframe_records": [...]}`` for
MLflow). Besides throughput and latency, each run records the CPU seconds the server process
(tree) and the load generator used, so the cost per request can be compared even when the
machine is shared.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

log = logging.getLogger("bench.serving")

CONCURRENCY = 8
WARMUP_S = 0.5
MEASURE_S = 3.0
ROUNDS = 5
SCENARIOS = {"single": 1, "batch_100": 100}
TARGETS = ("modelops_capture_on", "modelops_capture_off", "mlflow_serve")
#: Distinct bodies per scenario, cycled through by the load generator.
DISTINCT_BODIES = {"single": 64, "batch_100": 8}
AS_OF = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DATA_DAY = dt.date(2026, 11, 21)  # the day after the training window: unseen records


# ------------------------------------------------------------------------------------------------
# Load generator (runs in a spawned process)
# ------------------------------------------------------------------------------------------------


async def _drive(url: str, bodies: list[bytes], concurrency: int, warmup_s: float, measure_s: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    counts = {"ok_total": 0, "errors_total": 0, "errors": 0}
    samples: list[str] = []
    async with httpx.AsyncClient(
        limits=limits, timeout=60.0, headers={"content-type": "application/json"}, trust_env=False
    ) as client:
        start = time.perf_counter()
        window_start = start + warmup_s
        window_end = window_start + measure_s

        async def connection(offset: int) -> None:
            i = offset
            while time.perf_counter() < window_end:
                body = bodies[i % len(bodies)]
                i += concurrency
                sent = time.perf_counter()
                good = False
                try:
                    response = await client.post(url, content=body)
                    good = response.status_code == 200
                    if not good and len(samples) < 3:
                        samples.append(f"{response.status_code}: {response.text[:300]}")
                except httpx.HTTPError as exc:
                    if len(samples) < 3:
                        samples.append(f"{type(exc).__name__}: {exc}")
                done = time.perf_counter()
                counts["ok_total" if good else "errors_total"] += 1
                if window_start <= done < window_end:
                    if good:
                        latencies.append(done - sent)
                    else:
                        counts["errors"] += 1

        cpu_before = time.process_time()
        await asyncio.gather(*(connection(k) for k in range(concurrency)))
        cpu = time.process_time() - cpu_before
    return {
        "latencies": latencies,
        "errors": counts["errors"],
        "ok_total": counts["ok_total"],
        "errors_total": counts["errors_total"],
        "error_samples": samples,
        "measure_s": measure_s,
        "loadgen_cpu_s": cpu,
    }


def _loadgen_process(conn) -> None:
    """Serve load jobs sent over ``conn`` until ``None`` arrives."""
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(asyncio.run(_drive(**job)))
        except Exception as exc:  # noqa: BLE001 - report, do not hang the parent
            conn.send({"crash": repr(exc)})


class LoadGenerator:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_loadgen_process, args=(child,), name="bench-loadgen", daemon=True)
        self.process.start()
        child.close()

    def run(self, url: str, bodies: list[bytes], warmup_s: float, measure_s: float) -> dict:
        self._conn.send(
            {"url": url, "bodies": bodies, "concurrency": CONCURRENCY, "warmup_s": warmup_s, "measure_s": measure_s}
        )
        result = self._conn.recv()
        if "crash" in result:
            raise RuntimeError(f"load generator crashed: {result['crash']}")
        return result

    def close(self) -> None:
        with suppress(Exception):
            self._conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# ------------------------------------------------------------------------------------------------
# Processes we start (each in its own session, stopped by process group)
# ------------------------------------------------------------------------------------------------


def _start(name: str, argv: list[str], env: dict, logs: Path) -> subprocess.Popen:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as logfile:
        return subprocess.Popen(
            argv, env=env, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=logs, start_new_session=True,
        )  # fmt: skip


def _stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group we created, then SIGKILL it if it lingers."""
    if process is None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _wait(condition, what: str, timeout: float, process: subprocess.Popen | None, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            if condition():
                return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-30:]) if logfile.exists() else ""
    raise TimeoutError(f"{what} did not come up. Last lines of {logfile}:\n{tail}")


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    import psutil

    total = 0.0
    with suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


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
    return {
        "rps": round(n / seconds, 1),
        "rows_per_s": round(n * rows_per_request / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if n else None,
        "errors": sum(run["errors"] for run in runs),
        "requests": n,
        "rps_per_round": [round(x, 1) for x in per_round],
        "server_cpu_ms_per_request": round(cpu_s / n * 1000, 2) if n else None,
        "loadgen_cpu_ms_per_request": round(sum(r["loadgen_cpu_s"] for r in runs) / n * 1000, 2) if n else None,
        "error_samples": [s for run in runs for s in run["error_samples"]][:3],
    }


# ------------------------------------------------------------------------------------------------
# Where the time goes inside one modelops request vs one MLflow request (in-process, no HTTP)
# ------------------------------------------------------------------------------------------------


def _piece_timings(model, tracking_uri: str, bodies: dict[str, dict[str, list[bytes]]]) -> dict:
    """Median ms of each step of both request paths, on the same model and bodies, no HTTP.

    Run after the load (nothing else of ours is running then).
    """
    import mlflow
    from mlflow.pyfunc.scoring_server import infer_and_parse_data, predictions_to_json

    from modelops.serving.blocks import RowParts as _Rows
    from modelops.serving.champion import ModelSlot, load_model_version
    from modelops.serving.columns import check_records, frame_of_columns
    from modelops.serving.scoring import PendingPrediction, score_batch
    from modelops.serving.validation import parse_json_body, records_of_body

    class _Blocks:
        """Stands in for the capture writer: keeps what the request path hands over."""

        def __init__(self) -> None:
            self.blocks: list = []

        def enqueue(self, stream, model_name, day, rows, schema) -> None:
            self.blocks.append(rows)

    loaded = load_model_version(model, tracking_uri, "1")
    slot = ModelSlot(model)

    def checked(raw: bytes) -> PendingPrediction:
        records, location = records_of_body(parse_json_body(raw, "application/json"), 1000)
        return PendingPrediction(check_records(model, slot.spec, records, location), location, "x" * 32)

    mlflow.set_tracking_uri(tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/churn/1")
    schema = pyfunc.metadata.get_input_schema()
    out: dict = {"estimator": type(loaded.pipeline[-1]).__name__ if hasattr(loaded.pipeline, "steps") else None}

    def median_ms(fn, repeat: int) -> float:
        """Median CPU ms of this thread (robust to a busy machine; BLAS/OpenMP limited to 1 thread)."""
        fn()
        samples = []
        for _ in range(repeat):
            t0 = time.thread_time()
            fn()
            samples.append(time.thread_time() - t0)
        return round(statistics.median(samples) * 1000, 3)

    def pieces(raw: bytes, raw_mlflow: bytes, repeat: int) -> dict:
        records, location = records_of_body(parse_json_body(raw, "application/json"), 1000)
        pending = checked(raw)
        frame = frame_of_columns(model, loaded.categorical_kinds, [pending.columns])[0]
        mlflow_df = infer_and_parse_data(json.loads(raw_mlflow), schema)
        mlflow_predictions = pyfunc.predict(mlflow_df)
        result = {
            "modelops": {
                "parse_json_orjson_and_shape": median_ms(
                    lambda: records_of_body(parse_json_body(raw, "application/json"), 1000), repeat
                ),
                "check_records_fast_path": median_ms(
                    lambda: check_records(model, slot.spec, records, location), repeat
                ),
                # Frame + predict_proba + answer bytes + capture block; the first two also alone:
                "score_batch_of_one_request": median_ms(
                    lambda: score_batch(slot, loaded, [pending], _Blocks()), repeat
                ),
            },
            "modelops_parts_of_score_batch": {
                "frame_of_columns": median_ms(
                    lambda: frame_of_columns(model, loaded.categorical_kinds, [pending.columns]), repeat
                ),
                "pipeline_predict_proba": median_ms(lambda: loaded.pipeline.predict_proba(frame), repeat),
            },
            "mlflow": {
                "parse_json_to_dataframe": median_ms(
                    lambda: infer_and_parse_data(json.loads(raw_mlflow), schema), repeat
                ),
                "pyfunc_predict_incl_schema_enforcement": median_ms(lambda: pyfunc.predict(mlflow_df), repeat),
                "predictions_to_json": median_ms(
                    lambda: predictions_to_json(mlflow_predictions, io.StringIO()), repeat
                ),
            },
        }
        for side in ("modelops", "mlflow"):
            result[side]["total"] = round(sum(result[side].values()), 3)
        return result

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # the servers run with OMP_NUM_THREADS=1 (StackConfig.environment)
        for scenario, repeat in (("single", 200), ("batch_100", 50)):
            out[scenario] = pieces(bodies[scenario]["modelops"][0], bodies[scenario]["mlflow"][0], repeat)
        # What it costs to score 8 single-record requests together (8 = the load's concurrency).
        eight = [checked(b) for b in bodies["single"]["modelops"][:CONCURRENCY]]
        out["single"]["score_batch_of_8_requests_together"] = median_ms(
            lambda: score_batch(slot, loaded, eight, _Blocks()), 100
        )
        # The capture writer thread's work per file (default: one file per 1000 rows), before the S3 put.
        import pyarrow.parquet as pq

        blocks = _Blocks()
        score_batch(slot, loaded, [checked(bodies["batch_100"]["modelops"][0]) for _ in range(10)], blocks)
        file_rows = _Rows(blocks.blocks)

        def to_parquet() -> None:
            pq.write_table(file_rows.to_arrow(slot.capture_schema), io.BytesIO())

        out["capture_writer_parquet_1000_rows"] = median_ms(to_parquet, 20)
    out["unit"] = "median CPU ms of one call, in-process, one thread, no HTTP"
    return out


# ------------------------------------------------------------------------------------------------
# Capture check
# ------------------------------------------------------------------------------------------------


def _captured_rows(bucket: str) -> tuple[int, int]:
    import pyarrow.parquet as pq

    from modelops.store import Store

    store = Store(bucket=bucket)
    files = rows = 0
    for obj in store.list("capture/churn/"):
        files += 1
        rows += pq.read_metadata(io.BytesIO(store.get_bytes(obj.key))).num_rows
    return files, rows


# ------------------------------------------------------------------------------------------------
# The benchmark
# ------------------------------------------------------------------------------------------------


def bench_serving() -> dict:
    import httpx

    from benchmarks.run import running_stack
    from modelops.config import get_model
    from modelops.local.stack_config import free_port
    from modelops.training.chain import run_chain

    model = get_model("churn")
    started_at = time.perf_counter()
    timings: dict[str, float] = {}
    extra: dict[str, subprocess.Popen | None] = dict.fromkeys(TARGETS)
    loadgen: LoadGenerator | None = None
    with running_stack() as stack:
        cfg = stack.config
        logs = stack.home / "bench-logs"
        timings["stack_up_s"] = time.perf_counter() - started_at
        try:
            # 1. A champion, and the stack's serving process on it.
            t0 = time.perf_counter()
            chain = run_chain(model, AS_OF, "bench_serving")
            timings["train_and_promote_s"] = time.perf_counter() - t0
            reload = httpx.post(
                f"{cfg.serving_url}/models/churn/reload",
                headers={"Authorization": f"Bearer {cfg.serving_token}"},
                timeout=120,
            )
            reload.raise_for_status()
            if reload.json()["new_version"] != "1":
                raise RuntimeError(
                    f"expected version 1 to serve, got {reload.json()}; decision: {chain.get('decision')}"
                )

            # 2 + 3. The capture on/off twins and mlflow models serve, started side by side.
            on_port, off_port, mlflow_port = free_port(), free_port(), free_port()
            env = cfg.environment()
            for target, port, capture in (
                ("modelops_capture_on", on_port, "true"),
                ("modelops_capture_off", off_port, "false"),
            ):
                extra[target] = _start(
                    target,
                    [sys.executable, "-m", "modelops.serving", "--host", "127.0.0.1", "--port", str(port)],
                    {**env, "MODELOPS_CAPTURE_ENABLED": capture},
                    logs,
                )  # fmt: skip
            mlflow_bin = str(Path(sys.executable).parent / "mlflow")
            extra["mlflow_serve"] = _start(
                "mlflow_serve",
                [mlflow_bin, "models", "serve", "-m", "models:/churn/1", "--env-manager", "local",
                 "-h", "127.0.0.1", "-p", str(mlflow_port), "--workers", "1"],
                env,
                logs,
            )  # fmt: skip
            urls = {
                "modelops_capture_on": f"http://127.0.0.1:{on_port}/models/churn/predict",
                "modelops_capture_off": f"http://127.0.0.1:{off_port}/models/churn/predict",
                "mlflow_serve": f"http://127.0.0.1:{mlflow_port}/invocations",
            }
            t0 = time.perf_counter()
            for target, port in (("modelops_capture_on", on_port), ("modelops_capture_off", off_port)):
                _wait(
                    lambda port=port: httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["models"]["churn"]["loaded"],
                    target, 180, extra[target], logs / f"{target}.log",
                )  # fmt: skip
            _wait(
                lambda: httpx.get(f"http://127.0.0.1:{mlflow_port}/ping", timeout=5).status_code == 200,
                "mlflow models serve", 240, extra["mlflow_serve"], logs / "mlflow_serve.log",
            )  # fmt: skip
            timings["extra_servers_up_s"] = time.perf_counter() - t0
            server_pids = {target: extra[target].pid for target in TARGETS}

            # 4. Bodies; check that every target accepts them and that the answers agree.
            bodies = {s: _bodies(model, s, without_nulls=False) for s in SCENARIOS}
            nulls_note = "records as generated (nullable features sometimes null), same records to every target"

            def probe(scenario: str) -> dict[str, httpx.Response]:
                answers = {}
                for target, url in urls.items():
                    kind = "mlflow" if target == "mlflow_serve" else "modelops"
                    answers[target] = httpx.post(
                        url, content=bodies[scenario][kind][0], headers={"content-type": "application/json"}, timeout=60
                    )
                return answers

            probe_sent = {"modelops_capture_on": 0}
            needs_fallback = False
            for scenario in SCENARIOS:
                answers = probe(scenario)
                probe_sent["modelops_capture_on"] += (
                    SCENARIOS[scenario] if answers["modelops_capture_on"].status_code == 200 else 0
                )
                if answers["mlflow_serve"].status_code != 200:
                    log.warning("mlflow refused records with nulls: %s", answers["mlflow_serve"].text[:500])
                    needs_fallback = True
            if needs_fallback:
                bodies = {s: _bodies(model, s, without_nulls=True) for s in SCENARIOS}
                nulls_note = (
                    "MLflow's schema enforcement refused null values, so every target got the same records "
                    "with no null feature (generated records filtered)"
                )
            agreement = {}
            for scenario in SCENARIOS:
                answers = probe(scenario)
                for target, answer in answers.items():
                    if answer.status_code != 200:
                        raise RuntimeError(
                            f"{target} refused the {scenario} body: {answer.status_code} {answer.text[:500]}"
                        )
                probe_sent["modelops_capture_on"] += SCENARIOS[scenario]
                ours = [str(p) for p in answers["modelops_capture_off"].json()["predictions"]]
                theirs = [str(p) for p in answers["mlflow_serve"].json()["predictions"]]
                on = [str(p) for p in answers["modelops_capture_on"].json()["predictions"]]
                agreement[scenario] = ours == theirs == on
            if not all(agreement.values()):
                raise RuntimeError(f"the targets disagree on predictions for the same records: {agreement}")

            # 5. Load: interleaved rounds, order rotating, all targets under the same generator.
            loadgen = LoadGenerator()
            runs: dict[str, dict[str, list[dict]]] = {s: {t: [] for t in TARGETS} for s in SCENARIOS}
            cpu: dict[str, dict[str, float]] = {s: dict.fromkeys(TARGETS, 0.0) for s in SCENARIOS}
            sent_rows_capture_on = probe_sent["modelops_capture_on"]
            load_avg_before = os.getloadavg()
            t0 = time.perf_counter()
            for scenario in SCENARIOS:
                for rnd in range(ROUNDS):
                    order = TARGETS[rnd % len(TARGETS) :] + TARGETS[: rnd % len(TARGETS)]
                    for target in order:
                        kind = "mlflow" if target == "mlflow_serve" else "modelops"
                        before = _tree_cpu(server_pids[target])
                        result = loadgen.run(urls[target], bodies[scenario][kind], WARMUP_S, MEASURE_S)
                        # CPU over warm-up + window + tail; scaled to the window's share below.
                        used = _tree_cpu(server_pids[target]) - before
                        total = result["ok_total"] + result["errors_total"]
                        cpu[scenario][target] += used * (len(result["latencies"]) / total if total else 0)
                        runs[scenario][target].append(result)
                        if target == "modelops_capture_on":
                            sent_rows_capture_on += result["ok_total"] * SCENARIOS[scenario]
                        log.warning(
                            "%s %s round %d: %.1f req/s, %d errors",
                            scenario, target, rnd, len(result["latencies"]) / MEASURE_S, result["errors"],
                        )  # fmt: skip
            timings["load_s"] = time.perf_counter() - t0
            load_avg_after = os.getloadavg()
            loadgen.close()
            loadgen = None

            results = {s: {t: _summary(runs[s][t], SCENARIOS[s], cpu[s][t]) for t in TARGETS} for s in SCENARIOS}

            # 6. Where the time goes (in-process, while the capture buffer ages out).
            t0 = time.perf_counter()
            pieces = _piece_timings(model, cfg.mlflow_url, bodies)
            timings["piece_timings_s"] = time.perf_counter() - t0

            # 7. Capture: everything sent with capture on must reach S3 (default flush: 60 s or 5000 rows).
            t0 = time.perf_counter()
            deadline = time.monotonic() + 90
            health = {}
            while time.monotonic() < deadline:
                health = httpx.get(f"http://127.0.0.1:{on_port}/health", timeout=10).json().get("capture") or {}
                if health.get("pending") == 0 and health.get("written", 0) >= sent_rows_capture_on:
                    break
                time.sleep(2)
            files, captured = _captured_rows(cfg.bucket)
            timings["capture_wait_s"] = time.perf_counter() - t0
            for name in list(extra):
                _stop(extra[name])
                extra[name] = None
        finally:
            if loadgen is not None:
                loadgen.close()
            for process in extra.values():
                _stop(process)
    timings["total_s"] = time.perf_counter() - started_at

    ratios = {}
    for scenario in SCENARIOS:
        on = results[scenario]["modelops_capture_on"]
        off = results[scenario]["modelops_capture_off"]
        ml = results[scenario]["mlflow_serve"]
        ratios[scenario] = {
            "throughput_vs_mlflow": round(on["rps"] / ml["rps"], 2) if ml["rps"] else None,
            "throughput_capture_off_vs_mlflow": round(off["rps"] / ml["rps"], 2) if ml["rps"] else None,
            "p50_vs_mlflow": round(on["p50_ms"] / ml["p50_ms"], 2) if ml["p50_ms"] else None,
            "capture_overhead": round(1 - on["rps"] / off["rps"], 3) if off["rps"] else None,
            "server_cpu_per_request_vs_mlflow": (
                round(on["server_cpu_ms_per_request"] / ml["server_cpu_ms_per_request"], 2)
                if on["server_cpu_ms_per_request"] and ml["server_cpu_ms_per_request"]
                else None
            ),
            # Same round = measured back to back: paired figures show how much background load moved things.
            "throughput_vs_mlflow_per_round": [
                round(a / b, 2) if b else None for a, b in zip(on["rps_per_round"], ml["rps_per_round"], strict=True)
            ],
            "capture_overhead_per_round": [
                round(1 - a / b, 3) if b else None
                for a, b in zip(on["rps_per_round"], off["rps_per_round"], strict=True)
            ],
            "capture_cpu_overhead_per_request": (
                round(on["server_cpu_ms_per_request"] / off["server_cpu_ms_per_request"] - 1, 3)
                if on["server_cpu_ms_per_request"] and off["server_cpu_ms_per_request"]
                else None
            ),
        }
    targets_met = {
        "at_least_2x_mlflow_throughput": all((r["throughput_vs_mlflow"] or 0) >= 2.0 for r in ratios.values()),
        "capture_overhead_under_10pct": all(
            r["capture_overhead"] is not None and r["capture_overhead"] < 0.10 for r in ratios.values()
        ),
    }
    for scenario in SCENARIOS:
        r = ratios[scenario]
        print(
            f"[serving] {scenario}: modelops/mlflow throughput {r['throughput_vs_mlflow']}x "
            f"(capture off: {r['throughput_capture_off_vs_mlflow']}x), capture overhead "
            f"{r['capture_overhead'] * 100:.1f}%",
            flush=True,
        )
    return {
        "model": "churn",
        "model_version": "1",
        "estimator": pieces.get("estimator"),
        "settings": {
            "load_generator": "httpx.AsyncClient in a spawned process, closed loop",
            "concurrency": CONCURRENCY,
            "rounds": ROUNDS,
            "warmup_s_per_run": WARMUP_S,
            "measure_s_per_run": MEASURE_S,
            "order": "interleaved: per scenario, each round runs every target once, rotating the order",
            "bodies": {
                s: f"{DISTINCT_BODIES[s]} distinct bodies of {n} record(s), cycled" for s, n in SCENARIOS.items()
            },
            "nulls": nulls_note,
            "servers": {
                "modelops": "python -m modelops.serving (uvicorn, 1 worker), two processes started alike with the "
                "stack's environment: capture on (default capture options) and MODELOPS_CAPTURE_ENABLED=false",
                "mlflow": "mlflow models serve -m models:/churn/1 --env-manager local --workers 1",
            },
            "work_per_request": "modelops: validation, predict + predict_proba, capture rows; "
            "mlflow: schema enforcement, predict only",
            "cpus": os.cpu_count(),
            "load_average_before_after": [round(load_avg_before[0], 2), round(load_avg_after[0], 2)],
        },
        "results": results,
        "ratios": ratios,
        "targets_met": targets_met,
        "capture": {
            "rows_sent_with_capture_on": sent_rows_capture_on,
            "rows_captured_in_s3": captured,
            "files_in_s3": files,
            "serving_health_capture": health,
            "complete": captured == sent_rows_capture_on,
            # The writer thread's own CPU (Arrow, Parquet, S3 puts): capture's cost off the request path.
            "writer_cpu_ms_per_1000_rows": (
                round(health["writer_cpu_seconds"] * 1e6 / captured, 2)
                if captured and "writer_cpu_seconds" in health
                else None
            ),
        },
        "predictions_agree": agreement,
        "where_the_time_goes_ms": pieces,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
