"""Customer files in: CSV (any delimiter, UTF-8 or Latin-1), Parquet, JSON Lines.

The delimiter is sniffed from the first 64 KiB among `,;\t|` (a space-aligned text file is read
on whitespace); the encoding is UTF-8 (with or without BOM) or, failing that, Latin-1, which
decodes any byte. Codes such as zero-padded ids are kept as text: only pandas' own inference
turns columns into numbers, never a guess of ours.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segmentation.errors import InvalidInputError, Problem

__all__ = ["FILE_KINDS", "check_customer_file", "detect_kind", "read_customers"]

FILE_KINDS = ("csv", "parquet", "jsonl")
SNIFF_BYTES = 65_536
DELIMITERS = ",;\t|"
PARQUET_MAGIC = b"PAR1"


# compressed text files are read through the matching decompressor, found by content
Compression = Literal["xz", "gzip", "bz2"]
COMPRESSION_MAGIC: dict[bytes, tuple[Compression, Callable[..., IO[Any]]]] = {
    b"\xfd7zXZ\x00": ("xz", lzma.open), b"\x1f\x8b": ("gzip", gzip.open),
    b"BZh": ("bz2", bz2.open),
}  # fmt: skip


def _compression(path: Path) -> tuple[Compression | None, Callable[..., IO[Any]]]:
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, (name, opener) in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name, opener
    return None, open


def detect_kind(head: bytes, filename: str) -> str:
    """csv, parquet or jsonl from the first bytes (and the name only to break ties); a
    compressed file (xz, gzip, bz2) is taken for compressed CSV."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if any(head.startswith(magic) for magic in COMPRESSION_MAGIC):
        return "csv"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "jsonl"
    if not text:
        raise InvalidInputError(Problem("the file is empty", field="file"))
    if b"\x00" in head[:4096]:
        raise InvalidInputError(
            Problem(
                f"{filename!r} is neither CSV, Parquet nor JSON Lines (binary content)",
                field="file",
            )
        )
    return "csv"


def _encoding(path: Path, opener: Callable[..., IO[Any]]) -> str:
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            while handle.read(1 << 20):
                pass
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "latin-1"


def _read_csv(path: Path, rows: int | None = None) -> pd.DataFrame:
    compression, opener = _compression(path)
    encoding = _encoding(path, opener)
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        sample = handle.read(SNIFF_BYTES)
    try:
        delimiter: str | None = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # the sniffer gives up on ragged rows: take the header's most frequent delimiter, so
        # that pandas reports the ragged row instead of reading one wide column
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        delimiter = best if counts[best] else None  # None: whitespace-aligned text
    try:
        # as text first: pandas' own number inference would turn the code "0001" into 1
        frame = pd.read_csv(
            path, sep=delimiter or r"\s+", encoding=encoding, dtype=str, nrows=rows,
            compression=compression,  # by content: an upload is staged as .csv
        )  # fmt: skip
        return frame.apply(_numbers_unless_codes)
    except pd.errors.ParserError as error:
        raise InvalidInputError(
            Problem(f"the CSV file cannot be read: {error}", field="file")
        ) from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(Problem("the file holds no rows", field="file")) from None


def _numbers_unless_codes(column: pd.Series) -> pd.Series:
    """A text column as numbers when every value is one and none is zero-padded."""
    present = column.dropna()
    if present.empty or present.str.match(r"^[+-]?0\d").any():
        return column
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return column
    converted = pd.to_numeric(column, errors="coerce")
    integral = bool((numbers % 1 == 0).all()) and not column.isna().any()
    return converted.astype("int64") if integral else converted


# Parquet column types a customer field can have; lists, structs, binary and decimals cannot
# be compared or echoed as JSON
SCALAR_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string,
                pa.types.is_large_string, pa.types.is_boolean, pa.types.is_timestamp,
                pa.types.is_date, pa.types.is_dictionary, pa.types.is_null)  # fmt: skip
CHECK_ROWS = 1000


def read_customers(path: Path, kind: str, rows: int | None = None) -> pd.DataFrame:
    """One row per customer from a stored upload (the first `rows` only, if given);
    InvalidInputError names what is wrong."""
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            return frame if rows is None else frame.head(rows)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, nrows=rows)
    except (ValueError, TypeError, AttributeError) as error:  # pandas' JSON reader raises all
        raise InvalidInputError(
            Problem(f"the {kind} file cannot be read: {error}", field="file")
        ) from None
    return _read_csv(path, rows)


def check_customer_file(path: Path, kind: str) -> None:
    """Cheap checks when a file arrives: the Parquet schema, or the first rows of text."""
    if kind == "parquet":
        try:
            schema = pq.read_schema(path)
            rows = pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError) as error:
            raise InvalidInputError(
                Problem(f"the parquet file cannot be read: {error}", field="file")
            ) from None
        problems = [
            Problem(
                f"column {field.name!r} holds {field.type} values, which cannot be segmented "
                "or echoed as JSON; flatten or drop it",
                field="file",
            )
            for field in schema
            if not any(is_type(field.type) for is_type in SCALAR_TYPES)
        ]
        if problems:
            raise InvalidInputError(problems)
    else:
        rows = len(read_customers(path, kind, CHECK_ROWS))
    if rows == 0:
        raise InvalidInputError(Problem("the file holds no customers", field="file"))
