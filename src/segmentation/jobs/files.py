"""Customer files in: CSV (any delimiter, UTF-8 or Latin-1), Parquet, JSON Lines.

The delimiter is sniffed from the first 64 KiB among `,;\t|` (a space-aligned text file is read
on whitespace); the encoding is UTF-8 (with or without BOM) or, failing that, Latin-1, which
decodes any byte. Codes such as zero-padded ids are kept as text: only pandas' own inference
turns columns into numbers, never a guess of ours.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from segmentation.errors import InvalidInputError, Problem

__all__ = ["FILE_KINDS", "detect_kind", "read_customers"]

FILE_KINDS = ("csv", "parquet", "jsonl")
SNIFF_BYTES = 65_536
DELIMITERS = ",;\t|"
PARQUET_MAGIC = b"PAR1"


def detect_kind(head: bytes, filename: str) -> str:
    """csv, parquet or jsonl from the first bytes (and the name only to break ties)."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
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


def _encoding(path: Path) -> str:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            while handle.read(1 << 20):
                pass
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "latin-1"


def _read_csv(path: Path) -> pd.DataFrame:
    encoding = _encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
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
        frame = pd.read_csv(path, sep=delimiter or r"\s+", encoding=encoding, dtype=str)
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


def read_customers(path: Path, kind: str) -> pd.DataFrame:
    """One row per customer from a stored upload; InvalidInputError names what is wrong."""
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
    except ValueError as error:
        raise InvalidInputError(
            Problem(f"the {kind} file cannot be read: {error}", field="file")
        ) from None
    return _read_csv(path)
