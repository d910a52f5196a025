"""Messy customer files never end in a traceback: a result, or a clear message naming the field.

Hypothesis generates small customer tables (30-120 rows, 3-8 columns) the way they arrive from
spreadsheets and exports: numbers written as text (thousands separators, decimal commas,
currency symbols, percent signs, surrounding whitespace, blank " " cells, "inf", "1e400", 25
digits), integer columns with a stray word, text columns with a stray number (`0` among words
once crashed pipeline/features.py), levels that differ only by case or whitespace ("Yes",
"yes ", " YES"), placeholder codes ("?", "N/A", "unknown", "-", "NULL", 999, 0), income and age
bands, nearly-empty columns, id-like columns (some beyond 64 bits), t/f and Y/N flags, dates in
several formats, awkward text (quotes, line breaks, delimiters inside cells), column names with
spaces, unicode and duplicates after stripping; written with a `,`, `;` or tab delimiter,
sometimes with a BOM, CRLF line ends, Latin-1 bytes, every cell quoted, a delimiter ending every
data row, trailing blank rows (",,,,") or no header row.

Each table goes through

- the installed command, `segmentation analyze FILE --out DIR --quiet`: exit 0 with every row
  assigned exactly once (and each row's id as the file writes it), or exit 2 with a short
  message naming a field, a record or the file;
- a real uvicorn server (the session's, tests/e2e/conftest.py): POST /api/analyze with the
  rows as JSON records (the CSV's text, or with plain numbers as JSON numbers), a 200 with
  every customer in exactly one cluster or a 4xx in the service's error format naming the
  problem; and the CSV file uploaded to POST /api/jobs, a job that succeeds with every row in
  a cluster, or fails with a reason that is not an "internal error".

Never exit 1, never "Traceback", never a 5xx. A refusal that quotes a value quotes the one in
that record as written, and never calls a column of distinct values a duplicate id.

A failure raises an AssertionError subclass named after the crash (exception type and raising
function, as `Crash[analyze 500 ValueError in search.py:__init__]`), so that hypothesis reports
each kind of crash separately; the message holds the file as written, and the file (and JSON
body) is kept in MESSY_FAILURES_DIR (default: <tmp>/messy-failures) to reproduce it by hand.
The tables that once went wrong are checked on every run (PINNED, at the end).

Derandomized (the same examples on every run), FUZZ_SCALE times 15 CLI and 40 HTTP examples,
no shrinking unless MESSY_SHRINK=1 (it reruns the command and the server for every smaller
table: minutes per kind of crash): about two minutes on two cores. Hypothesis stops generating
at the first failure and finds further kinds of crash while shrinking: a failing run reports
the first crash of each property and every pinned table that still goes wrong.
`--hypothesis-show-statistics` counts the kinds of answers seen.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import REQUEST_TIMEOUT, all_customers, assert_error
from tests.e2e.test_cli import run

pytestmark = pytest.mark.slow

# FUZZ_SCALE multiplies the examples, as for the schemathesis suite (test_openapi_fuzz.py)
FUZZ_SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
CLI_EXAMPLES = 10 * FUZZ_SCALE
HTTP_EXAMPLES = 25 * FUZZ_SCALE
# Shrinking runs every smaller table through the command or the server again: minutes for
# each kind of crash. Off unless MESSY_SHRINK=1; a failure shows (and keeps) its first table.
SHRINK = os.environ.get("MESSY_SHRINK") == "1"
JOB_TIMEOUT = 180.0


def _settings(max_examples: int) -> settings:
    phases = tuple(p for p in Phase if SHRINK or p is not Phase.shrink)
    return settings(
        phases=phases,
        derandomize=True,  # the same examples on every run and every machine
        max_examples=max_examples,
        deadline=None,  # a real process per example on two shared cores
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A customer table as text cells ("" is an empty cell) and how its file is written."""

    names: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    delimiter: str = ","
    bom: bool = False
    crlf: bool = False
    blank_rows: int = 0  # trailing rows of delimiters only: ",,,,"
    header: bool = True
    latin1: bool = False  # Latin-1 bytes (characters it lacks written as "?"), not UTF-8
    quote_all: bool = False  # every cell in quotes, numbers too
    trailing_delimiter: bool = False  # every data row (not the header) ends in a delimiter
    kinds: tuple[str, ...] = ()  # what generated each column, for the failure message

    def content(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(
            buffer,
            delimiter=self.delimiter,
            lineterminator="\r\n" if self.crlf else "\n",
            quoting=csv.QUOTE_ALL if self.quote_all else csv.QUOTE_MINIMAL,
        )
        if self.header:
            writer.writerow(self.names)
        writer.writerows([*row, ""] if self.trailing_delimiter else row for row in self.rows)
        for _ in range(self.blank_rows):
            buffer.write(self.delimiter * (len(self.names) - 1) + ("\r\n" if self.crlf else "\n"))
        if self.latin1:
            return buffer.getvalue().encode("latin-1", errors="replace")
        return ("\ufeff" if self.bom else "").encode() + buffer.getvalue().encode()

    def row_bounds(self) -> tuple[int, int]:
        """How many customers the file holds: at least the rows with a visible value, at most
        every row, trailing blank rows included (whether ",,,," is a customer is not ours to
        say); without a header row the first row may be taken for one, or seen not to be."""
        visible = sum(any(cell.strip() for cell in row) for row in self.rows)
        every = len(self.rows) + self.blank_rows
        return (visible if self.header else max(visible - 1, 0)), every

    def records(self, typed: bool) -> list[dict[str, Any]]:
        """The rows as JSON customers: the CSV's text, or (typed) plain numbers as numbers and
        empty cells absent, as a JSON client would send them."""
        records = []
        for row in self.rows:
            record: dict[str, Any] = {}
            for name, cell in zip(self.names, row, strict=True):
                if not typed:
                    record[name] = cell
                elif cell != "":
                    record[name] = _json_number(cell)
            records.append(record)
        return records

    def distinct_columns(self) -> set[str]:
        """Names of the columns generated with a different value in every row (each name
        used once): a "duplicate id" in one of them is a false alarm."""
        if not self.header or self.latin1:  # the file's names are not these
            return set()
        return {
            name
            for name, kind in zip(self.names, self.kinds, strict=False)
            if kind in DISTINCT_KINDS and self.names.count(name) == 1
        }

    def describe(self) -> str:
        text = self.content().decode("latin-1" if self.latin1 else "utf-8", errors="replace")
        lines = [line if len(line) < 300 else line[:300] + "..." for line in text.splitlines()]
        text = "\n".join(lines[:150]) + ("\n...\n" if len(lines) > 150 else "\n")
        layout = (
            f"delimiter={self.delimiter!r} bom={self.bom} crlf={self.crlf} "
            f"blank_rows={self.blank_rows} header={self.header} latin1={self.latin1} "
            f"quote_all={self.quote_all} trailing_delimiter={self.trailing_delimiter} "
            f"kinds={list(self.kinds)}"
        )
        return f"{layout}\n--- the file ---\n{text}--- end of file ---"


PLAIN_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?")


def _json_number(cell: str) -> Any:
    if PLAIN_NUMBER.fullmatch(cell):
        return float(cell) if "." in cell else int(cell)
    return cell


# Column generators: (random, rows, variant) -> cells. The variant picks a style within a kind.
Cells = list[str]
Generator = Callable[[random.Random, int, int], Cells]

WORDS = ["red", "green", "blue", "gold", "silver", "basic", "premium"]
STRAY_WORDS = ["abc", "none", "twelve", "n/a", "see notes", "TBD"]
PLACEHOLDERS = ["?", "N/A", "unknown", "-", "NULL", "999", "0", "", " ", "NaN", "none", "n/a"]


def _blank_some(rng: random.Random, cells: Cells, rate: float) -> Cells:
    return [rng.choice(["", " ", "  "]) if rng.random() < rate else c for c in cells]


def _formatted_numbers(rng: random.Random, n: int, variant: int) -> Cells:
    styles: list[Callable[[float], str]] = [
        lambda v: f"{v:,.0f}",  # 12,345
        lambda v: f"{v:.2f}".replace(".", ","),  # 12345,67
        lambda v: f"${v:,.2f}",  # $12,345.67
        lambda v: f"{v:,.2f} €".replace(",", " ").replace(".", ",").replace(" ", "."),
        lambda v: f"{v / 1000:.1f}%",  # 12.3%
        lambda v: f"  {v:.0f} ",  # surrounding whitespace
        lambda v: f"£{v:.0f}",
    ]
    values = [rng.uniform(500, 150_000) for _ in range(n)]
    if variant < len(styles):
        cells = [styles[variant](v) for v in values]
    else:  # every cell its own style
        cells = [rng.choice(styles)(v) for v in values]
    return _blank_some(rng, cells, rng.choice([0.0, 0.05, 0.2]))


def _integers_with_a_stray_word(rng: random.Random, n: int, variant: int) -> Cells:
    cells = [str(rng.randint(18, 90)) for _ in range(n)]
    for index in rng.sample(range(n), 1 + variant % 3):
        cells[index] = rng.choice(STRAY_WORDS)
    return cells


def _words_with_a_stray_number(rng: random.Random, n: int, variant: int) -> Cells:
    cells = [rng.choice(WORDS[: 2 + variant % 5]) for _ in range(n)]
    for index in rng.sample(range(n), 1 + variant % 3):
        cells[index] = rng.choice(["0", "0", "12", "3.5", "-1"])
    return cells


def _case_and_whitespace_levels(rng: random.Random, n: int, variant: int) -> Cells:
    levels = [
        ["Yes", "yes ", " YES", "no", "No ", "NO"],
        ["Male", "male", " FEMALE", "Female ", "female"],
        ["North", "north ", " NORTH", "South", "south", "East"],
        ["Gold", "gold", "GOLD ", " Silver", "silver"],
    ][variant % 4]
    return _blank_some(rng, [rng.choice(levels) for _ in range(n)], 0.05 * (variant % 2))


def _placeholders(rng: random.Random, n: int, variant: int) -> Cells:
    rate = [0.1, 0.3, 0.6][variant % 3]
    if variant % 2:  # among numbers
        cells = [str(rng.randint(1, 500)) for _ in range(n)]
    else:  # among words
        cells = [rng.choice(WORDS[:4]) for _ in range(n)]
    return [rng.choice(PLACEHOLDERS) if rng.random() < rate else c for c in cells]


INCOME_BANDS = [
    "Under $20,000", "$20,000 - $29,999", "$30,000 - $39,999", "$40,000 - $59,999",
    "$60,000 - $99,999", "$100,000+",
]  # fmt: skip
AGE_BANDS = ["18-24", "25-29", "30-34", "35-44", "45-54", "55-64", "65+"]


def _bands(rng: random.Random, n: int, variant: int) -> Cells:
    bands = INCOME_BANDS if variant % 2 else AGE_BANDS
    cells = [rng.choice(bands) for _ in range(n)]
    if variant % 3 == 2:
        cells = [rng.choice(["Unknown", "?", ""]) if rng.random() < 0.1 else c for c in cells]
    return cells


def _nearly_empty(rng: random.Random, n: int, variant: int) -> Cells:
    cells = [rng.choice(["", " "]) if variant % 2 else "" for _ in range(n)]
    filler = [lambda: str(rng.randint(1, 9)), lambda: rng.choice(WORDS), lambda: "0"]
    for index in rng.sample(range(n), variant % 3):
        cells[index] = filler[variant % 3]()
    return cells


def _id_like(rng: random.Random, n: int, variant: int) -> Cells:
    numbers = rng.sample(range(1, 100_000), n)
    spellings: list[Callable[[int], str]] = [
        str,  # distinct integers
        lambda i: f"{i:06d}",  # zero-padded
        lambda i: f"C-{i:05d}",
        lambda i: f" {i} ",
    ]
    return [spellings[variant % len(spellings)](i) for i in numbers]


def _big_integers(rng: random.Random, n: int, variant: int) -> Cells:
    """Account and card numbers: distinct, some beyond what 64 bits hold."""
    if variant % 3 == 0:
        return [str(2**64 + i) for i in rng.sample(range(1, 10**6), n)]
    if variant % 3 == 1:
        return [str(10**19 + i) for i in rng.sample(range(9 * 10**18), n)]
    return [str(i) for i in rng.sample(range(4 * 10**15, 5 * 10**15), n)]


# digits as East Asian text writes them (U+FF10..U+FF19), built so that the source stays ASCII
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


UNUSUAL = ["inf", "-inf", "Infinity", "NaN", "1e400", "1e300", "-1e250", "-0", "9" * 25, "?"]


def _unusual_numbers(rng: random.Random, n: int, variant: int) -> Cells:
    styles: list[Callable[[float], str]] = [
        lambda v: f"{v:.3e}",  # 1.234e+04
        lambda v: f"({v:,.0f})" if v > 5000 else f"{v:.0f}",  # accounting negatives
        lambda v: f"{v:.0f}-" if v > 5000 else f"{v:.0f}",  # trailing minus
        lambda v: f"{v:,.0f}".replace(",", "\u00a0"),  # non-breaking space thousands
        lambda v: f"{v:.0f}".translate(FULL_WIDTH),  # full-width digits
        lambda v: rng.choice(UNUSUAL) if v < 2000 else f"{v:.1f}",
        lambda v: f"+{v:.0f}",
    ]
    values = [rng.uniform(0, 20_000) for _ in range(n)]
    if variant < len(styles):
        return [styles[variant](v) for v in values]
    if variant == 9:  # round amounts, one of them infinite and one a placeholder
        cells = [str(round(v, -3)) for v in values]
        infinite, placeholder = rng.sample(range(n), 2)
        cells[infinite] = rng.choice(["inf", "-inf", "1e400"])
        cells[placeholder] = rng.choice(["N/A", "?", "unknown"])
        return cells
    return [rng.choice(styles)(v) for v in values]


AWKWARD = [
    'say "hi"', "two\nlines", "a,b;c\td", "=SUM(A1:A9)", "'007", "🙂 emoji", "x" * 120,
    "\u00a0nbsp\u00a0", "tab\tinside", "back\\slash",
]  # fmt: skip


def _awkward_text(rng: random.Random, n: int, variant: int) -> Cells:
    levels = rng.sample(AWKWARD, 2 + variant % 4)
    return [rng.choice(levels) for _ in range(n)]


def _booleans(rng: random.Random, n: int, variant: int) -> Cells:
    pairs = [("t", "f"), ("Y", "N"), ("TRUE", "FALSE"), ("True", "false"), ("yes", "No")]
    pair = pairs[variant % len(pairs)]
    return _blank_some(rng, [rng.choice(pair) for _ in range(n)], 0.05 * (variant % 2))


DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%b-%Y", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y"]


def _dates(rng: random.Random, n: int, variant: int) -> Cells:
    start = date(2015, 1, 1)
    days = [start + timedelta(days=rng.randint(0, 3000)) for _ in range(n)]
    if variant < len(DATE_FORMATS):
        cells = [d.strftime(DATE_FORMATS[variant]) for d in days]
    else:  # two formats in one column
        cells = [d.strftime(rng.choice(DATE_FORMATS[:2])) for d in days]
    return _blank_some(rng, cells, 0.03)


def _clean_numbers(rng: random.Random, n: int, variant: int) -> Cells:
    if variant % 2:
        return [f"{rng.gauss(50, 20):.2f}" for _ in range(n)]
    return [str(rng.randint(0, 100)) for _ in range(n)]


def _constant(rng: random.Random, n: int, variant: int) -> Cells:
    return [["1", "yes", "Active", " "][variant % 4]] * n


def _free_text(rng: random.Random, n: int, variant: int) -> Cells:
    return [f"called on day {i}, left a message" for i in range(n)]


def _numbers_and_words(rng: random.Random, n: int, variant: int) -> Cells:
    return [str(rng.randint(0, 99)) if rng.random() < 0.5 else rng.choice(WORDS) for _ in range(n)]


# the simplest first: hypothesis shrinks towards it
KINDS: dict[str, Generator] = {
    "clean numbers": _clean_numbers,
    "formatted numbers": _formatted_numbers,
    "integers with a stray word": _integers_with_a_stray_word,
    "words with a stray number": _words_with_a_stray_number,
    "case and whitespace levels": _case_and_whitespace_levels,
    "placeholders": _placeholders,
    "bands": _bands,
    "nearly empty": _nearly_empty,
    "id-like": _id_like,
    "booleans": _booleans,
    "dates": _dates,
    "constant": _constant,
    "free text": _free_text,
    "numbers and words": _numbers_and_words,
    "big integers": _big_integers,
    "unusual numbers": _unusual_numbers,
    "awkward text": _awkward_text,
}
DISTINCT_KINDS = {"id-like", "big integers", "free text"}

# names with spaces, trailing spaces, unicode, and pairs equal after stripping or casefolding;
# the names of ids go to id-like columns, and now and then to another kind
ID_NAMES = ["id", "Customer ID", "customer_id ", " ID", "ID"]
NAMES = [
    "Age", "age", " AGE", "Income", "income ",
    "Annual Income (k$)", "Spend ($)", "Région", "名前", "Ünïcødé", "gender", "Gender ",
    "member", "Signup Date", "score", "Score", "", "notes", "band", "a;b", "x\ty",
]  # fmt: skip


@st.composite
def messy_tables(draw: st.DrawFn) -> Table:
    n = draw(st.integers(30, 120), label="rows")
    kinds = draw(st.lists(st.sampled_from(list(KINDS)), min_size=3, max_size=8), label="kinds")
    names = draw(
        st.lists(st.sampled_from(NAMES), min_size=len(kinds), max_size=len(kinds), unique=True)
    )

    def id_name() -> str:
        return draw(st.sampled_from([name for name in ID_NAMES if name not in names]))

    for index, kind in enumerate(kinds):
        if kind in DISTINCT_KINDS and draw(st.integers(0, 3)) > 0:
            names[index] = id_name()
    # the flags below are set by the last value of a range, so that shrinking clears them
    if draw(st.integers(0, 9)) == 9:  # a column called id that holds anything
        names[0] = id_name()
    if draw(st.integers(0, 9)) == 9:  # two columns of exactly the same name
        names[-1] = names[0]
    variants = draw(st.lists(st.integers(0, 9), min_size=len(kinds), max_size=len(kinds)))
    # the cells themselves come from a seeded generator: hypothesis shrinks the structure (rows,
    # columns, kinds, layout), not each of up to 960 cells
    rng = random.Random(draw(st.integers(0, 2**32 - 1), label="seed"))
    columns = [KINDS[kind](rng, n, variant) for kind, variant in zip(kinds, variants, strict=True)]
    return Table(
        names=tuple(names),
        rows=tuple(zip(*columns, strict=True)),
        delimiter=draw(st.sampled_from([",", ";", "\t"])),
        bom=draw(st.booleans()),
        crlf=draw(st.booleans()),
        blank_rows=draw(st.sampled_from([0, 0, 1, 3])),
        header=draw(st.sampled_from([True, True, True, False])),
        latin1=draw(st.integers(0, 5)) == 5,
        quote_all=draw(st.integers(0, 5)) == 5,
        trailing_delimiter=draw(st.integers(0, 7)) == 7,
        kinds=tuple(kinds),
    )


# --- telling crashes apart ---------------------------------------------------------------------

_CRASH_TYPES: dict[str, type[AssertionError]] = {}
# where the file (and JSON body) of each kind of crash is kept: the last one seen (the smallest,
# when shrinking)
KEEP = Path(os.environ.get("MESSY_FAILURES_DIR", Path(tempfile.gettempdir()) / "messy-failures"))


def crash(kind: str, message: str, table: Table, body: bytes | None = None) -> AssertionError:
    """An AssertionError whose class is named after the crash: hypothesis tells failures apart
    by exception type and line, so each kind of crash is reported on its own. The
    file is kept in KEEP, for reproducing the crash by hand."""
    if kind not in _CRASH_TYPES:
        _CRASH_TYPES[kind] = type(f"Crash[{kind}]", (AssertionError,), {})
    KEEP.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w-]+", "-", kind).strip("-")
    (KEEP / f"{stem}.csv").write_bytes(table.content())
    if body is not None:
        (KEEP / f"{stem}.json").write_bytes(body)
    return _CRASH_TYPES[kind](f"{message}\n(kept in {KEEP / stem}.csv)")


FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
EXCEPTION_LINE = re.compile(r"^\s*(?P<type>[A-Za-z_][\w.]*(Error|Exception))\b", re.M)
CHAINED = re.compile(r"The above exception was|During handling of the above exception")


def traceback_origin(text: str, marker: str = "") -> str:
    """'ValueError in search.py:__init__': the root cause of the last error in `text` (after
    the last `marker`; a chained traceback shows its cause first), by its type and the
    innermost frame of this package."""
    block = text[max(text.rfind(marker), 0) if marker else 0 :]
    block = block[block.find("Traceback (most recent call last)") :]
    cause = CHAINED.split(block, maxsplit=1)[0]
    frames = list(FRAME.finditer(cause))
    ours = [f for f in frames if "/segmentation/" in f["file"]] or frames
    exception = EXCEPTION_LINE.search(cause, frames[-1].end() if frames else 0)
    kind = exception["type"].rsplit(".", 1)[-1] if exception else "unknown exception"
    where = f" in {Path(ours[-1]['file']).name}:{ours[-1]['function']}" if ours else ""
    return kind + where


def _server_log_tail(log_dir: Path) -> str:
    """The newest uvicorn log of the session's server (conftest's `base_url` writes it under
    the session's temporary folder): best effort, for the traceback of a 500."""
    logs = sorted(log_dir.glob("server*/uvicorn-*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text(errors="replace")[-20_000:] if logs else ""


def server_error(body: str, log_dir: Path) -> tuple[str, str]:
    """Where a 5xx came from ("ValueError in search.py:__init__", from the server's log
    when it holds the traceback) and the log's tail."""
    kind = re.search(r"internal error \((\w+)", body)
    log = _server_log_tail(log_dir)
    origin = kind[1] if kind else "?"
    if "Traceback" in log:
        origin = traceback_origin(log, "unexpected error on")
    return origin, log


def outcome(what: str) -> None:
    """Counted in hypothesis' statistics (--hypothesis-show-statistics); not in pinned tests."""
    if currently_in_test_context():
        event(what)


def gist(message: str) -> str:
    """A message without its records, fields and values: what kind of answer it was."""
    message = message.removeprefix("segmentation analyze: ")
    message = re.sub(r"record \d+(, field '[^']*')?: ", "", message)
    return re.sub(r"'[^']*'|\(.*|-?\d[\d.,e+]*", "_", message)[:70]


def names_something(message: str, table: Table, *extra: str) -> bool:
    """The message names a field of the table, a record, a line, the file or one of `extra`."""
    lowered = message.casefold()
    words = ("record", "field", "column", "line", "row", "file", *extra)
    fields = {name.strip().casefold() for name in table.names if name.strip()}
    return any(word.casefold() in lowered for word in words) or any(f in lowered for f in fields)


FALSE_DUPLICATE = re.compile(r"field '(?P<field>[^']*)': duplicate id")


def check_no_false_duplicate(message: str, table: Table, context: str) -> None:
    """A column written with a different value in every row is never refused for a duplicate
    id (integers beyond 64 bits once wrapped around to -9223372036854775808, all equal)."""
    for match in FALSE_DUPLICATE.finditer(message):
        if match["field"] in table.distinct_columns():
            raise crash(
                f"false duplicate id in {table.kinds[table.names.index(match['field'])]}",
                f"{match[0]} although every value differs\n{context}",
                table,
            )


QUOTED_VALUE = re.compile(
    r"record (?P<record>\d+), field '(?P<field>[^']*)': (duplicate id )?"
    r"(?P<value>(?:(?!; record \d).)+?)"
    r"(, also used by| is not finite or too large)"
)


def _same_value(quoted: str, cell: str) -> bool:
    value = quoted
    if quoted.endswith("..."):  # a long value, cut short: its start
        value = quoted[:-3].lstrip("'\"")
    elif quoted[:1] in "'\"" and quoted[-1:] == quoted[:1]:  # a Python repr, escapes and all
        try:
            value = str(ast.literal_eval(quoted))
        except (ValueError, SyntaxError):
            value = quoted[1:-1]
    if value.casefold() in cell.casefold():
        return True
    try:
        return float(value) == float(cell.strip())
    except ValueError:
        return False


def check_values_quoted_as_written(message: str, table: Table, context: str) -> None:
    """A value a refusal quotes is the one in that record and field, as written (not, say,
    -9223372036854775808 for an integer beyond 64 bits that wrapped around)."""
    if not table.header or table.latin1:
        return
    for match in QUOTED_VALUE.finditer(message):
        record, field = int(match["record"]), match["field"]
        if field not in table.names or table.names.count(field) > 1 or record >= len(table.rows):
            continue
        cell = table.rows[record][table.names.index(field)]
        if not _same_value(match["value"], cell):
            kind = table.kinds[table.names.index(field)]
            raise crash(
                f"value misquoted in {kind}",
                f"{match[0]!r} but record {record} holds {cell!r}\n{context}",
                table,
            )


def check_refusal(message: str, table: Table, context: str) -> None:
    check_no_false_duplicate(message, table, context)
    check_values_quoted_as_written(message, table, context)


# --- the command line --------------------------------------------------------------------------


def check_cli(table: Table) -> None:
    with tempfile.TemporaryDirectory(prefix="messy-") as folder:
        path = Path(folder) / "customers.csv"
        path.write_bytes(table.content())
        out = Path(folder) / "out"
        result = run("analyze", path, "--out", out, "--quiet")
        context = f"exit {result.returncode}\n--- stderr ---\n{result.stderr}\n{table.describe()}"
        if "Traceback" in result.stderr:
            raise crash(f"CLI {traceback_origin(result.stderr)}", context, table)
        if result.returncode != 0:
            errors = [
                line for line in result.stderr.splitlines() if "segmentation analyze:" in line
            ]
            if result.returncode != 2 or not errors:
                raise crash(f"CLI exit {result.returncode}", context, table)
            message = errors[-1]
            assert len(message) < 2000, f"a message of {len(message):,} characters\n{context}"
            assert names_something(message, table, str(path)), f"names nothing\n{context}"
            check_refusal(message, table, context)
            outcome(f"CLI exit 2: {gist(message)}")
            return
        outcome("CLI exit 0")
        analysis = json.loads((out / "analysis.json").read_text())
        assignments = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)
        low, high = table.row_bounds()
        assert low <= len(assignments) <= high, f"{len(assignments)} rows assigned\n{context}"
        assert assignments["index"].is_unique, context
        assert (assignments["clusterId"] != "").all(), context
        sizes = {str(c["clusterId"]): c["size"] for c in analysis["clusters"]}
        assert assignments["clusterId"].value_counts().to_dict() == sizes, context
        assert sum(sizes.values()) == len(assignments), context
        check_ids_as_written(assignments, table, context)


def check_ids_as_written(assignments: pd.DataFrame, table: Table, context: str) -> None:
    """The id beside each row index in assignments.csv is the one in that row of the file: no
    column was shifted or misread (pandas takes the first column for its index when the data
    rows hold one field more than the header)."""
    id_columns = list(assignments.columns[1:-4])  # index, [the id,] and the 4 result columns
    if not id_columns or not table.header or table.latin1:
        return
    name = id_columns[0]
    if table.names.count(name) != 1:
        return
    column = table.names.index(name)
    for index, written in zip(assignments["index"], assignments[name], strict=True):
        if int(index) >= len(table.rows):  # a trailing blank row, taken for a customer
            continue
        cell = table.rows[int(index)][column]
        if not _same_value(written, cell):
            raise crash(
                "ids not as written",
                f"row {index} of assignments.csv has {name} {written!r}, the file {cell!r}\n"
                f"{context}",
                table,
            )


@_settings(CLI_EXAMPLES)
@given(table=messy_tables())
def test_the_command_line_answers_every_messy_file(table: Table) -> None:
    check_cli(table)


# --- HTTP --------------------------------------------------------------------------------------


def check_analyze(base_url: str, log_dir: Path, table: Table, typed: bool) -> None:
    records = table.records(typed)
    body = json.dumps({"customerData": records}).encode()
    response = httpx.post(
        f"{base_url}/api/analyze",
        content=body,
        headers={"content-type": "application/json"},
        timeout=REQUEST_TIMEOUT,
    )
    context = (
        f"POST /api/analyze (typed={typed}): {response.status_code} {response.text[:2000]}\n"
        f"{table.describe()}"
    )
    if response.status_code >= 500:
        origin, log = server_error(response.text, log_dir)
        raise crash(
            f"analyze {response.status_code} {origin}",
            f"{context}\n--- server log ---\n{log[-8000:]}",
            table,
            body,
        )
    if response.status_code != 200:
        error = assert_error(response, response.status_code)
        assert 400 <= response.status_code < 500, context
        named = any(e["record"] is not None or e["field"] is not None for e in error["errors"])
        for e in error["errors"]:
            where = f"record {e['record']}, field {e['field']!r}"
            check_refusal(f"{where}: {e['message']}", table, context)
        assert named or names_something(error["detail"], table), f"names nothing\n{context}"
        outcome(f"analyze {response.status_code}: {gist(error['detail'])}")
        return
    outcome("analyze 200")
    payload = response.json()
    sent = sorted(json.dumps(r, ensure_ascii=False) for r in records)
    back = sorted(json.dumps(c, ensure_ascii=False) for c in all_customers(payload))
    assert back == sent, f"customers not each in exactly one cluster\n{context}"
    assert sum(c["size"] for c in payload["clusters"]) == len(records), context


def check_job(base_url: str, log_dir: Path, table: Table) -> None:
    upload = table.content()
    response = httpx.post(
        f"{base_url}/api/jobs",
        files={"file": ("customers.csv", upload, "text/csv")},
        data={"options": json.dumps({"includeCustomers": False})},
        timeout=REQUEST_TIMEOUT,
    )
    context = f"POST /api/jobs: {response.status_code} {response.text[:2000]}\n{table.describe()}"
    if response.status_code >= 500:
        origin, log = server_error(response.text, log_dir)
        raise crash(
            f"job upload {response.status_code} {origin}",
            f"{context}\n--- server log ---\n{log[-8000:]}",
            table,
        )
    if response.status_code != 202:  # the first rows are checked at once
        error = assert_error(response, response.status_code)
        assert names_something(error["detail"], table), f"names nothing\n{context}"
        outcome(f"job upload {response.status_code}: {gist(error['detail'])}")
        return
    job_id = response.json()["jobId"]
    deadline = time.monotonic() + JOB_TIMEOUT
    job = response.json()
    while job["status"] not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, f"job {job_id} still {job}\n{context}"
        time.sleep(0.1)
        job = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=30).json()
    context = f"job {json.dumps(job)}\n{table.describe()}"
    if job["status"] == "failed":
        reason = job["error"] or ""
        internal = re.search(r"internal error \((\w+)", reason)
        if internal:
            log = _server_log_tail(log_dir)
            origin = internal[1]
            if "Traceback" in log:
                origin = traceback_origin(log, f"job {job_id} failed")
            raise crash(
                f"job failed: internal error {origin}",
                f"{context}\n--- server log ---\n{log[-8000:]}",
                table,
            )
        assert names_something(reason, table), f"names nothing\n{context}"
        check_refusal(reason, table, context)
        outcome(f"job failed: {gist(reason.removeprefix('the input cannot be analysed: '))}")
        return
    assert job["status"] == "succeeded", context
    outcome("job succeeded")
    result = httpx.get(f"{base_url}/api/jobs/{job_id}/result", timeout=REQUEST_TIMEOUT)
    assert result.status_code == 200, f"{result.status_code} {result.text[:2000]}\n{context}"
    low, high = table.row_bounds()
    assigned = sum(c["size"] for c in result.json()["clusters"])
    assert low <= assigned <= high, f"{assigned} customers in the clusters\n{context}"


@pytest.fixture(scope="module")
def log_dir(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


@_settings(HTTP_EXAMPLES)
@given(table=messy_tables(), typed=st.booleans())
def test_the_service_answers_every_messy_table(
    base_url: str, log_dir: Path, table: Table, typed: bool
) -> None:
    check_analyze(base_url, log_dir, table, typed)
    check_job(base_url, log_dir, table)


# --- tables that once crashed, each checked on every run -----------------------------------------


def pinned(name: str, cells: list[str], kind: str) -> Table:
    """An id, a plain category and `cells` (one row each) in a column called `name`."""
    return Table(
        names=("id", "region", name),
        rows=tuple(
            (str(i + 1), ("North", "South", "East")[i % 3], cell) for i, cell in enumerate(cells)
        ),
        kinds=("id-like", "case and whitespace levels", kind),
    )


def _numbers_but(index: int, value: str) -> list[str]:
    return [value if i == index else str(1000 + 37 * i % 500) for i in range(30)]


PINNED = {
    # `0` among words once raised InvalidIndexError in pipeline/features.py
    "a stray 0 among words": pinned(
        "colour", ["0" if i == 7 else ("red", "green")[i % 2] for i in range(30)], "words"
    ),
    # numbers sent as text, one of them "inf": NaN reached the distances (search.py)
    "inf among numbers written as text": pinned("spend", _numbers_but(3, "inf"), "numbers"),
    # numbers sent as text, one near 1e300: OverflowError in profile.py
    "1e300 among numbers written as text": pinned("spend", _numbers_but(3, "1e300"), "numbers"),
    # distinct account numbers beyond 64 bits wrapped around to one "duplicate" id (files.py)
    "ids beyond 64 bits": Table(
        names=("id", "region", "spend"),
        rows=tuple((str(2**64 + i), "ab"[i % 2], str(10 * i + i % 7)) for i in range(30)),
        kinds=("big integers", "words", "numbers"),
    ),
    # a 25-digit number reported as -9.223372036854776e+18 (files.py)
    "a 25-digit number": pinned("spend", _numbers_but(3, "9" * 25), "numbers"),
    # 50 numbers, "inf" and "N/A": the text column read as numbers kept the infinity, and
    # ValueError("Input contains NaN") came out of search.py, a traceback and exit 1
    "inf and a placeholder among 50 numbers": pinned(
        "spend", [str(10 * (i % 7)) for i in range(50)] + ["inf", "N/A"], "numbers"
    ),
    # the same beside 3 fields of 8 levels: more than 20 columns, and the NaN reached the PCA
    # of FeatureEncoder.fit (features.py) first
    "inf and a placeholder beside many levels": Table(
        names=("c1", "c2", "c3", "spend"),
        rows=tuple(
            (
                *("abcdefgh"[i * j % 8] for j in (1, 2, 3)),
                "inf" if i == 50 else "N/A" if i == 51 else str(10 * (i % 7)),
            )
            for i in range(52)
        ),
        kinds=("words", "words", "words", "numbers"),
    ),
    # "1,20,30000," under "id,age,income": pandas took the ids for its index and read the ages
    # as ids, the incomes as ages (files.py)
    "a delimiter at the end of every data row": Table(
        names=("id", "age", "income"),
        rows=tuple((str(i + 1), str(20 + i % 50), str(30_000 + 997 * i)) for i in range(30)),
        trailing_delimiter=True,
        kinds=("id-like", "numbers", "numbers"),
    ),
}


@pytest.mark.parametrize("table", list(PINNED.values()), ids=list(PINNED))
def test_tables_that_once_went_wrong(base_url: str, log_dir: Path, table: Table) -> None:
    failures = []
    for check in (
        lambda: check_cli(table),
        lambda: check_analyze(base_url, log_dir, table, typed=False),
        lambda: check_analyze(base_url, log_dir, table, typed=True),
        lambda: check_job(base_url, log_dir, table),
    ):
        try:
            check()
        except AssertionError as failure:
            failures.append(f"{type(failure).__name__}: {str(failure)[:3000]}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_the_generated_files_are_what_they_claim() -> None:
    # the layout flags really shape the bytes the tests above send
    table = Table(
        names=("a", "b ", "名前"),
        rows=(("1", "x;y", " "), ("2", "", "z")),
        delimiter=";",
        bom=True,
        crlf=True,
        blank_rows=2,
    )
    content = table.content()
    assert content.startswith("\ufeff".encode())
    assert content.decode("utf-8-sig").split("\r\n") == [
        "a;b ;名前",
        '1;"x;y"; ',
        "2;;z",
        ";;",
        ";;",
        "",
    ]
    assert table.row_bounds() == (2, 4)  # the trailing blank rows may be customers
    assert table.records(typed=True) == [{"a": 1, "b ": "x;y", "名前": " "}, {"a": 2, "名前": "z"}]
    ragged = Table(names=("a", "b"), rows=(("1", "2"),), trailing_delimiter=True, quote_all=True)
    assert ragged.content() == b'"a","b"\n"1","2",""\n'
    no_header = Table(names=("a", "b", "c"), rows=(("1", "2", "3"),) * 3, header=False)
    assert no_header.content() == b"1,2,3\n1,2,3\n1,2,3\n"
    assert no_header.row_bounds() == (2, 3)  # the first row may be taken for a header


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_fills_its_rows(kind: str) -> None:
    for variant in range(10):
        cells = KINDS[kind](random.Random(variant), 30, variant)
        assert len(cells) == 30 and all(isinstance(c, str) for c in cells), (kind, variant)
