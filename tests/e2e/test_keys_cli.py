"""`segmentation keys` and the warning of `segmentation serve`, through the installed script.

The keys commands work on the data folder alone (no server); the keys they make are accepted
by a server on that folder in tests/e2e/test_auth_http.py.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_auth_http import KEY_PATTERN, SCRIPT, cli

WARNING = "anyone on the network can read, score and delete customer data"


def test_create_prints_the_key_once_and_list_never_shows_it(tmp_path: Path) -> None:
    created = cli(tmp_path, "keys", "create", "--tenant", "acme", "--name", "nightly-job",
                  "--scope", "read")  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY_PATTERN.fullmatch(key), created.stdout  # stdout: the key alone, for $(...)
    key_id = key[4:26]
    assert key_id in created.stderr and key not in created.stderr
    assert "shown this once" in created.stderr

    listed = cli(tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["id", "tenant", "name", "scope", "created", "last", "used",
                              "revoked"]  # fmt: skip
    assert row.split()[:4] == [key_id, "acme", "nightly-job", "read"]
    assert row.split()[-2:] == ["-", "-"]  # never used, not revoked
    assert key not in listed.stdout + listed.stderr
    assert key[26:] not in listed.stdout + listed.stderr

    revoked = cli(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert key_id in revoked.stdout
    row = cli(tmp_path, "keys", "list", "--tenant", "acme").stdout.splitlines()[1]
    assert row.split()[-1].endswith("Z")  # the revocation time
    assert cli(tmp_path, "keys", "list", "--tenant", "globex").stdout.splitlines()[1:] == []
    assert key.encode() not in (tmp_path / "segmentation.sqlite3").read_bytes()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        # a scope that does not exist (argparse)
        (("create", "--tenant", "acme", "--name", "x", "--scope", "root"), 2, "invalid choice"),
        # a tenant with a space
        (("create", "--tenant", "a b", "--name", "x", "--scope", "read"), 2, "is not a tenant"),
        # a key id that is no key's
        (("revoke", "A" * 22), 2, "no API key with id"),
        # not the shape of a key id
        (("revoke", "nightly-job"), 2, "is not a key id"),
    ],
)
def test_keys_errors_are_clear(tmp_path: Path, args: tuple[str, ...], status: int,
                               message: str) -> None:  # fmt: skip
    result = cli(tmp_path, "keys", *args)
    assert result.returncode == status, result.stderr
    assert message in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve_output(tmp_path: Path, host: str, auth: str) -> str:
    """What `segmentation serve` writes before uvicorn has started its process: the warning
    comes first, if at all. The server is stopped as soon as uvicorn speaks."""
    env = {**os.environ, "SEGMENTATION_DATA_DIR": str(tmp_path / "data"),
           "SEGMENTATION_AUTH": auth, "SEGMENTATION_WORKERS": "1"}  # fmt: skip
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--host", host, "--port", str(_free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 120
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            while b"Started server process" not in seen and time.monotonic() < deadline:
                if not selector.select(timeout=1.0):
                    assert process.poll() is None, seen.decode()
                    continue
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        process.stderr.close()
    text = seen.decode(errors="replace")
    assert "Started server process" in text, text
    return text


@pytest.mark.parametrize(
    ("host", "auth", "warned"),
    [
        # every interface, no keys: the warning
        ("0.0.0.0", "off", True),
        # the loopback address (the default): none
        ("127.0.0.1", "off", False),
        # every interface with keys required: none
        ("0.0.0.0", "keys", False),
    ],
)
def test_serve_warns_when_anyone_on_the_network_gets_in(
    tmp_path: Path, host: str, auth: str, warned: bool
) -> None:
    output = _serve_output(tmp_path, host, auth)
    assert (WARNING in output) is warned, output
    if warned:
        assert output.index(WARNING) < output.index("Started server process")
        assert "SEGMENTATION_AUTH=keys" in output
