"""Large JSON bodies read and written column by column, without a Python dict per customer.

Scoring 100,000 new customers spends most of its time turning JSON into dicts and dicts into
JSON, not scoring. Here a body is decoded by msgspec straight into one list per field (half
of orjson's time to dicts, and no rows to transpose), and the scored rows are written as
text by Arrow's kernels over whole columns.

Both are accelerators only: `decode_customer_columns` declines every body that is not the
plain case (another key, a field the segments never saw, a NaN literal, malformed JSON), and
the caller then reads it with the general reader, so every message about a bad body is the
one the general reader gives. `assignments_json` writes exactly the rows the dicts would
give, numbers in their shortest form.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segmentation.assign import Assignment
from segmentation.pipeline.ingest import CustomerColumns
from segmentation.serialize import dumps

__all__ = ["assignments_json", "decode_customer_columns", "json_texts"]

# text that a JSON string cannot hold as is: the quote, the backslash, control characters
NEEDS_ESCAPE = r'["\\\x00-\x1f]'


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
    body: bytes, fields: Sequence[str], max_customers: int
) -> CustomerColumns | None:
    """`{"customerData": [...]}` as columns when it holds 1 to `max_customers` customer
    objects with no field beyond `fields`; None for any other body (see the module docstring).

    Values are decoded as JSON gives them (no type is imposed): the checks are the ingest's.
    """
    absences = [_Absences() for _ in fields]
    # attributes f0, f1, ... renamed to the field names: any text can name a field
    customer: Any = msgspec.defstruct(
        "Customer",
        [(f"f{i}", Any, msgspec.field(default_factory=count)) for i, count in enumerate(absences)],
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
    values = {
        name: list(map(attrgetter(f"f{i}"), customers))
        for i, name in enumerate(fields)
        if absences[i].count < count
    }
    return CustomerColumns(values, count)


def json_texts(values: Sequence[Any]) -> pa.Array:
    """Each value as its JSON text: whole numbers and plain text (the usual ids) by Arrow over
    the column, anything else one by one."""
    try:
        column = pa.array(values)
    except (pa.ArrowException, OverflowError, UnicodeEncodeError):
        column = None
    if column is not None and pa.types.is_integer(column.type) and column.null_count == 0:
        return column.cast(pa.string())
    if (
        column is not None
        and pa.types.is_string(column.type)
        and column.null_count == 0
        and not pc.any(pc.match_substring_regex(column, NEEDS_ESCAPE)).as_py()
    ):
        return pc.binary_join_element_wise('"', column, '"', "")
    return pa.array([dumps(value).decode() for value in values], pa.string())


def assignments_json(
    analysis_id: str, scored: Assignment, ids: Sequence[Any] | None
) -> bytes | None:
    """The body of `POST /api/analyses/{id}/assign`: `{"analysisId", "assignments": [{"index",
    "clusterId", "clusterName", "confidence", "ambiguous"[, "id"]}, ...], "warnings"}`, the
    rows joined as text column by column; None when a row cannot be written so (the caller
    then writes dicts)."""
    n = len(scored.labels)
    confidence = np.round(scored.confidence, 4)
    if n == 0 or not np.isfinite(confidence).all():
        return None
    segment_ids = np.array(sorted(scored.segment_names), dtype=np.int64)
    # what sits between a row's index and its confidence depends on its segment alone
    middles = pa.array(
        [
            f',"clusterId":{segment_id},"clusterName":'
            f'{dumps(scored.segment_names[segment_id]).decode()},"confidence":'
            for segment_id in segment_ids.tolist()
        ]
    )
    pieces: list[Any] = [
        '{"index":',
        pa.array(np.arange(n)).cast(pa.string()),
        middles.take(pa.array(np.searchsorted(segment_ids, scored.labels))),
        pa.array(confidence).cast(pa.string()),
        pc.if_else(pa.array(scored.ambiguous), ',"ambiguous":true', ',"ambiguous":false'),
    ]
    if ids is not None:
        pieces += [',"id":', json_texts(ids)]
    try:
        rows = pc.binary_join_element_wise(*pieces, "},", "")
    except pa.ArrowException:  # beyond 2 GiB of text in one string column
        return None
    # the rows lie back to back in the column's data buffer: the array's text, commas included
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * rows.offset)
    text = memoryview(rows.buffers()[2])[offsets[0] : offsets[-1] - 1]  # the last comma dropped
    head = orjson.dumps({"analysisId": analysis_id})[:-1] + b',"assignments":['
    tail = b'],"warnings":' + orjson.dumps(list(scored.warnings)) + b"}"
    return b"".join((head, text, tail))
