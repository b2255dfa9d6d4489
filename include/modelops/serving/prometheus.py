"""Serving metrics in the Prometheus text format, counted in process and rendered on each scrape.

By hand rather than with a client library: a handful of counters and histograms, no
dependency, and label values kept bounded (an unknown model name shares one label value, so a
scan cannot mint unbounded series). :class:`MetricsMiddleware` times every HTTP request.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.serving.champion import ModelSlot

log = logging.getLogger(__name__)

_MODEL_PATH = re.compile(r"^/models/(?P<model>[^/]+)/(?P<endpoint>predict|reload|feedback)/?$")
_PLAIN_PATHS = {"/health": "health", "/models": "models", "/metrics": "metrics"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if isinstance(value, float) else str(value)


class Metrics:
    """Request counters and latency histograms, thread-safe; rendered on each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], list] = {}  # [bucket counts..., sum, count]
        self._predicted: dict[tuple[str, str], int] = {}

    def observe(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (model, endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            entry = self._latency.setdefault((model, endpoint), [0] * len(LATENCY_BUCKETS) + [0.0, 0])
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    entry[i] += 1
            entry[-2] += seconds
            entry[-1] += 1

    def add_predicted(self, model: str, version: str, records: int) -> None:
        with self._lock:
            self._predicted[(model, version)] = self._predicted.get((model, version), 0) + records

    def render(self, slots: Mapping[str, ModelSlot], capture: dict | None) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((k, list(v)) for k, v in self._latency.items())
            predicted = sorted(self._predicted.items())
        family("modelops_requests_total", "counter", "HTTP requests by model, endpoint and status code.")
        for (model, endpoint, status), count in requests:
            lines.append(f"modelops_requests_total{_labels(model=model, endpoint=endpoint, status=status)} {count}")
        family("modelops_request_errors_total", "counter", "HTTP requests answered with status >= 400.")
        for (model, endpoint, status), count in requests:
            if status >= 400:
                labels = _labels(model=model, endpoint=endpoint, status=status)
                lines.append(f"modelops_request_errors_total{labels} {count}")
        family("modelops_request_duration_seconds", "histogram", "Request latency in seconds, by model and endpoint.")
        for (model, endpoint), entry in latency:
            for bound, count in zip(
                [*LATENCY_BUCKETS, math.inf], [*entry[: len(LATENCY_BUCKETS)], entry[-1]], strict=True
            ):
                labels = _labels(model=model, endpoint=endpoint, le=_number(float(bound)))
                lines.append(f"modelops_request_duration_seconds_bucket{labels} {count}")
            labels = _labels(model=model, endpoint=endpoint)
            lines.append(f"modelops_request_duration_seconds_sum{labels} {_number(float(entry[-2]))}")
            lines.append(f"modelops_request_duration_seconds_count{labels} {entry[-1]}")
        family("modelops_predicted_records_total", "counter", "Records scored, by model and version.")
        for (model, version), count in predicted:
            lines.append(f"modelops_predicted_records_total{_labels(model=model, version=version)} {count}")

        family("modelops_model_loaded", "gauge", "1 if the model has a loaded version, else 0.")
        for name, slot in sorted(slots.items()):
            lines.append(f"modelops_model_loaded{_labels(model=name)} {1 if slot.current else 0}")
        family("modelops_model_version_info", "gauge", "The registry version serving each model (value 1).")
        for name, slot in sorted(slots.items()):
            loaded = slot.current
            if loaded:
                lines.append(
                    f"modelops_model_version_info{_labels(model=name, version=loaded.version, run_id=loaded.run_id or '')} 1"
                )
        family(
            "modelops_model_scoring_path_info",
            "gauge",
            "How the serving version scores (compiled or pipeline), value 1.",
        )
        for name, slot in sorted(slots.items()):
            loaded = slot.current
            if loaded:
                labels = _labels(model=name, version=loaded.version, path=loaded.scoring_path)
                lines.append(f"modelops_model_scoring_path_info{labels} 1")
        family("modelops_model_loaded_timestamp_seconds", "gauge", "When the serving version was loaded (Unix time).")
        for name, slot in sorted(slots.items()):
            loaded = slot.current
            if loaded:
                lines.append(
                    f"modelops_model_loaded_timestamp_seconds{_labels(model=name)} {loaded.loaded_at.timestamp():.3f}"
                )

        if capture is not None:
            groups = capture["groups"]
            for metric, key, kind, help_text in (
                ("modelops_capture_records_written_total", "written", "counter", "Rows written to S3."),
                ("modelops_capture_records_dropped_total", "dropped", "counter", "Rows dropped (buffer full, shutdown timeout, unwritable)."),
                ("modelops_capture_records_pending", "pending", "gauge", "Rows buffered in memory, not yet written."),
                ("modelops_capture_files_written_total", "files", "counter", "Parquet files written to S3."),
                ("modelops_capture_write_failures_total", "write_failures", "counter", "Failed S3 writes (each is retried)."),
            ):  # fmt: skip
                family(metric, kind, help_text)
                for (stream, model), values in groups.items():
                    lines.append(f"{metric}{_labels(model=model, stream=stream)} {values[key]}")
            family("modelops_capture_buffer_limit_records", "gauge", "Rows the capture buffer holds at most.")
            lines.append(f"modelops_capture_buffer_limit_records {capture['max_buffered']}")
            family(
                "modelops_capture_writer_cpu_seconds_total", "counter", "CPU the capture writer thread spent on files."
            )
            lines.append(f"modelops_capture_writer_cpu_seconds_total {capture['writer_cpu_seconds']}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and counts it by model, endpoint and status (pure ASGI)."""

    def __init__(self, app: Any, metrics: Metrics, models: Iterable[str]):
        self.app = app
        self.metrics = metrics
        # A set given is kept by reference: models added later (ServingState.discover) count too.
        self.models = models if isinstance(models, set) else set(models)

    def classify(self, path: str) -> tuple[str, str]:
        match = _MODEL_PATH.match(path)
        if match:
            model = match["model"]
            # Unknown names share one label value: a scan must not mint unbounded series.
            return (model if model in self.models else "_unknown"), match["endpoint"]
        return "", _PLAIN_PATHS.get(path.rstrip("/") or "/", "other")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            model, endpoint = self.classify(scope.get("path", ""))
            self.metrics.observe(model, endpoint, status, time.perf_counter() - start)
