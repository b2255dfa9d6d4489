"""Stand-ins for the validation worker process (module-level, so a spawned process can import them).

Kept apart from ingest_helpers so a worker imports little."""

from __future__ import annotations

import os
from pathlib import Path

from modelops import batches
from modelops.data.validation import ValidationOutcome


def no_warm_up(suite_path: str) -> None:
    """The real initializer imports GX; these tests do not need it."""


def judge_or_die_once(data: bytes, file_format: str, suite_path: str, data_name: str) -> ValidationOutcome:
    """Judges like FakeValidator (fails on ``BAD``) in a worker process; the first file holding
    ``CRASH`` kills its worker, as the kernel's OOM killer would."""
    if b"CRASH" in data:
        flag = Path(suite_path + ".crashed")
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            os._exit(1)
    batches.read_batch(data, file_format, data_name)  # unreadable files fail here, as in validate_file
    ok = b"BAD" not in data
    return ValidationOutcome(
        suite_name="churn",
        data_name=data_name,
        success=ok,
        statistics={"evaluated_expectations": 1, "successful_expectations": int(ok)},
        failures=[] if ok else [{"expectation_type": "expect_x", "column": "plan", "kwargs": {}}],
        result_json={"success": ok, "results": [], "worker_pid": os.getpid()},
        timings={"parse": 0.0, "validate": 0.0},
    )
