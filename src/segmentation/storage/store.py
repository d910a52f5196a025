"""Stored analyses: one SQLite file for the index, one folder of files per analysis.

    <data dir>/segmentation.sqlite3        analyses: id, when, size, cache key, last use,
                                           the previous analysis of a refit, the tenant
    <data dir>/analyses/<id>/response.json the /api/analyze response, byte for byte
                            summary.json   the same without the customers (for advice, lists)
                            assignments.parquet  one row per customer
                            projection.npz a 2-D view of a sample of customers (for charts)
                            model.json, model.npz  the fitted pipeline (see model_file.py)

A folder is written under a temporary name and renamed into place before its row is inserted,
so a crash leaves either a complete analysis or none. See database.py for ids and SQLite.

Every call that names an analysis takes `tenant`: None (SEGMENTATION_AUTH=off, the CLI) sees
every analysis; a tenant sees only its own, and another tenant's id raises exactly what an
unknown id raises (ForeignAnalysisError is an UnknownAnalysisError with the same message).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from segmentation.analysis import previous_segmentation
from segmentation.assign import FittedSegmentation, assignment_table, fitted_of
from segmentation.errors import OtherTenantError, SegmentationError
from segmentation.pipeline.ingest import exact_int64
from segmentation.pipeline.lineage import PreviousSegmentation
from segmentation.results import Analysis, Projection
from segmentation.serialize import analysis_from_wire
from segmentation.storage.database import check_id, connect, new_id
from segmentation.storage.model_file import load_fitted, save_fitted

__all__ = ["AnalysisStore", "ForeignAnalysisError", "StoredAnalysis", "UnknownAnalysisError"]

RESPONSE = "response.json"
SUMMARY = "summary.json"
ASSIGNMENTS = "assignments.parquet"
PROJECTION = "projection.npz"
# the response is written in pieces of a few KB to a few MB: one system call per MiB
RESPONSE_BUFFER = 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL,
    cache_key TEXT,
    customers INTEGER NOT NULL,
    segments INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    accuracy REAL,
    response_bytes INTEGER NOT NULL,
    previous_id TEXT,
    tenant TEXT
);
CREATE INDEX IF NOT EXISTS analyses_cache_key ON analyses (cache_key);
CREATE INDEX IF NOT EXISTS analyses_created ON analyses (created_at);
CREATE INDEX IF NOT EXISTS analyses_last_used ON analyses (last_used_at);
"""


_LISTED = "id, created_at, customers, segments, algorithm, accuracy, previous_id, tenant"
# created after the columns a data folder from an older release lacks have been added
TENANT_INDEX = "CREATE INDEX IF NOT EXISTS analyses_tenant ON analyses (tenant, created_at)"


class UnknownAnalysisError(SegmentationError):
    """No stored analysis has this id (never stored, or deleted)."""

    def __init__(self, analysis_id: str) -> None:
        # args stay (analysis_id,) so that the error pickles back from a worker unchanged
        super().__init__(analysis_id)
        self.analysis_id = analysis_id

    def __str__(self) -> str:
        return f"no analysis with id {self.analysis_id!r} is stored"


class ForeignAnalysisError(UnknownAnalysisError, OtherTenantError):
    """The analysis is stored, for another tenant: to the caller it does not exist."""


@dataclass(frozen=True)
class StoredAnalysis:
    analysis_id: str
    created_at: float
    customers: int
    segments: int
    algorithm: str
    accuracy: float | None
    previous_id: str | None = None
    tenant: str | None = None


class AnalysisStore:
    """The analyses kept in one data folder. Cheap to construct: every call opens its own
    short SQLite connection, so one store object is safe in any thread or process."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.folders = self.root / "analyses"
        self.folders.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.executescript(SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(analyses)")}
            for column in ("previous_id", "tenant"):  # a data folder from before lineage, keys
                if column not in columns:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                        connection.execute(f"ALTER TABLE analyses ADD COLUMN {column} TEXT")
            connection.execute(TENANT_INDEX)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root)

    new_id = staticmethod(new_id)

    def folder(self, analysis_id: str, tenant: str | None = None) -> Path:
        """The folder of a stored analysis; UnknownAnalysisError if there is none (or, for a
        tenant, none of its own)."""
        check_id(analysis_id, "analysisId")
        if tenant is not None:
            self._check_tenant(analysis_id, tenant)
        folder = self.folders / analysis_id
        if not (folder / RESPONSE).exists():
            raise UnknownAnalysisError(analysis_id)
        return folder

    def _check_tenant(self, analysis_id: str, tenant: str) -> None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT tenant FROM analyses WHERE id = ?", (analysis_id,)
            ).fetchone()
        if row is None:
            raise UnknownAnalysisError(analysis_id)
        if row[0] != tenant:
            raise ForeignAnalysisError(analysis_id)

    def save(
        self,
        analysis_id: str,
        analysis: Analysis,
        write_response: Callable[[BinaryIO], None],
        summary: bytes,
        customer_ids: Sequence[Any] | None,
        cache_key: str | None,
        tenant: str | None = None,
    ) -> None:
        """Store an analysis: `write_response` writes the response into its file (streamed,
        never held whole), `summary` is the same without the customers."""
        staging = self.folders / f".{analysis_id}.partial"
        staging.mkdir(parents=True)
        with (staging / RESPONSE).open("wb", buffering=RESPONSE_BUFFER) as response:
            write_response(response)
            response_bytes = response.tell()
        (staging / SUMMARY).write_bytes(summary)
        save_fitted(fitted_of(analysis), staging)
        if analysis.assignments is not None:  # the Spark engine: written by Spark, one file
            from segmentation.spark import write_single_parquet

            write_single_parquet(analysis.assignments, staging / ASSIGNMENTS)
        else:
            _assignments_frame(analysis, customer_ids).to_parquet(
                staging / ASSIGNMENTS, index=False
            )
        view = analysis.projection
        np.savez(
            staging / PROJECTION, points=view.points, labels=view.labels, centers=view.centers,
            explained=view.explained, n_customers=np.array(view.n_customers),
        )  # fmt: skip
        staging.rename(self.folders / analysis_id)
        now = time.time()
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO analyses (id, created_at, last_used_at, cache_key, customers, "
                "segments, algorithm, accuracy, response_bytes, previous_id, tenant) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    analysis_id, now, now, cache_key, analysis.n_customers,
                    len(analysis.segments), analysis.algorithm,
                    None if analysis.accuracy != analysis.accuracy else analysis.accuracy,
                    response_bytes, analysis.options.previous_analysis_id, tenant,
                ),
            )  # fmt: skip

    def cached(self, cache_key: str, tenant: str | None = None) -> str | None:
        """The id of a stored analysis made from the same request, marked as just used. The
        key of a tenant's request includes the tenant; the tenant is matched here as well."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT id FROM analyses WHERE cache_key = ? AND (? IS NULL OR tenant = ?) "
                "ORDER BY created_at LIMIT 1",
                (cache_key, tenant, tenant),
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE analyses SET last_used_at = ? WHERE id = ?", (time.time(), row[0])
            )
        return str(row[0])

    def evict_cache(self, max_entries: int) -> int:
        """Forget the cache keys of all but the `max_entries` most recently used analyses.

        The analyses themselves stay retrievable by id; only identical requests stop finding
        them. Returns how many keys were dropped.
        """
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE analyses SET cache_key = NULL WHERE id IN (SELECT id FROM analyses "
                "WHERE cache_key IS NOT NULL ORDER BY last_used_at DESC LIMIT -1 OFFSET ?)",
                (max_entries,),
            )
            return cursor.rowcount

    def enforce_retention(self, max_analyses: int) -> int:
        """Delete the least recently used analyses beyond `max_analyses`; returns how many.
        This is what bounds the disk: the cache bound only stops answering from old ones."""
        with self._connect() as connection:
            doomed = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM analyses ORDER BY last_used_at DESC LIMIT -1 OFFSET ?",
                    (max_analyses,),
                )
            ]
        for analysis_id in doomed:
            with contextlib.suppress(UnknownAnalysisError):  # deleted meanwhile by someone else
                self.delete(analysis_id)
        return len(doomed)

    def response_path(self, analysis_id: str, tenant: str | None = None) -> Path:
        return self.folder(analysis_id, tenant) / RESPONSE

    def summary(self, analysis_id: str, tenant: str | None = None) -> bytes:
        try:
            return (self.folder(analysis_id, tenant) / SUMMARY).read_bytes()
        except FileNotFoundError:  # deleted while being read
            raise UnknownAnalysisError(analysis_id) from None

    def summary_dict(self, analysis_id: str, tenant: str | None = None) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.summary(analysis_id, tenant))
        return parsed

    def analysis(self, analysis_id: str, tenant: str | None = None) -> Analysis:
        """A stored analysis as the core object (per-customer lists aside): what charts, the
        report and advice of a stored analysis are made from."""
        folder = self.folder(analysis_id, tenant)
        try:
            summary = orjson.loads((folder / SUMMARY).read_bytes())
            table = pq.read_table(folder / ASSIGNMENTS)
            with np.load(folder / PROJECTION, allow_pickle=False) as stored:
                projection = Projection(
                    stored["points"], stored["labels"], stored["centers"], stored["explained"],
                    int(stored["n_customers"]),
                )  # fmt: skip
            fitted = load_fitted(folder)
        except FileNotFoundError:  # deleted while being read
            raise UnknownAnalysisError(analysis_id) from None
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        return analysis_from_wire(
            summary,
            labels=table.column("clusterId").to_numpy(),
            confidence=table.column("confidence").to_numpy(),
            ambiguous=table.column("ambiguous").to_numpy(),
            customer_ids=ids,
            fitted=fitted,
            projection=projection,
        )

    def previous(self, analysis_id: str, tenant: str | None = None) -> PreviousSegmentation:
        """A stored analysis as the previous one of a refit: its model and its customers'
        ids and segments (no summary, no projection)."""
        folder = self.folder(analysis_id, tenant)
        try:
            fitted = load_fitted(folder)
            table = pq.read_table(folder / ASSIGNMENTS)
        except FileNotFoundError:  # deleted while being read
            raise UnknownAnalysisError(analysis_id) from None
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        return previous_segmentation(
            fitted, analysis_id=analysis_id, customer_ids=ids,
            labels=table.column("clusterId").to_numpy(),
        )  # fmt: skip

    def ancestors(
        self, analysis_id: str, tenant: str | None = None
    ) -> tuple[list[StoredAnalysis], str | None]:
        """The analysis and the chain of its previous analyses, newest first, as far as they
        are still stored (for a tenant, as its own); and the id of the first one no longer
        stored (None: complete)."""
        self.folder(analysis_id, tenant)
        chain: list[StoredAnalysis] = []
        current: str | None = analysis_id
        with self._connect() as connection:
            while current is not None and all(a.analysis_id != current for a in chain):
                row = connection.execute(
                    f"SELECT {_LISTED} FROM analyses WHERE id = ?", (current,)
                ).fetchone()
                if row is None or (tenant is not None and row[-1] != tenant):
                    return chain, current
                chain.append(StoredAnalysis(*row))
                current = chain[-1].previous_id
        return chain, None

    def fitted(self, analysis_id: str, tenant: str | None = None) -> FittedSegmentation:
        try:
            return load_fitted(self.folder(analysis_id, tenant))
        except FileNotFoundError:  # deleted while being read
            raise UnknownAnalysisError(analysis_id) from None

    def list(
        self, limit: int = 50, offset: int = 0, tenant: str | None = None
    ) -> list[StoredAnalysis]:
        """Newest first; a tenant's own only when `tenant` is given."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_LISTED} FROM analyses WHERE (? IS NULL OR tenant = ?) "
                "ORDER BY created_at DESC LIMIT ? OFFSET ?",
                (tenant, tenant, limit, offset),
            ).fetchall()
        return [StoredAnalysis(*row) for row in rows]

    def delete(self, analysis_id: str, tenant: str | None = None) -> None:
        folder = self.folder(analysis_id, tenant)
        with self._connect() as connection:
            connection.execute("DELETE FROM analyses WHERE id = ?", (analysis_id,))
        # renamed first, so a reader sees the analysis whole or not at all; a concurrent
        # delete that renamed it first wins, and this one found nothing to delete
        doomed = self.folders / f".{analysis_id}.{new_id()}.deleted"
        try:
            folder.rename(doomed)
        except FileNotFoundError:
            raise UnknownAnalysisError(analysis_id) from None
        shutil.rmtree(doomed, ignore_errors=True)

    def read_response(self, analysis_id: str, tenant: str | None = None) -> bytes:
        """The stored response; UnknownAnalysisError also when deleted while being read."""
        try:
            return self.response_path(analysis_id, tenant).read_bytes()
        except FileNotFoundError:
            raise UnknownAnalysisError(analysis_id) from None

    def open_file(self, analysis_id: str, name: str, tenant: str | None = None) -> BinaryIO:
        """An open stored file: once open it stays readable even if the analysis is deleted."""
        try:
            return (self.folder(analysis_id, tenant) / name).open("rb")
        except FileNotFoundError:
            raise UnknownAnalysisError(analysis_id) from None


def _assignments_frame(analysis: Analysis, customer_ids: Sequence[Any] | None) -> pd.DataFrame:
    names = {segment.segment_id: segment.name for segment in analysis.segments}
    ids = None if customer_ids is None else _column_ids(customer_ids)
    return assignment_table(
        analysis.labels, analysis.confidence, analysis.ambiguous, names, ids, analysis.input_rows
    )


def _column_ids(customer_ids: Sequence[Any]) -> Sequence[Any] | np.ndarray:
    """Ids as one Parquet column can hold them: 64-bit integers as such (the usual ids, in one
    pass at C speed), else as sent, or as text when no one type holds them all."""
    as_int64 = exact_int64(customer_ids)
    if as_int64 is not None:
        return as_int64
    ids = list(customer_ids)
    # one Parquet column has one type: ids of mixed types are kept as text
    present = [v for v in ids if v is not None]
    low, high = (min(present), max(present)) if present and all(
        type(v) is int for v in present
    ) else (0, 0)  # fmt: skip
    wide = low < -(2**63) or high >= 2**64 or (low < 0 and high >= 2**63)
    # integers no 64-bit type holds together (2**63 beside -1) are kept as text too
    if len({type(v) for v in present}) > 1 or wide:
        ids = [None if v is None else str(v) for v in ids]
    return ids
