"""The one SQLite file of a data folder, and the ids of what it indexes.

Every call opens its own short connection in WAL mode (readers never wait for the worker
processes that write), and one `with` block is one transaction. Ids are 128 random bits in
URL-safe base64: 22 characters that cannot be guessed, checked whole before any use.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segmentation.errors import InvalidInputError, Problem

__all__ = ["DATABASE", "check_id", "connect", "new_id"]

DATABASE = "segmentation.sqlite3"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # used with fullmatch: no trailing newline


@contextmanager
def connect(root: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(root / DATABASE, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # in WAL mode a commit then waits for no disk sync: a crashed process still leaves
        # a consistent database; only a power cut may undo the last commits
        connection.execute("PRAGMA synchronous=NORMAL")
        with connection:  # one transaction: committed on success, rolled back on error
            yield connection
    finally:
        connection.close()


def new_id() -> str:
    return secrets.token_urlsafe(16)


def check_id(value: str, field: str) -> None:
    """InvalidInputError unless `value` has the shape of an id (before any file is touched)."""
    if not ID_PATTERN.fullmatch(value):
        noun = {"jobId": "a job id", "keyId": "a key id"}.get(field, "an analysis id")
        raise InvalidInputError(
            Problem(f"{value[:40]!r} is not {noun} (22 characters of A-Z a-z 0-9 _ -)", field=field)
        )
