"""Validating one raw file with the model's Great Expectations suite, and the outcome of a file
that cannot even be read.

Why a module: GX is slow to import and pure Python, so one process keeps one context and runs one
validation at a time; and since a verdict is a pure function of (suite, file bytes), it is
memoised. Ingestion and the training snapshot's batch screen share this validator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)


class SuiteValidator:
    """Validates frames against one suite file, reusing one GX context; results are memoised by
    (suite bytes, file bytes), since validation is a pure function of both."""

    def __init__(self, suite_path, cache_size: int = 4096):
        self.suite_path = suite_path
        self.suite_sha = hashlib.sha256(open(suite_path, "rb").read()).hexdigest()  # noqa: SIM115
        self._lock = threading.Lock()
        self._context = None
        self._cache: dict[str, ValidationOutcome] = {}
        self._cache_size = cache_size
        self.hits = 0
        self.misses = 0

    def __call__(self, data: bytes, frame_loader, data_name: str) -> tuple[ValidationOutcome, bool]:
        from modelops.data import validation

        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self.hits += 1
                return dataclasses.replace(cached, data_name=data_name), True
            self.misses += 1
            frame = frame_loader()
            if self._context is None:
                self._context = validation.make_context()
            outcome = validation.validate_dataframe(frame, self.suite_path, data_name=data_name, context=self._context)
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = outcome
            return outcome, False


def unreadable_outcome(model: ModelConfig, data_name: str, problem: str) -> ValidationOutcome:
    """A failed validation for a file that could not even be parsed: quarantined like any bad data."""
    from modelops.data.validation import ValidationOutcome

    return ValidationOutcome(
        suite_name=model.suite_path.stem,
        data_name=data_name,
        success=False,
        statistics={"evaluated_expectations": 0, "successful_expectations": 0, "unsuccessful_expectations": 1},
        failures=[
            {
                "expectation_type": "file_is_readable",
                "column": None,
                "kwargs": {"file_format": model.data.file_format},
                "observed_value": None,
                "unexpected_count": None,
                "unexpected_percent": None,
                "element_count": None,
                "sample_unexpected_values": [],
                "exception": problem,
                "notes": "The file could not be parsed; no expectation was evaluated.",
            }
        ],
        result_json={"success": False, "results": [], "statistics": {}, "meta": {"unreadable": problem}},
    )
