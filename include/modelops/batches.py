"""Raw batches as files: how one is read (and refused when unusable) and how CSV is written.

Ingest, the training snapshot and the stack check read what lands in the raw zone through
:func:`read_batch`; the example-data generator writes with :func:`to_csv_bytes`.
"""

from __future__ import annotations

import csv
import io
import warnings

import pandas as pd

CSV_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class BatchReadError(ValueError):
    """A raw file cannot be used: the message names the source and what is wrong with it."""


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV as the raw zone stores it: UTF-8, no index, UTC timestamps as ISO 8601 with ``Z``."""
    out = df.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC")
    return out.to_csv(index=False, date_format=CSV_TIMESTAMP_FORMAT, lineterminator="\n").encode("utf-8")


def _check_csv_complete(data: bytes, source: str) -> None:
    """pandas fills a short last row with NaN; an interrupted upload must be refused instead.

    Only the header and the last line are parsed, so the check costs nothing on large files.
    """
    body = data.rstrip(b"\r\n")
    first_break = body.find(b"\n")
    if first_break < 0:
        return  # header only: read_batch reports "no data rows"
    header = next(csv.reader([body[:first_break].decode("utf-8").rstrip("\r")]))
    last_line = body[body.rfind(b"\n") + 1 :].decode("utf-8").rstrip("\r")
    if '"' in last_line:  # a quoted field may span lines: parse the whole file to find the last record
        records = [r for r in csv.reader(io.StringIO(data.decode("utf-8"))) if any(f.strip() for f in r)]
        last = records[-1]
    else:
        last = next(csv.reader([last_line]))
    if len(last) < len(header):
        raise BatchReadError(
            f"{source}: truncated file: the last row has {len(last)} of {len(header)} fields "
            f"(starts {last_line[:40]!r}); re-upload the complete file"
        )


def read_batch(data: bytes, file_format: str, source: str) -> pd.DataFrame:
    """Parse a raw batch; raise :class:`BatchReadError` naming ``source`` for anything unusable."""
    if not data or not data.strip():
        raise BatchReadError(f"{source}: file is empty ({len(data)} bytes)")
    if file_format == "csv":
        try:
            _check_csv_complete(data, source)
            # index_col=False: rows longer than the header must not silently become an index.
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(io.BytesIO(data), index_col=False, float_precision="round_trip")
        except BatchReadError:
            raise
        except UnicodeDecodeError as exc:
            raise BatchReadError(
                f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); is it really CSV?"
            ) from exc
        except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError, csv.Error) as exc:
            raise BatchReadError(f"{source}: unreadable CSV: {exc}".rstrip()) from exc
    elif file_format == "parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise BatchReadError(f"{source}: unreadable parquet ({type(exc).__name__}: {exc})") from exc
    else:
        raise BatchReadError(f"{source}: unsupported file format '{file_format}'; use 'csv' or 'parquet'")
    if frame.empty:
        raise BatchReadError(f"{source}: no data rows (columns: {list(frame.columns)})")
    return frame
