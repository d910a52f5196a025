"""Customer files in: CSV (any delimiter, UTF-8 or Latin-1), Parquet, JSON Lines.

The delimiter is sniffed from the first 64 KiB among `,;\t|` (a space-aligned text file is read
on whitespace); the encoding is UTF-8 (with or without BOM) or, failing that, Latin-1, which
decodes any byte. Text is kept as written: codes such as zero-padded ids stay text, "NULL" or
"NA" are not turned into missing values here (the schema reads and reports placeholders), and
only a column whose every value is a plain number becomes numbers. A first row that looks like
data (its cells are values of their columns) is data: the fields are then named column_1,
column_2, ... (`header` forces either reading). Rows with no value in any field (the blank
rows a spreadsheet writes after the data) and columns with neither a name nor a value are
skipped. What was skipped or assumed is said in `CustomerFile.notes`.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segmentation.errors import InvalidInputError, Problem

__all__ = [
    "FILE_KINDS",
    "CustomerFile",
    "check_customer_file",
    "detect_kind",
    "read_customer_file",
    "read_customers",
]

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


@dataclass(frozen=True)
class CustomerFile:
    """A file's customers, one row each, and what reading them skipped or assumed."""

    frame: pd.DataFrame
    notes: tuple[str, ...] = ()


# lines of the sample the delimiter is judged on, and the share that must agree on a count
DELIMITER_LINES = 200
DELIMITER_AGREEMENT = 0.9


@dataclass(frozen=True)
class _Layout:
    """How a text file is laid out: its delimiter (None: aligned on whitespace), the
    preamble lines before the header (`sep=;`, `# comments`), and the fields of its widest
    usual line (a header one field short of rows that end in a delimiter is padded)."""

    delimiter: str | None
    skip: int = 0
    width: int | None = None


PREAMBLE = re.compile(r"^(sep=.|#.*)$")


def _layout(sample: str) -> _Layout:
    """The delimiter that splits the sample's lines into the most fields, the same number on
    nearly every line (quotes respected): ";" beats "," in a European export whose decimal
    commas split some values, whatever the sniffer's guess."""
    lines = [line for line in sample.splitlines()[:-1] or sample.splitlines() if line.strip()]
    skip = 0
    while skip < len(lines) and PREAMBLE.match(lines[skip].strip()):
        skip += 1
    hinted = lines[0].strip()[4:] if skip and lines[0].strip().startswith("sep=") else None
    lines = lines[skip : skip + DELIMITER_LINES]
    best: tuple[int, str] | None = None
    for delimiter in [hinted] if hinted else DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts:
            continue
        fields, agreeing = Counter(counts).most_common(1)[0]
        agreed = fields > 1 and agreeing >= DELIMITER_AGREEMENT * len(counts)
        if agreed and (best is None or fields > best[0]):
            header = len(next(csv.reader(lines[:1], delimiter=delimiter)))
            best = (max(fields, header), delimiter)
    if best is not None:
        return _Layout(best[1], skip, best[0])
    return _Layout(_sniffed(sample), skip)


def _sniffed(sample: str) -> str | None:
    """csv's sniffer, for files no delimiter splits evenly; None for a whitespace-aligned
    text file."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # the sniffer gives up on ragged rows: take the header's most frequent delimiter, so
        # that the ragged row is reported instead of one wide column read
        header = sample.splitlines()[0] if sample else ""
        counts_in_header = {d: header.count(d) for d in DELIMITERS}
        most = max(counts_in_header, key=lambda d: counts_in_header[d])
        return most if counts_in_header[most] else None


RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parser_problem(error: Exception) -> Problem:
    """pandas' tokenizer error in the caller's words."""
    ragged = RAGGED.search(str(error))
    if ragged:
        expected, line, saw = ragged.groups()
        return Problem(
            f"line {line} has {saw} fields where the file's rows have {expected}: a delimiter "
            "too many, or a value that holds the delimiter without quotes",
            field="file",
        )
    return Problem(f"the CSV file cannot be read: {error}", field="file")


GENERIC_FIELD = "column_{}"
HEADER_PROBE_ROWS = 200
NUMBER_CELL = r"^\s*[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?\s*$"


def first_row_is_data(probe: pd.DataFrame) -> bool:
    """Whether a file's first row (of `probe`, read without a header) holds data rather than
    field names: most of its cells are values of their own column, or numbers in a column of
    numbers. Field names are neither ("Age" is no age)."""
    if len(probe) < 2:
        return False
    first, rest = probe.iloc[0], probe.iloc[1:]
    looks_like_data = 0
    for position in range(probe.shape[1]):
        cell, column = first.iloc[position], rest.iloc[:, position].dropna()
        if not isinstance(cell, str) or not cell.strip() or column.empty:
            continue
        numbers = column.str.match(NUMBER_CELL)
        if cell.strip() in set(column.str.strip()) or (
            re.match(NUMBER_CELL, cell) and numbers.mean() >= 0.9
        ):
            looks_like_data += 1
    return looks_like_data >= max(1, (probe.shape[1] + 1) // 2)


def _names(header: pd.Series) -> list[str]:
    """Field names from a header row: a blank name becomes `Unnamed: i` and a repeated one
    gets `.1`, `.2`, as pandas names them."""
    names: list[str] = []
    for position, value in enumerate(header):
        name = value if isinstance(value, str) and value.strip() else f"Unnamed: {position}"
        base, count = name, 1
        while name in names:
            name, count = f"{base}.{count}", count + 1
        names.append(name)
    return names


def _without_blanks(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame without rows that hold no value in any field and without columns that have
    neither a name nor a value, and a note of each."""
    notes = []
    empty_columns = [
        c for c in frame.columns if str(c).startswith("Unnamed: ") and _is_blank(frame[c]).all()
    ]
    if empty_columns:
        frame = frame.drop(columns=empty_columns)
        notes.append(
            f"{len(empty_columns)} {'column' if len(empty_columns) == 1 else 'columns'} with "
            "neither a name nor a value skipped"
        )
    if frame.shape[1] == 0:
        return frame, notes
    # a blank row is blank in its first field: only those rows are looked at field by field
    candidates = np.flatnonzero(_is_blank(frame.iloc[:, 0]).to_numpy())
    if len(candidates):
        part = frame.iloc[candidates]
        blank = np.logical_and.reduce([_is_blank(part[c]).to_numpy() for c in part.columns])
        rows = candidates[blank]
        if len(rows):
            trailing = bool(rows[-1] == len(frame) - 1 and len(rows) == rows[-1] - rows[0] + 1)
            where = " at the end of the file" if trailing else ""
            notes.append(
                f"{len(rows):,} {'row' if len(rows) == 1 else 'rows'} with no value in any "
                f"field skipped{where}"
            )
            frame = frame.drop(index=frame.index[rows]).reset_index(drop=True)
    return frame, notes


def _is_blank(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.isna()
    return column.isna() | column.astype(str).str.strip().eq("")


# beyond this a float no longer holds every whole number: such values stay text (an id of
# 20 digits is compared as written, never rounded or wrapped around)
EXACT_FLOAT = 2.0**53


def _numbers_unless_codes(column: pd.Series) -> pd.Series:
    """A text column as numbers when every value is one (finite, and exact as a float) and
    none is zero-padded."""
    present = column.dropna()
    if present.empty or present.str.match(r"^[+-]?0\d").any():
        return column
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any() or not (numbers.abs() < EXACT_FLOAT).all():
        return column
    converted = pd.to_numeric(column, errors="coerce")
    integral = bool((numbers % 1 == 0).all()) and not column.isna().any()
    return converted.astype("int64") if integral else converted


def _read_csv(path: Path, rows: int | None = None, header: bool | None = None) -> CustomerFile:
    compression, opener = _compression(path)
    encoding = _encoding(path, opener)
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        sample = handle.read(SNIFF_BYTES)
    layout = _layout(sample)
    read: dict[str, Any] = dict(
        sep=layout.delimiter or r"\s+", encoding=encoding, compression=compression,  # by content
        # as text, as written: pandas' own inference would turn the code "0001" into 1, and
        # its missing-value words would hide placeholders such as "NULL" from the report
        dtype=str, keep_default_na=False, na_values=[""], header=None, skiprows=layout.skip,
        names=None if layout.width is None else list(range(layout.width)),
    )  # fmt: skip
    notes = []
    try:
        if header is None:
            header = not first_row_is_data(pd.read_csv(path, nrows=HEADER_PROBE_ROWS, **read))
            if not header:
                notes.append(
                    "the first row looks like data, not field names: the fields are named "
                    "column_1, column_2, ... (header: true reads it as names)"
                )
        frame = pd.read_csv(path, nrows=None if rows is None else rows + 1, **read)
    except pd.errors.ParserError as error:
        raise InvalidInputError(_parser_problem(error)) from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(Problem("the file holds no rows", field="file")) from None
    if header:
        frame.columns = _names(frame.iloc[0])
        frame = frame.iloc[1:].reset_index(drop=True)
    else:
        frame.columns = [GENERIC_FIELD.format(i + 1) for i in range(frame.shape[1])]
    if rows is not None:
        frame = frame.head(rows)
    frame, skipped = _without_blanks(frame)
    return CustomerFile(frame.apply(_numbers_unless_codes), (*notes, *skipped))


# Parquet column types a customer field can have; lists, structs, binary and decimals cannot
# be compared or echoed as JSON
SCALAR_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string,
                pa.types.is_large_string, pa.types.is_boolean, pa.types.is_timestamp,
                pa.types.is_date, pa.types.is_dictionary, pa.types.is_null)  # fmt: skip
CHECK_ROWS = 1000


def read_customer_file(
    path: Path, kind: str, rows: int | None = None, header: bool | None = None
) -> CustomerFile:
    """One row per customer from a file (the first `rows` only, if given) and what reading
    it noted; `header` (CSV only): whether the first row names the fields (None: detected).
    InvalidInputError names what is wrong."""
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            return CustomerFile(frame if rows is None else frame.head(rows))
        if kind == "jsonl":
            return CustomerFile(pd.read_json(path, lines=True, dtype=False, nrows=rows))
    except (ValueError, TypeError, AttributeError) as error:  # pandas' JSON reader raises all
        raise InvalidInputError(
            Problem(f"the {kind} file cannot be read: {error}", field="file")
        ) from None
    return _read_csv(path, rows, header)


def read_customers(
    path: Path, kind: str, rows: int | None = None, header: bool | None = None
) -> pd.DataFrame:
    """`read_customer_file`'s customers alone."""
    return read_customer_file(path, kind, rows, header).frame


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
