"""Stored analyses and fitted models: SQLite index, files beside it (no server needed)."""
