"""Scoring: concurrent predict requests for one model share one model call, answered by one version.

A pipeline call costs about the same for 1 row as for hundreds, so :class:`Batcher` queues
requests on the event loop and scores whatever queued meanwhile in one call (in a worker thread).
Each call reads the slot's version once; a hot swap takes effect between calls. The scored
rows go to the capture writer as one :class:`~modelops.serving.blocks.ColumnBlock`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import HTTPException

from modelops.config import ModelConfig
from modelops.jsonsafe import finite
from modelops.layout import CAPTURE, SHADOW
from modelops.serving import guard
from modelops.serving.blocks import ColumnBlock, Repeat
from modelops.serving.capture import CaptureWriter
from modelops.serving.champion import LoadedModel, ModelSlot
from modelops.serving.columns import RequestColumns, frame_of_columns, kind_problems, model_columns
from modelops.serving.problems import RequestInvalid, problem
from modelops.serving.validation import category_text

if TYPE_CHECKING:
    from modelops.serving.prometheus import Metrics
    from modelops.serving.shadow import ShadowRunner
    from modelops.serving.state import ServingState

log = logging.getLogger(__name__)

#: A compiled call on up to this many rows runs on the event loop (well under a millisecond for
#: the built-in families); larger calls, and every pipeline call, run in a worker thread.
INLINE_MAX_ROWS = 128


@dataclass(eq=False)
class PendingPrediction:
    """A checked predict request waiting for its model call."""

    columns: RequestColumns
    location: tuple
    request_id: str
    #: ``X-Modelops-Event-Time`` when the server honours it: the capture time and day.
    event_time: dt.datetime | None = None
    future: Any = None


@dataclass(frozen=True)
class Scored:
    """A request's answer: the JSON body, and the version that produced it."""

    version: str
    body: bytes


def _datetime64(instant: dt.datetime) -> np.datetime64:
    return np.datetime64(instant.astimezone(dt.UTC).replace(tzinfo=None), "us")


def _finite_or_none(values: list) -> list:
    """Predictions as JSON takes them: a non-finite float becomes None, labels stay as they are."""
    return [finite(v) if isinstance(v, float) else v for v in values]


# One model call -----------------------------------------------------------------------------------


def _model_outputs(config: ModelConfig, loaded: LoadedModel, inputs: Any) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """The labels, the probability matrix (or None) and the prediction columns as captured.

    ``inputs`` is what ``loaded.model`` takes: columns (compiled scorer) or a DataFrame (pipeline)."""
    columns: dict[str, Any] = {}
    model = loaded.model
    if loaded.has_probabilities and loaded.classes is not None:
        # One pass through the model: sklearn classifiers predict the most probable class,
        # so the label is derived from the probabilities instead of a second call.
        matrix = np.ascontiguousarray(model.predict_proba(inputs), dtype=np.float64)
        guard.check_outputs(matrix)
        picked = matrix.argmax(axis=1)
        labels = np.asarray(loaded.classes, dtype=object)[picked]
        class_texts = [category_text(c) for c in loaded.classes]
        columns["prediction"] = np.asarray(class_texts, dtype=object)[picked]
        columns["probabilities"] = matrix
        columns["classes"] = Repeat(class_texts)
        return labels, matrix, columns
    labels = np.asarray(model.predict(inputs))
    if config.is_classifier:
        columns["prediction"] = np.asarray([category_text(v) for v in labels.tolist()], dtype=object)
        columns["classes"] = Repeat([category_text(c) for c in loaded.classes] if loaded.classes else None)
    else:
        values = labels.astype(np.float64)
        guard.check_outputs(values)
        columns["prediction"] = np.where(np.isfinite(values), values, np.nan)
    return labels, None, columns


def _answers(
    config: ModelConfig,
    loaded: LoadedModel,
    pending: list[PendingPrediction],
    sizes: list[int],
    labels: np.ndarray,
    matrix: Any,
) -> list[Scored]:
    """Each request's JSON body: its slice of the labels (and probabilities)."""
    answers, start = [], 0
    for p, size in zip(pending, sizes, strict=True):
        stop = start + size
        payload: dict[str, Any] = {
            "model": config.name,
            "version": loaded.version,
            "request_id": p.request_id,
            "predictions": _finite_or_none(labels[start:stop].tolist()),
        }
        if loaded.classes is not None:
            if matrix is not None:
                payload["probabilities"] = matrix[start:stop]
            payload["classes"] = loaded.classes
        answers.append(Scored(loaded.version, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)))
        start = stop
    return answers


def _capture_block(
    config: ModelConfig,
    loaded: LoadedModel,
    pending: list[PendingPrediction],
    sizes: list[int],
    captured: dict[str, Any],
    outputs: dict[str, Any],
) -> ColumnBlock:
    """The capture rows of one model call, as columns."""
    total = sum(sizes)
    now = dt.datetime.now(dt.UTC)
    request_ids: list[str] = []
    for p, size in zip(pending, sizes, strict=True):
        request_ids += [p.request_id] * size
    if all(p.event_time is None for p in pending):
        captured_at = np.full(total, _datetime64(now))
    else:
        captured_at = np.concatenate(
            [np.full(size, _datetime64(p.event_time or now)) for p, size in zip(pending, sizes, strict=True)]
        )
    return ColumnBlock(
        {
            "request_id": request_ids,
            "record_index": np.concatenate([np.arange(size, dtype=np.int32) for size in sizes]),
            "captured_at": captured_at,
            "model": Repeat(config.name),
            "model_version": Repeat(loaded.version),
            **captured,
            **outputs,
        },
        total,
    )


def score_together(
    slot: ModelSlot, loaded: LoadedModel, pending: list[PendingPrediction], *, answer: bool = True
) -> tuple[list[Scored], ColumnBlock, int]:
    """One model call for ``pending``; their answers and their capture rows (one block). With
    ``answer`` false (a shadow: it answers nobody) the block holds the keys and outputs only."""
    config = slot.config
    parts = [p.columns for p in pending]
    if loaded.scorer is not None:
        inputs, captured = model_columns(config, loaded.categorical_kinds, parts)
    else:
        inputs, captured = frame_of_columns(config, loaded.categorical_kinds, parts)
    sizes = [p.columns.length for p in pending]
    labels, matrix, outputs = _model_outputs(config, loaded, inputs)
    answers = _answers(config, loaded, pending, sizes, labels, matrix) if answer else []
    block = _capture_block(config, loaded, pending, sizes, captured if answer else {}, outputs)
    return answers, block, block.length


# A batch of requests ------------------------------------------------------------------------------


def score_batch(
    slot: ModelSlot,
    loaded: LoadedModel,
    pending: list[PendingPrediction],
    writer: CaptureWriter | None,
    metrics: Metrics | None = None,
    shadow: ShadowRunner | None = None,
) -> list[Scored | RequestInvalid]:
    """Answer every request of ``pending`` with the one loaded version ``loaded``.

    A request the version cannot take gets its own 422 and leaves the others alone: if the
    shared call fails with a ValueError/TypeError, each request is scored on its own. Any other
    exception (a broken model) fails the whole batch, as it would fail each request. Capture
    rows go to ``writer`` per capture day (the event time when a request carries one). When the
    slot has a shadow version, the answered requests are handed to ``shadow`` (scored later, off
    this path; :mod:`modelops.serving.shadow`).
    """
    config = slot.config
    outcomes: list[Scored | RequestInvalid | None] = [None] * len(pending)
    ready = []
    for index, p in enumerate(pending):
        problems = input_problems(config, loaded, p)
        if problems:
            outcomes[index] = RequestInvalid(problems)
        else:
            ready.append(index)
    groups = [ready] if ready else []
    while groups:
        group = groups.pop()
        try:
            answers, block, rows = score_together(slot, loaded, [pending[i] for i in group])
        except (ValueError, TypeError) as exc:
            if len(group) > 1:
                groups += [[i] for i in group]  # find the request(s) this version cannot score
                continue
            outcomes[group[0]] = _unscorable(config, loaded, pending[group[0]], exc)
            continue
        for index, answer in zip(group, answers, strict=True):
            outcomes[index] = answer
        if metrics is not None:
            metrics.add_predicted(config.name, loaded.version, rows)
        if writer is not None:
            enqueue_capture(slot, writer, [pending[i] for i in group], block)
        shadow_version = slot.shadow
        if shadow is not None and shadow_version is not None:
            shadow.submit(slot, shadow_version, [pending[i] for i in group])
    return outcomes  # type: ignore[return-value]


def input_problems(config: ModelConfig, loaded: LoadedModel, p: PendingPrediction) -> list[dict]:
    """What this version refuses before scoring: text for numeric categories, values out of range."""
    problems = kind_problems(config, p.columns, loaded.categorical_kinds, p.location)
    ranges = loaded.input_ranges or guard.fallback_ranges(config)
    problems += guard.check_inputs(ranges, p.columns.numeric, p.location, loaded.version, config.name)
    return problems


def _unscorable(config: ModelConfig, loaded: LoadedModel, p: PendingPrediction, exc: Exception) -> RequestInvalid:
    """The 422 of a request scored alone that the version could not score."""
    if isinstance(exc, guard.NonFinitePrediction):
        loc = [*p.location] if p.location[-1] == "record" else [*p.location, exc.index]
        return RequestInvalid(
            [problem("non_finite_prediction", loc, f"model version {loaded.version}: {exc}", index=exc.index)]
        )
    log.warning("%s version %s could not score a request: %s", config.name, loaded.version, exc)
    return RequestInvalid(
        [problem("unscorable", list(p.location), f"model version {loaded.version} could not score the records: {exc}")]
    )  # fmt: skip


def enqueue_capture(
    slot: ModelSlot, writer: CaptureWriter, group: list[PendingPrediction], block: ColumnBlock, stream: str = CAPTURE
) -> None:
    """Hand ``block`` to the writer (``stream``: served rows, or the shadow's), cut where the
    capture day changes between requests."""
    name = slot.config.name
    schema = slot.shadow_schema if stream == SHADOW else slot.capture_schema
    now = dt.datetime.now(dt.UTC).date()
    start = 0
    run_day, run_start = None, 0
    for p in group:
        day = p.event_time.date() if p.event_time is not None else now
        if run_day is not None and day != run_day:
            writer.enqueue(stream, name, run_day, block.slice(run_start, start), schema)
            run_start = start
        run_day = day
        start += p.columns.length
    writer.enqueue(stream, name, run_day, block.slice(run_start, start), schema)


# The batcher --------------------------------------------------------------------------------------


class Batcher:
    """Coalesces concurrent predict requests for one model into one model call.

    Requests queue on the event loop; one scoring call per model runs at a time in a worker
    thread, and whatever queued meanwhile (up to ``max_rows`` rows, optionally after waiting
    ``max_wait_s`` for more) forms the next call. Under light load a request goes alone, at once;
    under load the model's fixed cost per call is shared. Each call reads ``slot.current`` once,
    so every request in it is answered by that version, and a hot swap takes effect between calls.
    """

    def __init__(self, slot: ModelSlot, state: ServingState):
        self.slot = slot
        self.state = state
        self._queue: deque[PendingPrediction] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, pending: PendingPrediction) -> Scored | RequestInvalid:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a new server run, a new test client)
            self._loop, self._wake, self._task = loop, asyncio.Event(), None
            self._queue.clear()
        pending.future = loop.create_future()
        self._queue.append(pending)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name=f"modelops-batcher-{self.slot.config.name}")
        return await pending.future

    def _take(self) -> list[PendingPrediction]:
        limit = self.state.options.batch_max_rows
        batch = [self._queue.popleft()]
        rows = batch[0].columns.length
        while self._queue and rows + self._queue[0].columns.length <= limit:
            rows += self._queue[0].columns.length
            batch.append(self._queue.popleft())
        return batch

    def _inline(self, batch: list[PendingPrediction]) -> bool:
        """Score on the event loop: a compiled scorer on at most ``INLINE_MAX_ROWS`` rows takes
        about as long as handing the call to a worker thread and back, and holds the GIL anyway."""
        loaded = self.slot.current
        return (
            loaded is not None and loaded.scorer is not None and sum(p.columns.length for p in batch) <= INLINE_MAX_ROWS
        )

    def _score(self, batch: list[PendingPrediction]) -> list[Scored | RequestInvalid] | HTTPException:
        loaded = self.slot.current  # read once: the whole call is served by this version
        if loaded is None:
            return HTTPException(503, self.slot.unavailable())
        return score_batch(self.slot, loaded, batch, self.state.writer, self.state.metrics, self.state.shadow)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.state.options.batch_wait_ms / 1000
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if wait > 0 and sum(p.columns.length for p in self._queue) < self.state.options.batch_max_rows:
                await asyncio.sleep(wait)
            batch = self._take()
            try:
                if self._inline(batch):  # a compiled call on a few rows: cheaper than a thread hop
                    outcomes = self._score(batch)
                else:
                    outcomes = await loop.run_in_executor(self.state.executor, self._score, batch)
            except Exception as exc:  # noqa: BLE001 - a broken model fails its requests, not the batcher
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            if isinstance(outcomes, HTTPException):
                outcomes = [outcomes] * len(batch)
            for p, outcome in zip(batch, outcomes, strict=True):
                if not p.future.done():  # the client may have gone away
                    p.future.set_result(outcome)
