"""Large JSON bodies read and written column by column, without a Python dict per customer.

Scoring 100,000 new customers, or storing the response of a million, spends most of its time
turning JSON into dicts and dicts into JSON. Here a body is decoded by msgspec straight into
one list per field (half of orjson's time to dicts, and no rows to transpose), and rows are
written as text by Arrow's kernels over whole columns (3x a dict per row and orjson).

Both are accelerators only. `decode_customer_columns` declines every body that is not the
plain case (another key, a field the segments never saw, a NaN literal, malformed JSON), and
the caller then reads it with the general reader, so every message about a bad body is the
one the general reader gives. `json_rows` declines a column whose JSON is not simply Arrow's
text of it (dates, lists, text that JSON escapes), and the rows are then written from dicts.
Written rows read back as the same JSON values; numbers are in their shortest form (51, not
51.0).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, BinaryIO

import msgspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmentation.assign import Assignment
from segmentation.pipeline.ingest import CustomerColumns
from segmentation.results import Analysis
from segmentation.serialize import analysis_to_wire, customer_scores, dumps

__all__ = [
    "Customers",
    "assignments_json",
    "decode_customer_columns",
    "json_rows",
    "json_texts",
    "write_analysis_json",
]

#: the customers as they came: records as sent (JSON), or the frame a file was read into
Customers = Sequence[Mapping[str, Any]] | pd.DataFrame

# text that a JSON string cannot hold as is: the quote, the backslash, control characters
NEEDS_ESCAPE = r'["\\\x00-\x1f]'
# customers echoed per batch: bounded memory however many a segment holds
ECHO_BATCH_ROWS = 65_536
# every text column is large (64-bit offsets): a million rows of text can pass 2 GiB
TEXT = pa.large_string()
# confidences are written with 4 decimals
CONFIDENCE_DECIMALS = 4
ROUNDED_STEPS = 10**CONFIDENCE_DECIMALS


class _Absences:
    """Stands in (as None) for a field a customer lacks, and counts those customers: msgspec
    calls it once per customer without the field. A field every customer lacks is absent,
    which is not the same as null (scoring reports it)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def decode_customer_columns(
    body: bytes, fields: Sequence[str], max_customers: int, numbers: Collection[str] = ()
) -> CustomerColumns | None:
    """`{"customerData": [...]}` as columns when it holds 1 to `max_customers` customer
    objects with no field beyond `fields`, and the fields among `numbers` hold only numbers
    and nulls; None for any other body (see the module docstring).

    The fields among `numbers` (what the segments learned as numbers) come as float arrays,
    read by msgspec without a Python object per value reaching the ingest; any other field's
    values come as JSON gives them (no type is imposed), for the ingest to check.
    """
    absences = [_Absences() for _ in fields]
    kinds = [float | None if name in numbers else Any for name in fields]
    # attributes f0, f1, ... renamed to the field names: any text can name a field
    customer: Any = msgspec.defstruct(
        "Customer",
        [
            (f"f{i}", kind, msgspec.field(default_factory=count))
            for i, (kind, count) in enumerate(zip(kinds, absences, strict=True))
        ],
        rename={f"f{i}": name for i, name in enumerate(fields)},
        forbid_unknown_fields=True,
        gc=False,
    )
    request: Any = msgspec.defstruct(
        "Request", [("customerData", list[customer])], forbid_unknown_fields=True
    )
    try:
        customers = msgspec.json.decode(body, type=request).customerData
    except msgspec.MsgspecError:
        return None
    count = len(customers)
    if not 1 <= count <= max_customers:
        return None
    values: dict[str, list[Any] | np.ndarray] = {}
    for i, name in enumerate(fields):
        if absences[i].count == count:
            continue
        column = list(map(attrgetter(f"f{i}"), customers))
        as_numbers = np.array(column, dtype=float) if kinds[i] is not Any else None  # null: NaN
        # (a column of nulls only is left as sent: its kind is the ingest's to say)
        if as_numbers is not None and not np.isnan(as_numbers).all():
            values[name] = as_numbers
        else:
            values[name] = column
    return CustomerColumns(values, count)


def _literal(text: str) -> pa.Scalar:
    return pa.scalar(text, TEXT)


def _column_texts(column: pa.Array) -> pa.Array | None:
    """Each value of a column as its JSON text (null as null), or None when Arrow's text of
    the column is not its JSON."""
    kind = column.type
    if pa.types.is_integer(kind):
        texts = column.cast(TEXT)
    elif pa.types.is_floating(kind):
        if not pc.all(pc.or_kleene(pc.is_finite(column), pc.is_null(column))).as_py():
            return None  # NaN and infinity are not JSON
        texts = column.cast(TEXT)
    elif pa.types.is_boolean(kind):
        texts = pc.if_else(column, _literal("true"), _literal("false"))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if pc.any(pc.match_substring_regex(column, NEEDS_ESCAPE)).as_py():
            return None
        quote = _literal('"')
        texts = pc.binary_join_element_wise(quote, column.cast(TEXT), quote, _literal(""))
    elif pa.types.is_null(kind):
        texts = pa.nulls(len(column), TEXT)
    else:  # dates, lists, structs, decimals: their JSON is not Arrow's text
        return None
    return pc.fill_null(texts, _literal("null"))


def json_texts(values: Sequence[Any]) -> pa.Array:
    """Each value as its JSON text: whole numbers and plain text (the usual ids) by Arrow over
    the column, anything else one by one."""
    try:
        column = pa.array(values)
    except (pa.ArrowException, OverflowError, UnicodeEncodeError):
        column = None
    texts = None
    if column is not None and column.null_count == 0 and not pa.types.is_floating(column.type):
        texts = _column_texts(column)  # (floats: 1.0 was sent as 1.0, not 1)
    if texts is not None:
        return texts
    return pa.array([dumps(value).decode() for value in values], TEXT)


def json_rows(table: pa.Table) -> pa.Array | None:
    """Each row of the table as a JSON object followed by a comma, keys in column order; None
    when a column cannot be written so (see `_column_texts`)."""
    pieces: list[Any] = []
    for position, name in enumerate(table.column_names):
        texts = _column_texts(table.column(name).combine_chunks())
        if texts is None:
            return None
        opening = "{" if position == 0 else ","
        pieces += [_literal(f"{opening}{dumps(name).decode()}:"), texts]
    if not pieces:
        return pa.array(["{},"] * table.num_rows, TEXT)
    return pc.binary_join_element_wise(*pieces, _literal("},"), _literal(""))


def _joined(rows: pa.Array, trailing: int = 1) -> memoryview:
    """The texts of a text column back to back (they lie so in its data buffer), the last
    `trailing` characters (a separator after the last row) dropped."""
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=len(rows) + 1,
                            offset=8 * rows.offset)  # fmt: skip
    return memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1]) - trailing]


@functools.cache
def _rounded_texts() -> pa.Array:
    """The text of every number of 4 decimals in [-1, 1], k / 10^4 at position k + 10^4, and
    of -0 last: a confidence's text is one lookup (5x Arrow's cast of 100,000 numbers)."""
    grid = np.append(np.arange(-ROUNDED_STEPS, ROUNDED_STEPS + 1) / ROUNDED_STEPS, -0.0)
    return pa.array(grid).cast(TEXT)


def _confidence_texts(rounded: np.ndarray) -> pa.Array:
    """The texts of confidences rounded to 4 decimals: those of Arrow's cast, character for
    character (np.round gives rint(x * 10^4) / 10^4, the very number at its position in
    `_rounded_texts`; -0 has a position of its own, since Arrow writes it "-0")."""
    if not (np.abs(rounded) <= 1).all():
        return pa.array(rounded).cast(TEXT)
    positions = np.rint(rounded * ROUNDED_STEPS).astype(np.int64) + ROUNDED_STEPS
    positions[(rounded == 0) & np.signbit(rounded)] = 2 * ROUNDED_STEPS + 1
    return _rounded_texts().take(pa.array(positions))


def assignments_json(
    analysis_id: str, scored: Assignment, ids: Sequence[Any] | None
) -> bytes | None:
    """The body of `POST /api/analyses/{id}/assign`: `{"analysisId", "assignments": [{"index",
    "clusterId", "clusterName", "confidence", "ambiguous"[, "id"]}, ...], "warnings"}`, the
    rows joined as text column by column; None when a row cannot be written so (the caller
    then writes dicts)."""
    n = len(scored.labels)
    confidence = np.round(scored.confidence, CONFIDENCE_DECIMALS)
    if n == 0 or not np.isfinite(confidence).all():
        return None
    segment_ids = np.array(sorted(scored.segment_names), dtype=np.int64)
    # what sits between a row's index and its confidence depends on its segment alone
    middles = pa.array(
        [
            f',"clusterId":{segment_id},"clusterName":'
            f'{dumps(scored.segment_names[segment_id]).decode()},"confidence":'
            for segment_id in segment_ids.tolist()
        ],
        TEXT,
    )
    # each row ends with the next one's opening, and the ambiguous flag carries the text that
    # follows it: Arrow's join costs about as much per piece as per row (8 pieces -> 6)
    opening = '{"index":'
    closing = "}," + opening
    after_flag = ',"id":' if ids is not None else closing
    pieces: list[Any] = [
        pa.array(np.arange(n)).cast(TEXT),
        middles.take(pa.array(np.searchsorted(segment_ids, scored.labels))),
        _confidence_texts(confidence),
        pc.if_else(
            pa.array(scored.ambiguous),
            _literal(',"ambiguous":true' + after_flag),
            _literal(',"ambiguous":false' + after_flag),
        ),
    ]
    if ids is not None:
        pieces += [json_texts(ids), _literal(closing)]
    rows = pc.binary_join_element_wise(*pieces, _literal(""))
    head = orjson.dumps({"analysisId": analysis_id})[:-1] + b',"assignments":[' + opening.encode()
    tail = b'}],"warnings":' + orjson.dumps(list(scored.warnings)) + b"}"
    return b"".join((head, _joined(rows, trailing=len(closing)), tail))


def _arrow_records(frame: pd.DataFrame) -> pa.Table | None:
    """A file's customers as an Arrow table; None when Arrow cannot type a column (numbers
    beside text)."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _frame_batch(frame: pd.DataFrame, table: pa.Table | None, rows: np.ndarray) -> bytes:
    """The JSON of a file's customers at `rows`, without brackets, missing cells as null."""
    if table is not None:
        batch = table.take(pa.array(rows))
        texts = json_rows(batch)
        if texts is not None:
            return bytes(_joined(texts)) if len(texts) else b""
        return dumps(batch.to_pylist())[1:-1]
    cells = frame.iloc[rows].astype(object)
    cells = cells.where(cells.notna(), None)
    records = [{str(k): v for k, v in row.items()} for row in cells.to_dict("records")]
    return dumps(records)[1:-1]


def _echo_batches(
    customers: Customers, table: pa.Table | None, rows: np.ndarray
) -> Iterator[bytes]:
    """The JSON of the customers at `rows` (input positions), a batch at a time, without the
    brackets: records as sent, or a file's rows (`table`: the file's frame in Arrow)."""
    for start in range(0, len(rows), ECHO_BATCH_ROWS):
        batch = rows[start : start + ECHO_BATCH_ROWS]
        if isinstance(customers, pd.DataFrame):
            yield _frame_batch(customers, table, batch)
        else:
            yield dumps([customers[i] for i in batch.tolist()])[1:-1]


def _score_batches(analysis: Analysis) -> Iterator[bytes]:
    """`customerScores` as JSON, a batch at a time, without brackets."""
    for start in range(0, analysis.n_customers, ECHO_BATCH_ROWS):
        stop = min(start + ECHO_BATCH_ROWS, analysis.n_customers)
        yield dumps(customer_scores(analysis, range(start, stop)))[1:-1]


def _write_list(out: BinaryIO, batches: Iterable[bytes]) -> None:
    out.write(b"[")
    first = True
    for batch in batches:
        if batch:
            out.write(batch if first else b"," + batch)
            first = False
    out.write(b"]")


def _members_of(analysis: Analysis) -> dict[int, np.ndarray]:
    """Input positions per segment id, from one stable sort (not a scan per segment)."""
    order = np.argsort(analysis.labels, kind="stable")
    ids, starts = np.unique(analysis.labels[order], return_index=True)
    positions = analysis.input_positions(order)
    return dict(zip(ids.tolist(), np.split(positions, starts[1:]), strict=True))


def write_analysis_json(
    out: BinaryIO,
    analysis: Analysis,
    customers: Customers | None,
    *,
    include_customers: bool = True,
    include_customer_scores: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """`analysis_to_wire(...)` with `extra` keys at the end, written to `out` piece by piece:
    the same JSON as `dumps` of the whole (byte for byte for records as sent), but every
    segment's customers (and the customer scores) are written a batch at a time, so that
    neither the whole response nor a dict per customer of a file is ever held (1,000,000
    customers: 100 MB of JSON and 1 GB of dicts). `customers` are the records as sent, or a
    file's frame."""
    wire = analysis_to_wire(analysis, None, include_customers=False)
    # a Spark analysis holds only a sample of its customers: no per-customer lists
    echoed = customers if include_customers and not analysis.sample_only else None
    if echoed is not None and len(echoed) == 0:
        echoed = None
    members = _members_of(analysis) if echoed is not None else {}
    table = _arrow_records(echoed) if isinstance(echoed, pd.DataFrame) else None
    out.write(b'{"clusters":[')
    for position, cluster in enumerate(wire.pop("clusters")):
        # a cluster is {"clusterId", "customers", ...the rest}, in that order
        segment_id = cluster.pop("clusterId")
        del cluster["customers"]
        out.write(b'%s{"clusterId":%d,"customers":' % (b"," if position else b"", segment_id))
        rows = members.get(segment_id, np.empty(0, dtype=np.int64))
        _write_list(out, _echo_batches(echoed, table, rows) if echoed is not None else ())
        out.write(b",%s" % dumps(cluster)[1:] if cluster else b"}")
    out.write(b"]")
    for key, value in wire.items():
        out.write(b',"%s":%s' % (key.encode(), dumps(value)))
    if include_customer_scores and not analysis.sample_only:
        out.write(b',"customerScores":')
        _write_list(out, _score_batches(analysis))
    for key, value in (extra or {}).items():
        out.write(b",%s:%s" % (dumps(key), dumps(value)))
    out.write(b"}")
