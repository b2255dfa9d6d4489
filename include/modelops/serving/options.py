"""Serving knobs that are not addresses (those live in :mod:`modelops.settings`), from the environment.

One frozen value built once at start: request handlers read plain attributes, never the
environment. A bad ``MODELOPS_SERVING_*`` value stops the server at start, naming the variable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelops.serving import cpus
from modelops.serving.capture import CaptureOptions
from modelops.settings import SettingError, env_bool, env_float, env_int, env_str

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingOptions:
    """Serving knobs that are not addresses (those live in :mod:`modelops.settings`)."""

    #: Records per predict request at most.
    max_batch: int = 1000
    #: Labels per feedback request at most.
    max_feedback: int = 10_000
    capture_enabled: bool = True
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    #: Rows one model call takes at most when concurrent requests are scored together.
    batch_max_rows: int = 2000
    #: How long a model call waits for more requests to join it (0: none, only what queued meanwhile).
    batch_wait_ms: float = 0.0
    #: Honour ``X-Modelops-Event-Time`` (with the bearer token): for simulated traffic only.
    accept_event_time: bool = False
    #: A champion that failed to load (registry or artifact store unreachable at start) is tried
    #: again after this many seconds, doubling per failure up to 5 minutes; 0 turns retrying off.
    load_retry_seconds: float = 10.0
    #: Every this many seconds each worker looks where ``champion`` points (and swaps in the version
    #: it moved to) and writes its heartbeat; 0 turns both off (one worker, reloads by request only).
    alias_poll_seconds: float = 10.0
    #: ``auto``: a version whose deploy passed the parity gate is scored by its compiled form
    #: (:mod:`modelops.serving.compiled`), others by the pipeline; ``pipeline``: always the pipeline.
    scoring_path: str = "auto"
    #: Score each model's ``shadow`` version beside the champion (off: this worker ignores the alias).
    shadow_enabled: bool = True
    #: Shadow model calls waiting at most; beyond it a request's shadow scoring is dropped (counted).
    shadow_max_pending: int = 64
    #: A shadow call that waited longer than this is skipped (counted): a slow shadow falls behind, not the answers.
    shadow_max_lag_seconds: float = 2.0
    #: Where the shadow scores: ``process`` (one of its own per worker, its own GIL) or ``thread`` (in the worker).
    shadow_isolation: str = "process"
    #: How long (ms) the shadow process lets calls gather, when one finds it idle, before it scores
    #: them as one model call (0, the default: each call as it comes; ``process`` isolation only).
    #: For a worker run near saturation: at 10 ms, benchmarks/serving_shadow.py's saturated rounds
    #: made 5x fewer shadow model calls and dropped none, and the batch p99 cost fell from +21% to
    #: +1-2%; but at half that load the single-record p99 cost rose (+48% and more, 2 runs of 2),
    #: so it is off unless asked for (docs/BENCHMARKS.md, 2026-12-07 21:24-21:47).
    shadow_gather_ms: float = 0.0
    #: CPUs of the shadow processes' own (``MODELOPS_SERVING_SHADOW_CPUS``, e.g. ``1`` or ``2-3``):
    #: each worker then runs on the others, so a shadow never leaves its data in a worker's core's
    #: caches (:mod:`modelops.serving.cpus`). Empty, the default: both run anywhere.
    shadow_cpus: frozenset[int] = frozenset()
    #: How long (ms) a thread may hold the GIL while another waits for it (``sys.setswitchinterval``),
    #: set per worker. CPython's 5 ms lets a busy background thread (the capture writer making a
    #: file) hold the event loop off 5 ms per turn: in benchmarks/serving_shadow.py's load, loop
    #: stalls over 30 ms went from ~17 to 1 at 0.5 ms (docs/BENCHMARKS.md, 2026-12-07 18:20-18:53).
    gil_switch_ms: float = 0.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingOptions:
        """Defaults overridden by ``MODELOPS_SERVING_*`` / ``MODELOPS_CAPTURE_*``; a bad value names its variable."""
        options = cls(
            max_batch=env_int("MODELOPS_SERVING_MAX_BATCH", cls.max_batch, minimum=1, environ=environ),
            max_feedback=env_int("MODELOPS_SERVING_MAX_FEEDBACK", cls.max_feedback, minimum=1, environ=environ),
            capture_enabled=env_bool("MODELOPS_CAPTURE_ENABLED", cls.capture_enabled, environ=environ),
            capture=CaptureOptions.from_env(environ),
            batch_max_rows=env_int("MODELOPS_SERVING_BATCH_MAX_ROWS", cls.batch_max_rows, minimum=1, environ=environ),
            batch_wait_ms=env_float(
                "MODELOPS_SERVING_BATCH_WAIT_MS", cls.batch_wait_ms, minimum=0, maximum=100, environ=environ
            ),
            accept_event_time=env_bool("MODELOPS_SERVING_ACCEPT_EVENT_TIME", cls.accept_event_time, environ=environ),
            load_retry_seconds=env_float(
                "MODELOPS_SERVING_LOAD_RETRY_SECONDS", cls.load_retry_seconds, minimum=0, environ=environ
            ),
            alias_poll_seconds=env_float(
                "MODELOPS_SERVING_ALIAS_POLL_SECONDS", cls.alias_poll_seconds, minimum=0, maximum=3600, environ=environ
            ),
            scoring_path=_scoring_path(environ),
            shadow_enabled=env_bool("MODELOPS_SERVING_SHADOW_ENABLED", cls.shadow_enabled, environ=environ),
            shadow_max_pending=env_int(
                "MODELOPS_SERVING_SHADOW_MAX_PENDING", cls.shadow_max_pending, minimum=1, environ=environ
            ),
            shadow_max_lag_seconds=env_float(
                "MODELOPS_SERVING_SHADOW_MAX_LAG_SECONDS", cls.shadow_max_lag_seconds, minimum=0.001, environ=environ
            ),
            shadow_isolation=_choice("MODELOPS_SERVING_SHADOW_ISOLATION", SHADOW_ISOLATIONS, environ),
            shadow_gather_ms=env_float(
                "MODELOPS_SERVING_SHADOW_GATHER_MS", cls.shadow_gather_ms, minimum=0, maximum=1000, environ=environ
            ),
            shadow_cpus=cpus.shadow_cpus(env_str(cpus.VARIABLE, environ=environ)),
            gil_switch_ms=env_float(
                "MODELOPS_SERVING_GIL_SWITCH_MS", cls.gil_switch_ms, minimum=0.05, maximum=100, environ=environ
            ),
        )
        if options.shadow_gather_ms / 1000 >= options.shadow_max_lag_seconds:
            raise SettingError(
                f"MODELOPS_SERVING_SHADOW_GATHER_MS ({options.shadow_gather_ms:g} ms) must be below "
                f"MODELOPS_SERVING_SHADOW_MAX_LAG_SECONDS ({options.shadow_max_lag_seconds:g} s): every gathered "
                "shadow call would be skipped as stale"
            )
        if options.shadow_cpus and options.shadow_isolation != "process":
            raise SettingError(
                f"{cpus.VARIABLE} needs MODELOPS_SERVING_SHADOW_ISOLATION=process (a shadow in a thread runs on the worker's CPUs)"
            )
        return options


SCORING_PATHS = ("auto", "pipeline")
SHADOW_ISOLATIONS = ("process", "thread")


def _scoring_path(environ: Mapping[str, str] | None) -> str:
    return _choice("MODELOPS_SERVING_SCORING_PATH", SCORING_PATHS, environ)


def _choice(variable: str, choices: tuple[str, ...], environ: Mapping[str, str] | None) -> str:
    """One of ``choices`` (the first by default); another value names the variable and the choices."""
    value = (env_str(variable, choices[0], environ=environ) or choices[0]).lower()
    if value not in choices:
        raise SettingError(f"{variable} must be one of {list(choices)}, got {value!r}")
    return value
