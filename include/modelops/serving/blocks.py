"""Rows held as columns: how the predict path hands a scored batch to the capture buffer.

The request path already holds a batch as numpy arrays and lists; :class:`ColumnBlock` keeps
them as they are (slicing shares the arrays), and only the capture writer's thread turns them
into Arrow. :class:`RowParts` is a buffered file's rows: a sequence of blocks and lists of dicts
that can be cut from the front while a copy of it is being written.
"""

from __future__ import annotations

import itertools
import logging
import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


#: Blocks joined per slice on the capture writer's thread (see :meth:`ColumnBlock._join_yielding`).
JOIN_SLICE = 256


@dataclass(frozen=True)
class Repeat:
    """One value for every row of a :class:`ColumnBlock` (a model name, a version, the class list)."""

    value: Any


class ColumnBlock:
    """Rows held as columns: ``name -> numpy array | list | Repeat``, all of ``length`` rows.

    A 2-D array becomes a list column (one row of the array per row). Columns the schema has but
    the block lacks are written as nulls; in float arrays NaN is null. Slicing shares the arrays,
    so cutting a block (file boundaries, the memory bound) copies nothing.
    """

    __slots__ = ("columns", "length")

    def __init__(self, columns: Mapping[str, Any], length: int):
        self.columns = dict(columns)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def slice(self, start: int, stop: int) -> ColumnBlock:
        start, stop = max(0, start), min(self.length, stop)
        if start == 0 and stop == self.length:
            return self
        columns = {k: v if isinstance(v, Repeat) else v[start:stop] for k, v in self.columns.items()}
        return ColumnBlock(columns, max(0, stop - start))

    @staticmethod
    def concat(blocks: list[ColumnBlock]) -> list[ColumnBlock]:
        """Consecutive blocks joined column by column, so a file converts to Arrow once rather
        than once per request (thousands of small blocks under single-record load). Blocks whose
        columns do not line up (another set of names, a probability matrix of another width)
        start a new group.

        This runs on the capture writer's thread and holds the GIL the serving loop needs: it
        groups by the column names alone (one tuple per block), and only a group whose matrices
        differ in width is split further. Grouping by the full shape per block took 75 ms of a
        5,000-single-record file, a stall of every answer meanwhile (benchmarks/serving_shadow.py)."""
        joined: list[ColumnBlock] = []
        for group in _runs(blocks, lambda block: tuple(block.columns)):
            if len(group) == 1:
                joined.append(group[0])
                continue
            try:
                joined.append(ColumnBlock._join_yielding(group))
            except ValueError:  # matrices of different widths under one name
                parts = _runs(group, ColumnBlock._shape)
                joined += [part[0] if len(part) == 1 else ColumnBlock._join(part) for part in parts]
        return joined

    @staticmethod
    def _join_yielding(group: list[ColumnBlock]) -> ColumnBlock:
        """:meth:`_join` in slices of ``JOIN_SLICE`` blocks, giving up the GIL between them, so a
        waiting request is answered after a slice (~1 ms), not after the whole file (~25 ms)."""
        if len(group) <= JOIN_SLICE:
            return ColumnBlock._join(group)
        parts = []
        for start in range(0, len(group), JOIN_SLICE):
            parts.append(ColumnBlock._join(group[start : start + JOIN_SLICE]))
            time.sleep(0)  # let the event loop have the GIL
        return ColumnBlock._join(parts)

    @staticmethod
    def _shape(block: ColumnBlock) -> tuple:
        import numpy as np

        return tuple(
            (k, v.shape[1] if isinstance(v, np.ndarray) and v.ndim == 2 else None) for k, v in block.columns.items()
        )

    @staticmethod
    def _join(group: list[ColumnBlock]) -> ColumnBlock:
        """One block of ``group`` (same column names); ValueError when 2-D columns differ in width.
        Per column, the common cases (all arrays, all lists, one repeated value) are joined by C
        loops (map, chain, concatenate): thousands of one-row blocks cost milliseconds."""
        import numpy as np

        columns: dict[str, Any] = {}
        dicts = [b.columns for b in group]
        for name in group[0].columns:
            values = list(map(operator.itemgetter(name), dicts))
            first = values[0]
            kinds = set(map(type, values))
            if kinds == {Repeat} and values.count(first) == len(values):
                columns[name] = first
            elif kinds == {list}:
                columns[name] = list(itertools.chain.from_iterable(values))
            elif kinds == {np.ndarray} and len({d.kind for d in set(map(operator.attrgetter("dtype"), values))}) == 1:
                if first.ndim == 2 and len({v.shape[1] for v in values}) > 1:
                    raise ValueError(f"column '{name}': matrices of different widths")
                columns[name] = np.concatenate(values)
            else:  # repeats of different values, mixed kinds: one Python list
                joined: list = []
                for block, value in zip(group, values, strict=True):
                    if isinstance(value, Repeat):
                        joined += [value.value] * block.length
                    elif isinstance(value, np.ndarray):
                        joined += list(value)  # 2-D: one row array per row, as a list column takes
                    else:
                        joined += value
                columns[name] = joined
        return ColumnBlock(columns, sum(map(len, group)))

    def to_arrow(self, schema: Any) -> Any:
        """A ``pyarrow.Table`` with ``schema`` (run on the writer thread)."""
        import numpy as np
        import pyarrow as pa

        n = self.length
        arrays = []
        for column in schema:
            value = self.columns.get(column.name)
            if value is None:
                arrays.append(pa.nulls(n, column.type))
            elif isinstance(value, Repeat):
                if value.value is None:
                    arrays.append(pa.nulls(n, column.type))
                else:
                    arrays.append(pa.repeat(pa.scalar(value.value, column.type), n))
            elif isinstance(value, np.ndarray) and value.ndim == 2:
                width = value.shape[1]
                offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
                flat = pa.array(np.ascontiguousarray(value, dtype=np.float64).reshape(-1), from_pandas=True)
                arrays.append(pa.ListArray.from_arrays(offsets, flat).cast(column.type))
            else:
                arrays.append(pa.array(value, type=column.type, from_pandas=True))
        return pa.Table.from_arrays(arrays, schema=schema)


def _runs(items: list, key: Callable[[Any], Any]) -> list[list]:
    """``items`` cut into runs of consecutive items with the same ``key``."""
    runs: list[list] = []
    last: Any = None
    for item in items:
        value = key(item)
        if runs and value == last:
            runs[-1].append(item)
        else:
            runs.append([item])
            last = value
    return runs


class RowParts:
    """The rows of a chunk: a sequence of parts (lists of dicts or column blocks).

    Parts are never mutated once added (cutting replaces the head part with a slice), so a copy
    taken for a write in progress stays valid while the buffer is cut under it.
    """

    __slots__ = ("parts", "n")

    def __init__(self, parts: list | None = None):
        self.parts: list = parts or []
        self.n = sum(len(p) for p in self.parts)

    def __len__(self) -> int:
        return self.n

    def extend(self, part: list[dict] | ColumnBlock) -> None:
        if len(part):
            self.parts.append(part if isinstance(part, ColumnBlock) else list(part))
            self.n += len(part)

    @staticmethod
    def _cut(part: list[dict] | ColumnBlock, start: int, stop: int) -> list[dict] | ColumnBlock:
        return part.slice(start, stop) if isinstance(part, ColumnBlock) else part[start:stop]

    def __getitem__(self, span: slice) -> RowParts:
        start, stop, _ = span.indices(self.n)
        out, offset = [], 0
        for part in self.parts:
            size = len(part)
            if offset + size > start and offset < stop:
                out.append(self._cut(part, max(0, start - offset), min(size, stop - offset)))
            offset += size
            if offset >= stop:
                break
        return RowParts(out)

    def __delitem__(self, span: slice) -> None:
        """Only ``del rows[:k]`` (drop the oldest k rows)."""
        if span.start not in (None, 0) or span.step not in (None, 1):
            raise ValueError("only the oldest rows can be cut")
        k = min(self.n, span.stop if span.stop is not None else self.n)
        while k > 0 and self.parts:
            head = self.parts[0]
            if len(head) <= k:
                self.parts.pop(0)
                k -= len(head)
                self.n -= len(head)
            else:
                self.parts[0] = self._cut(head, k, len(head))
                self.n -= k
                k = 0

    def copy(self) -> RowParts:
        return RowParts(list(self.parts))

    @staticmethod
    def joined(parts: list) -> list:
        """``parts`` with each run of consecutive column blocks joined (:meth:`ColumnBlock.concat`);
        lists of dicts stay as they are. The same rows, in the same order."""
        out: list = []
        blocks: list[ColumnBlock] = []
        for part in [*parts, None]:
            if isinstance(part, ColumnBlock):
                blocks.append(part)
                continue
            out += ColumnBlock.concat(blocks)
            blocks = []
            if part is not None:
                out.append(part)
        return out

    def replace(self, old: list, new: list, hint: int = 0) -> int | None:
        """Put ``new`` (the same rows) where the parts ``old`` are, if they are still here, one after
        another (looked for at ``hint`` first); the index after ``new``, or None when they are not
        (cut from the head, or the rows went to a file meanwhile)."""
        at = hint if hint < len(self.parts) and self.parts[hint] is old[0] else None
        if at is None:
            at = next((i for i, part in enumerate(self.parts) if part is old[0]), None)
        if at is None or len(self.parts) < at + len(old):
            return None
        if any(a is not b for a, b in zip(self.parts[at : at + len(old)], old, strict=True)):
            return None
        self.parts[at : at + len(old)] = new
        return at + len(new)

    def to_arrow(self, schema: Any) -> Any:
        import pyarrow as pa

        tables = [
            part.to_arrow(schema) if isinstance(part, ColumnBlock) else pa.Table.from_pylist(part, schema=schema)
            for part in self.joined(self.parts)
        ]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)
