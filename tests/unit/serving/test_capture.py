"""The capture writer on its own: buffering, when files are cut, their keys, shutdown, bad options.

No S3 and no app: an in-memory store stands in for :class:`modelops.store.Store` and, where
time matters, a fake clock drives the writer (``CaptureWriter(clock=...)``).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelops.layout import CAPTURE, FEEDBACK
from modelops.serving.blocks import ColumnBlock, Repeat, RowParts
from modelops.serving.capture import CaptureOptions, CaptureWriter

SCHEMA = pa.schema([pa.field("i", pa.int64())])
DAY = dt.date(2026, 11, 25)
KEY = re.compile(r"^(capture|feedback)/[a-z_]+/dt=\d{4}-\d{2}-\d{2}/[0-9a-f]{32}\.parquet$")


class _MemoryStore:
    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def put_bytes(self, key, data, content_type):
        assert content_type == "application/vnd.apache.parquet"
        with self.lock:
            self.objects[key] = data

    def rows(self) -> list[int]:
        with self.lock:
            blobs = list(self.objects.values())
        return sorted(i for b in blobs for i in pd.read_parquet(io.BytesIO(b))["i"].tolist())


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait_until(condition, what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.005)


def _rows(start: int, stop: int) -> list[dict]:
    return [{"i": i} for i in range(start, stop)]


# Buffering and when a file is cut ------------------------------------------------------------------


def test_rows_wait_in_memory_until_a_group_holds_flush_records():
    writer = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=3, flush_seconds=60), clock=_Clock())
    writer.start()
    writer.enqueue(CAPTURE, "m", DAY, _rows(0, 2), SCHEMA)
    time.sleep(0.05)
    assert writer.stats()["files"] == 0 and writer.stats()["pending"] == 2  # buffered, not written
    writer.enqueue(CAPTURE, "m", DAY, _rows(2, 4), SCHEMA)  # 4 rows: reaches 3, cut into files of 3 and 1
    _wait_until(lambda: writer.stats()["files"] == 2, "two files")
    assert sorted(len(pd.read_parquet(io.BytesIO(b))) for b in writer.store.objects.values()) == [1, 3]
    assert writer.store.rows() == [0, 1, 2, 3] and writer.stats()["pending"] == 0
    writer.close()


def test_a_group_is_written_after_flush_seconds_however_few_rows_it_holds():
    clock = _Clock()
    writer = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=100, flush_seconds=60), clock=clock)
    writer.start()
    writer.enqueue(CAPTURE, "m", DAY, _rows(0, 2), SCHEMA)
    clock.now += 59
    time.sleep(0.05)
    assert writer.stats()["files"] == 0
    clock.now += 2  # the group is now older than flush_seconds
    _wait_until(lambda: writer.stats()["files"] == 1, "the aged group written", timeout=3.0)
    assert writer.store.rows() == [0, 1]
    writer.close()


def test_files_are_partitioned_by_stream_model_and_day():
    writer = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=10))
    writer.start()
    writer.enqueue(CAPTURE, "churn", DAY, _rows(0, 2), SCHEMA)
    writer.enqueue(CAPTURE, "churn", DAY + dt.timedelta(days=1), _rows(2, 3), SCHEMA)
    writer.enqueue(FEEDBACK, "churn", DAY, _rows(3, 4), SCHEMA)
    writer.enqueue(CAPTURE, "other", DAY, _rows(4, 5), SCHEMA)
    assert writer.flush(5.0)
    keys = sorted(writer.store.objects)
    assert all(KEY.match(k) for k in keys), keys
    assert sorted(k.rsplit("/", 1)[0] for k in keys) == [
        "capture/churn/dt=2026-11-25",
        "capture/churn/dt=2026-11-26",
        "capture/other/dt=2026-11-25",
        "feedback/churn/dt=2026-11-25",
    ]
    groups = writer.close()["groups"]
    assert groups[(CAPTURE, "churn")]["written"] == 3 and groups[(FEEDBACK, "churn")]["written"] == 1


def test_close_writes_every_row_exactly_once_while_requests_keep_coming():
    writer = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=7, flush_seconds=0.01, max_buffered=10_000))
    writer.start()

    def produce(base: int) -> None:
        for k in range(50):
            writer.enqueue(CAPTURE, "m", DAY, _rows(base + 3 * k, base + 3 * k + 3), SCHEMA)

    threads = [threading.Thread(target=produce, args=(1000 * t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = writer.close()
    expected = sorted(1000 * t + i for t in range(4) for i in range(150))
    assert writer.store.rows() == expected  # nothing lost, nothing written twice
    assert stats["written"] == 600 and stats["dropped"] == 0 and stats["pending"] == 0
    assert writer.close()["written"] == 600  # closing again changes nothing


def test_enqueue_never_blocks_on_a_stuck_store():
    class _Stuck(_MemoryStore):
        def __init__(self):
            super().__init__()
            self.release = threading.Event()

        def put_bytes(self, key, data, content_type):
            assert self.release.wait(5)
            super().put_bytes(key, data, content_type)

    writer = CaptureWriter(_Stuck(), CaptureOptions(flush_records=1, max_buffered=1000))
    writer.start()
    started = time.monotonic()
    for i in range(100):
        writer.enqueue(CAPTURE, "m", DAY, _rows(i, i + 1), SCHEMA)
    assert time.monotonic() - started < 1.0
    writer.store.release.set()
    assert writer.flush(5.0) and writer.store.rows() == list(range(100))
    writer.close()


# Options ----------------------------------------------------------------------------------------------


def test_capture_options_from_env_read_every_variable():
    options = CaptureOptions.from_env(
        {"MODELOPS_CAPTURE_FLUSH_RECORDS": "10", "MODELOPS_CAPTURE_FLUSH_SECONDS": "2.5",
         "MODELOPS_CAPTURE_MAX_BUFFERED": "20", "MODELOPS_CAPTURE_RETRY_INITIAL_SECONDS": "0.1",
         "MODELOPS_CAPTURE_RETRY_MAX_SECONDS": "4", "MODELOPS_CAPTURE_SHUTDOWN_TIMEOUT_SECONDS": "0",
         "UNRELATED": "x"}
    )  # fmt: skip
    assert options == CaptureOptions(10, 2.5, 20, 0.1, 4.0, 0.0)
    assert CaptureOptions.from_env({}) == CaptureOptions()
    assert CaptureOptions.from_env({"MODELOPS_CAPTURE_FLUSH_RECORDS": ""}) == CaptureOptions()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELOPS_CAPTURE_FLUSH_RECORDS", "many"),
        ("MODELOPS_CAPTURE_FLUSH_RECORDS", "1.5"),
        ("MODELOPS_CAPTURE_FLUSH_RECORDS", "0"),
        ("MODELOPS_CAPTURE_MAX_BUFFERED", "-3"),
        ("MODELOPS_CAPTURE_FLUSH_SECONDS", "soon"),
        ("MODELOPS_CAPTURE_RETRY_MAX_SECONDS", "nan"),
        ("MODELOPS_CAPTURE_SHUTDOWN_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_a_bad_capture_variable_is_refused_naming_the_variable_and_the_value(variable, value):
    with pytest.raises(ValueError, match=re.escape(f"{variable}={value!r}")):
        CaptureOptions.from_env({variable: value})


def test_capture_options_that_do_not_fit_together_are_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"max_buffered \(2\) must be at least flush_records \(5\)"):
        CaptureOptions(flush_records=5, max_buffered=2)
    with pytest.raises(ValueError, match="flush_seconds must be positive"):
        CaptureOptions.from_env({"MODELOPS_CAPTURE_FLUSH_SECONDS": "0"})


# Retries, the memory bound and column blocks ----------------------------------------------------------


class _FlakyStore:
    def __init__(self, failures: int):
        self.failures, self.objects = failures, {}

    def put_bytes(self, key, data, content_type):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("S3 is down")
        self.objects[key] = data


def test_capture_writer_retries_then_drops_what_shutdown_cannot_write():
    import pyarrow as pa

    schema = pa.schema([pa.field("i", pa.int64())])
    day = dt.date(2026, 11, 25)
    options = CaptureOptions(flush_records=3, flush_seconds=0.01, max_buffered=6, retry_initial_seconds=0.01,
                             retry_max_seconds=0.02, shutdown_timeout_seconds=0.2)  # fmt: skip
    flaky = CaptureWriter(_FlakyStore(failures=2), options)
    flaky.start()
    flaky.enqueue("capture", "m", day, [{"i": i} for i in range(5)], schema)
    assert flaky.flush(2.0)  # two failed attempts, then written with the same keys
    stats = flaky.close()
    assert stats["written"] == 5 and stats["dropped"] == 0 and stats["write_failures"] == 2
    assert stats["writer_cpu_seconds"] > 0  # three attempts' Parquet + puts, counted on the writer thread
    assert sorted(len(pd.read_parquet(io.BytesIO(b))) for b in flaky.store.objects.values()) == [2, 3]

    down = CaptureWriter(_FlakyStore(failures=10**9), options)
    down.start()
    down.enqueue("capture", "m", day, [{"i": i} for i in range(9)], schema)
    assert down.stats()["pending"] == 6 and down.stats()["dropped"] == 3  # the 3 oldest
    started = time.monotonic()
    stats = down.close()
    assert time.monotonic() - started < 3
    assert stats["written"] == 0 and stats["dropped"] == 9 and stats["pending"] == 0
    down.enqueue("capture", "m", day, [{"i": 0}], schema)  # after shutdown: counted, not kept
    assert down.stats()["dropped"] == 10


class _SlowStore:
    def __init__(self):
        self.entered, self.release, self.objects = threading.Event(), threading.Event(), {}

    def put_bytes(self, key, data, content_type):
        self.entered.set()
        assert self.release.wait(5)
        self.objects[key] = data


def test_capture_writer_counts_rows_cut_from_a_file_in_flight_back_when_it_lands():
    import pyarrow as pa

    schema = pa.schema([pa.field("i", pa.int64())])
    options = CaptureOptions(flush_records=3, flush_seconds=60, max_buffered=6)
    writer = CaptureWriter(_SlowStore(), options)
    writer.start()
    writer.enqueue("capture", "m", dt.date(2026, 11, 25), [{"i": i} for i in range(3)], schema)
    assert writer.store.entered.wait(5)  # the first file is being written
    writer.enqueue("capture", "m", dt.date(2026, 11, 25), [{"i": i} for i in range(3, 9)], schema)
    assert writer.stats()["dropped"] == 3 and writer.stats()["pending"] == 6  # the oldest: the file in flight
    writer.store.release.set()
    assert writer.flush(5.0)
    stats = writer.close()
    assert stats["written"] == 9 and stats["dropped"] == 0 and stats["files"] == 3


# Column blocks in the capture buffer -------------------------------------------------------------------


def test_capture_writer_takes_column_blocks_cut_and_split_like_rows():
    import pyarrow as pa

    schema = pa.schema(
        [pa.field("i", pa.int64()), pa.field("x", pa.float64()), pa.field("s", pa.string()),
         pa.field("m", pa.string()), pa.field("p", pa.list_(pa.float64())), pa.field("missing", pa.string())]
    )  # fmt: skip

    def block(start: int, n: int) -> ColumnBlock:
        i = np.arange(start, start + n)
        x = np.where(i % 3 == 0, np.nan, i / 2)
        probabilities = np.column_stack([i / 10, 1 - i / 10])
        return ColumnBlock({"i": i, "x": x, "s": [f"s{k}" if k % 4 else None for k in i], "m": Repeat("toy"),
                            "p": probabilities}, n)  # fmt: skip

    options = CaptureOptions(flush_records=4, flush_seconds=60, max_buffered=8)
    writer = CaptureWriter(_FlakyStore(failures=0), options)
    writer.start()
    day = dt.date(2026, 11, 25)
    writer.enqueue("capture", "m", day, block(0, 3), schema)
    writer.enqueue("capture", "m", day, [{"i": 100, "x": 1.5, "s": "d", "m": "toy", "p": [0.5, 0.5]}], schema)
    writer.enqueue("capture", "m", day, block(3, 3), schema)
    assert writer.flush(5.0)
    # 3 + 1 + 3 rows become files of at most 4 rows, in order, dicts and blocks alike.
    stats = writer.close()
    assert stats["written"] == 7 and stats["files"] == 2
    frames = [pd.read_parquet(io.BytesIO(b)) for b in writer.store.objects.values()]
    rows = pd.concat(sorted(frames, key=len, reverse=True), ignore_index=True)
    assert rows["i"].tolist() == [0, 1, 2, 100, 3, 4, 5]
    assert rows["x"].isna().tolist() == [True, False, False, False, True, False, False]
    assert [None if pd.isna(v) else v for v in rows["s"]] == [None, "s1", "s2", "d", "s3", None, "s5"]
    assert set(rows["m"]) == {"toy"} and rows["missing"].isna().all()
    assert [list(p) for p in rows["p"]][:2] == [[0.0, 1.0], [0.1, 0.9]]

    down = CaptureWriter(_FlakyStore(failures=10**9), CaptureOptions(flush_records=4, flush_seconds=60, max_buffered=5))
    down.enqueue("capture", "m", day, block(0, 3), schema)
    down.enqueue("capture", "m", day, block(3, 4), schema)  # 7 rows, room for 5: the 2 oldest go
    assert down.stats()["pending"] == 5 and down.stats()["dropped"] == 2
    # Sealed as files of 4 + 3 rows; the cut then took the first file's two oldest rows, across blocks.
    assert [c.rows.to_arrow(schema).column("i").to_pylist() for c in down._sealed] == [[2, 3], [4, 5, 6]]
    assert down.close(timeout=0)["dropped"] == 7


def test_a_file_of_many_small_blocks_converts_as_one_and_equals_block_by_block():
    """The writer joins a file's blocks before Arrow; blocks that do not line up (a hot swap to a
    version with other classes, a dict part) are converted apart, and the table is the same."""
    import pyarrow as pa

    schema = pa.schema(
        [pa.field("i", pa.int64()), pa.field("s", pa.string()), pa.field("v", pa.string()),
         pa.field("p", pa.list_(pa.float64())), pa.field("c", pa.list_(pa.string()))]
    )  # fmt: skip

    def block(start: int, n: int, version: str, classes: list[str]) -> ColumnBlock:
        i = np.arange(start, start + n)
        p = np.full((n, len(classes)), 1 / len(classes))
        s = [f"s{k}" if k % 3 else None for k in i] if start % 2 else np.asarray([f"t{k}" for k in i], dtype=object)
        return ColumnBlock({"i": i, "s": s, "v": Repeat(version), "p": p, "c": Repeat(classes)}, n)

    parts = [block(k, 1, "1", ["a", "b"]) for k in range(5)]
    parts += [block(5, 2, "2", ["a", "b"]), [{"i": 7, "s": "d", "v": "2", "p": [0.5, 0.5], "c": ["a", "b"]}]]
    parts += [block(8, 3, "3", ["a", "b", "c"]), block(11, 1, "3", ["a", "b", "c"])]
    rows = RowParts(parts)
    joined = rows.to_arrow(schema)
    one_by_one = pa.concat_tables(
        [p.to_arrow(schema) if isinstance(p, ColumnBlock) else pa.Table.from_pylist(p, schema=schema) for p in parts]
    )
    assert joined.equals(one_by_one)
    assert joined.column("i").to_pylist() == list(range(12))
    assert joined.column("v").to_pylist() == ["1"] * 5 + ["2"] * 3 + ["3"] * 4
    assert [len(p) for p in joined.column("p").to_pylist()] == [2] * 8 + [3] * 4
    # Blocks of the same shape are joined (versions 1 and 2 alike); the 3-class blocks are a group of their own.
    assert [len(b) for b in ColumnBlock.concat([p for p in parts if isinstance(p, ColumnBlock)])] == [7, 4]


def test_thousands_of_one_row_blocks_join_in_slices_to_the_same_table():
    """More blocks than one join slice (the writer gives up the GIL between slices): the same table
    as block by block, a width change in the middle included."""
    import pyarrow as pa

    from modelops.serving.blocks import JOIN_SLICE

    schema = pa.schema([pa.field("i", pa.int64()), pa.field("s", pa.string()), pa.field("p", pa.list_(pa.float64()))])

    def block(k: int, width: int) -> ColumnBlock:
        return ColumnBlock({"i": np.asarray([k]), "s": [f"s{k}"], "p": np.full((1, width), float(k))}, 1)

    n = 2 * JOIN_SLICE + 37
    parts = [block(k, 2 if k < n - 5 else 3) for k in range(n)]
    joined = RowParts(parts).to_arrow(schema)
    assert joined.equals(pa.concat_tables([p.to_arrow(schema) for p in parts]))
    assert [len(b) for b in ColumnBlock.concat(parts)] == [n - 5, 5]


# Joining while a file fills ------------------------------------------------------------------------------


def _one_row(k: int) -> ColumnBlock:
    return ColumnBlock({"i": np.asarray([k]), "s": [f"s{k}"], "m": Repeat("toy")}, 1)


_JOIN_SCHEMA = pa.schema([pa.field("i", pa.int64()), pa.field("s", pa.string()), pa.field("m", pa.string())])


def test_the_writer_joins_a_filling_files_blocks_as_they_arrive_and_writes_the_same_rows():
    """Single-record traffic: one block per request. The writer joins them COMPACT_PARTS at a time
    while the file fills, so the write does not join thousands at once; the file is the same."""
    from modelops.serving.capture import COMPACT_PARTS

    n = 3 * COMPACT_PARTS + 17
    writer = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=10 * n, flush_seconds=3600), clock=_Clock())
    writer.start()
    for k in range(n):
        writer.enqueue(CAPTURE, "m", DAY, _one_row(k), _JOIN_SCHEMA)
    chunk = writer._open[(CAPTURE, "m", DAY)]
    _wait_until(lambda: len(chunk.rows.parts) == 3 + 17, "three joins")  # 3 joined blocks + the 17 newest
    assert [len(p) for p in chunk.rows.parts[:3]] == [COMPACT_PARTS] * 3 and len(chunk.rows) == n
    assert writer.stats()["pending"] == n and writer.stats()["writer_cpu_seconds"] > 0
    assert writer.flush(5.0)
    (blob,) = writer.store.objects.values()
    frame = pd.read_parquet(io.BytesIO(blob))
    assert frame["i"].tolist() == list(range(n)) and frame["s"].tolist() == [f"s{k}" for k in range(n)]
    assert set(frame["m"]) == {"toy"}
    writer.close()


def test_a_join_that_finds_its_parts_cut_or_sealed_meanwhile_changes_nothing():
    """The writer joins outside the lock: the memory bound may cut the file's head, or the file may
    be sealed, meanwhile. Then the joined copy is dropped and the rows stay exactly as they are."""
    from modelops.serving.capture import COMPACT_PARTS

    n = COMPACT_PARTS + 5
    options = CaptureOptions(flush_records=n, flush_seconds=3600, max_buffered=n)
    writer = CaptureWriter(_MemoryStore(), options, clock=_Clock())  # not started: the test drives it
    for k in range(COMPACT_PARTS + 2):
        writer.enqueue(CAPTURE, "m", DAY, _one_row(k), _JOIN_SCHEMA)
    group, chunk, parts = writer._parts_to_join()
    assert len(parts) == COMPACT_PARTS and parts[0] is chunk.rows.parts[0]
    # Meanwhile 4 rows of another model: one past the bound, so this file's oldest row is dropped.
    other = ColumnBlock({"i": np.arange(1000, 1004), "s": ["x"] * 4, "m": Repeat("toy")}, 4)
    writer.enqueue(CAPTURE, "other", DAY, other, _JOIN_SCHEMA)
    assert writer.stats()["dropped"] == 1
    writer._join(group, chunk, parts)
    assert len(chunk.rows.parts) == COMPACT_PARTS + 1 and chunk.compacted == COMPACT_PARTS
    assert chunk.rows.to_arrow(_JOIN_SCHEMA).column("i").to_pylist() == list(range(1, COMPACT_PARTS + 2))

    sealed = CaptureWriter(_MemoryStore(), CaptureOptions(flush_records=10 * n, flush_seconds=3600), clock=_Clock())
    for k in range(COMPACT_PARTS):
        sealed.enqueue(CAPTURE, "m", DAY, _one_row(k), _JOIN_SCHEMA)
    job = sealed._parts_to_join()
    sealed._seal((CAPTURE, "m", DAY))
    sealed._join(*job)
    (file,) = sealed._sealed
    assert len(file.rows.parts) == COMPACT_PARTS and file.rows.parts[0] is job[2][0]  # untouched


def test_row_parts_replace_puts_joined_parts_only_where_the_same_parts_still_are():
    blocks = [_one_row(k) for k in range(6)]
    rows = RowParts(list(blocks))
    joined = RowParts.joined(blocks[2:5])
    assert [len(p) for p in joined] == [3]
    assert rows.replace(blocks[2:5], joined, hint=0) == 3  # found past the hint
    assert [len(p) for p in rows.parts] == [1, 1, 3, 1] and len(rows) == 6
    assert rows.replace(blocks[2:5], joined) is None  # already replaced: not there any more
    assert rows.replace([blocks[0], blocks[2]], RowParts.joined([blocks[0], blocks[2]])) is None  # not consecutive
    assert rows.to_arrow(_JOIN_SCHEMA).column("i").to_pylist() == list(range(6))
    with_dicts = RowParts.joined([blocks[0], blocks[1], [{"i": 9, "s": "d", "m": "toy"}], blocks[2]])
    assert [type(p).__name__ for p in with_dicts] == ["ColumnBlock", "list", "ColumnBlock"]
