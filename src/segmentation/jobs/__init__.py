"""Asynchronous analyses: jobs persisted in SQLite, run by a bounded pool of processes."""
