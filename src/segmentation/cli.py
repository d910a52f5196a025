"""The command line: `segmentation analyze | assign | serve | keys | audit`. It only parses and
calls.

    segmentation analyze customers.csv --out results/ [--algorithm kmeans] [--k 5]
        [--features a,b] [--exclude c] [--random-state 0] [--previous DIR_OR_ID]
    segmentation analyze orders.csv --transactions --customer-id CustomerID --date InvoiceDate
        (--amount Total | --quantity Quantity --price UnitPrice) [--invoice InvoiceNo] --out r/
    segmentation assign --analysis results/ new_customers.csv [--out scored.csv]
    segmentation serve [--host 127.0.0.1] [--port 8000]
    segmentation keys create --tenant acme --name nightly-job --scope read|write|admin
    segmentation keys list [--tenant acme]
    segmentation keys revoke KEY_ID
    segmentation audit [--tenant acme] [--since EPOCH_SECONDS] [--limit 100]

`analyze` writes analysis.json (the /api/analyze response), assignments.csv (one row per
customer), recommendations.md, report.html, the five charts as PNG and the fitted model
(model.json, model.npz) that `assign` reads. `keys` and `audit` work on the data folder
(SEGMENTATION_DATA_DIR) of a server with SEGMENTATION_AUTH=keys, for any tenant: `keys create`
prints the key once, on stdout alone (`KEY=$(segmentation keys create ...)`). Errors go to
stderr with exit status 2 (bad input) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from segmentation.analysis import analyze
from segmentation.assign import assign, assignment_table
from segmentation.auth import ApiKey, AuditEvent, AuditLog, KeyStore, Scope
from segmentation.config import Settings
from segmentation.errors import SegmentationError
from segmentation.files import CustomerFile, detect_kind, read_customer_file
from segmentation.options import OPTIONS, AnalysisOptions, OptionSpec, describe_default
from segmentation.pipeline.lineage import PreviousSegmentation, lineage_summary
from segmentation.pipeline.search import format_score
from segmentation.results import Analysis
from segmentation.rfm import customers_from_transactions
from segmentation.service import previous_of, write_results
from segmentation.storage.model_file import load_fitted

__all__ = ["main"]

BAR_WIDTH = 30


def _read(path: Path, header: bool | None = None) -> CustomerFile:
    if not path.is_file():
        raise SegmentationError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(8192)
    return read_customer_file(path, detect_kind(head, path.name), header=header)


class _ProgressBar:
    """`[#######-------] 45% search` on stderr, redrawn in place; silent when not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        sys.stderr.write(f"\r[{bar}] {fraction:4.0%} {stage:<10}")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            self("done", 1.0)
            sys.stderr.write("\n")


def _customers(args: argparse.Namespace) -> CustomerFile:
    """The file's rows, or with --transactions one row per customer derived from its orders."""
    read = _read(Path(args.file), args.header)
    if not args.transactions:
        return read
    frame = read.frame
    if args.customer_id is None or args.date is None:
        raise SegmentationError("--transactions needs --customer-id and --date")
    derived = customers_from_transactions(
        frame, customer_id=args.customer_id, date=args.date, amount=args.amount,
        quantity=args.quantity, price=args.price, invoice=args.invoice, as_of=args.as_of,
    )  # fmt: skip
    print(
        f"{len(frame):,} transactions -> {len(derived.customers):,} customers as of "
        f"{derived.as_of.date()} ({derived.rows_without_customer:,} rows without a customer "
        f"id, {derived.return_rows:,} cancellations or returns, "
        f"{derived.customers_with_only_returns:,} customers with only returns left out)"
    )
    return CustomerFile(derived.customers, read.notes)


def _options(args: argparse.Namespace) -> AnalysisOptions:
    """The analysis options from the flags generated from `OPTIONS` (unset flags: defaults)."""
    values = {
        spec.name: getattr(args, spec.name)
        for spec in OPTIONS
        if spec.cli is not None and getattr(args, spec.name) is not None
    }
    if getattr(args, "header", None) is not None:
        values["header"] = args.header
    return AnalysisOptions(**values)


def _analyze_on_spark(
    args: argparse.Namespace, options: AnalysisOptions, previous: PreviousSegmentation | None
) -> Analysis:
    """--engine spark: DATA is any path or URI Spark reads; the driver holds a sample only."""
    from segmentation import spark

    if args.transactions:
        raise SegmentationError("--engine spark does not take --transactions yet")
    progress = _ProgressBar(sys.stderr.isatty() and not args.quiet)
    analysis = spark.analyze(
        args.file, spark=spark.session(args.spark_master), options=options,
        progress=progress, previous=previous,
    )  # fmt: skip
    progress.done()
    return analysis


def run_analyze(args: argparse.Namespace) -> int:
    options = _options(args)
    previous = None
    if args.previous is not None:
        previous = previous_of(args.previous, Settings())
        if not Path(args.previous).is_dir():
            options = replace(options, previous_analysis_id=args.previous)
    if args.engine == "spark":
        analysis = _analyze_on_spark(args, options, previous)
        written = write_results(analysis, [], args.out, args.file.rstrip("/").rsplit("/", 1)[-1])
        _print_summary(analysis, args.out, written)
        return 0
    read = _customers(args)
    frame = read.frame
    progress = _ProgressBar(sys.stderr.isatty() and not args.quiet)
    analysis = analyze(
        frame, options=options, progress=progress, previous=previous, input_notes=read.notes
    )
    progress.done()
    written = write_results(analysis, frame, args.out, Path(args.file).name)
    _print_summary(analysis, args.out, written)
    return 0


def _print_summary(analysis: Analysis, out: Path, written: Sequence[str]) -> None:
    summary = ", ".join(f"{s.name} ({s.size})" for s in analysis.segments)
    accuracy = format_score(analysis.accuracy)
    print(f"{len(analysis.segments)} segments: {summary}; accuracy {accuracy}")
    if analysis.lineage is not None:
        names = {s.segment_id: s.name for s in analysis.segments}
        print(lineage_summary(analysis.lineage, names))
    print(f"written to {out}/: {', '.join(written)}")


def run_assign(args: argparse.Namespace) -> int:
    if not (args.analysis / "model.json").is_file():
        raise SegmentationError(f"{args.analysis}: no model.json (run `segmentation analyze`)")
    fitted = load_fitted(args.analysis)
    frame = _read(args.file).frame
    scored = assign(fitted, frame)
    id_field = fitted.encoder.schema.id_field
    ids = frame[id_field].tolist() if id_field is not None and id_field in frame else None
    result = assignment_table(
        scored.labels, scored.confidence, scored.ambiguous, scored.segment_names, ids
    )
    for warning in scored.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.out is None:
        result.to_csv(sys.stdout, index=False)
    else:
        result.to_csv(args.out, index=False)
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if Settings().auth == "off" and not _loopback(args.host):
        print(
            f"warning: serving on {args.host} with SEGMENTATION_AUTH=off: anyone on the network "
            "can read, score and delete customer data. Set SEGMENTATION_AUTH=keys and create "
            "keys with `segmentation keys create`, or serve on 127.0.0.1.",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run("segmentation.api.app:create_app", factory=True, host=args.host, port=args.port)
    return 0


def _when(moment: float | None) -> str:
    return "-" if moment is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(moment))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password file
        return "unknown"


def _cli_event(event: str, key: ApiKey, command: str) -> AuditEvent:
    """A key event of the CLI in the audit trail: no HTTP status; the client is the user."""
    return AuditEvent(
        at=time.time(), key_id=None, tenant=key.tenant, method="CLI",
        path=f"segmentation keys {command}", status=None, client=f"cli:{_user()}",
        event=event, target=key.key_id,
    )  # fmt: skip


def run_keys(args: argparse.Namespace) -> int:
    settings = Settings()
    keys, audit = KeyStore(settings.data_dir), AuditLog(settings.data_dir, settings.audit_days)
    if args.keys_command == "create":
        new = keys.create(args.tenant, args.name, args.scope)
        audit.record(_cli_event("key.created", new.key, "create"))
        print(
            f"created key {new.key.key_id} of tenant {new.key.tenant!r} ({new.key.scope.value}, "
            f"{new.key.name!r}); it is shown this once, below, and only its hash is stored",
            file=sys.stderr,
        )
        print(new.secret)
    elif args.keys_command == "revoke":
        revoked = keys.revoke(args.key_id)
        audit.record(_cli_event("key.revoked", revoked, "revoke"))
        print(f"revoked key {revoked.key_id} of tenant {revoked.tenant!r}")
    else:
        columns = ("id", "tenant", "name", "scope", "created", "last used", "revoked")
        rows = [
            (k.key_id, k.tenant, k.name, k.scope.value, _when(k.created_at),
             _when(k.last_used_at), _when(k.revoked_at))
            for k in keys.list(args.tenant)
        ]  # fmt: skip
        _print_table(columns, rows)
    return 0


def run_audit(args: argparse.Namespace) -> int:
    settings = Settings()
    events = AuditLog(settings.data_dir, settings.audit_days).read(
        args.tenant, args.since, args.limit
    )
    columns = ("time", "key", "tenant", "method", "path", "status", "client", "event", "target")
    rows = [
        (_when(e.at), e.key_id or "-", e.tenant or "-", e.method, e.path,
         "-" if e.status is None else str(e.status), e.client or "-", e.event, e.target or "-")
        for e in events
    ]  # fmt: skip
    _print_table(columns, rows)
    return 0


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    for row in (columns, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _fields(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _pair(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    try:
        return int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX (for example 2,12)") from None


def _add_option_flag(command: argparse.ArgumentParser, spec: OptionSpec) -> None:
    """One analysis option as a flag, typed and documented from its declaration."""
    assert spec.cli is not None
    kinds: dict[str, dict[str, Any]] = {
        "choice": {"choices": spec.choices}, "int": {"type": int}, "float": {"type": float},
        "int_pair": {"type": _pair, "metavar": "MIN,MAX"},
        "names": {"type": _fields, "metavar": "A,B"},
    }  # fmt: skip
    # a list may be given at once (A,B) or a flag at a time (--outcome A --outcome B)
    repeatable: dict[str, Any] = {"action": "extend"} if spec.kind == "names" else {}
    command.add_argument(
        spec.cli, dest=spec.name, default=None,
        help=f"{spec.description} (default: {describe_default(spec)})", **kinds[spec.kind],
        **repeatable,
    )  # fmt: skip


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="segmentation", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    _add_analyze_command(commands)

    assign_cmd = commands.add_parser("assign", help="score new customers into saved segments")
    assign_cmd.add_argument("--analysis", type=Path, required=True, help="an `analyze` folder")
    assign_cmd.add_argument("file", type=Path)
    assign_cmd.add_argument("--out", type=Path, default=None, help="CSV file (default stdout)")
    assign_cmd.set_defaults(run=run_assign)

    serve_cmd = commands.add_parser("serve", help="run the HTTP service")
    serve_cmd.add_argument(
        "--host", default="127.0.0.1",
        help="the address to bind (default 127.0.0.1; another one with SEGMENTATION_AUTH=off "
        "lets anyone on the network in, and a warning says so)",
    )  # fmt: skip
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.set_defaults(run=run_serve)
    _add_keys_commands(commands)
    return root


def _add_analyze_command(commands: Any) -> None:
    analyze_cmd = commands.add_parser("analyze", help="segment a customer file")
    analyze_cmd.add_argument(
        "file", help="CSV (any delimiter), Parquet or JSON Lines (with --engine spark: any "
        "path or URI Spark reads)",
    )  # fmt: skip
    analyze_cmd.add_argument("--out", type=Path, required=True, help="folder for the results")
    for spec in OPTIONS:
        if spec.cli is not None:
            _add_option_flag(analyze_cmd, spec)
    analyze_cmd.add_argument(
        "--previous", metavar="DIR_OR_ID",
        help="the previous analysis of the same customers: an `analyze` results folder or "
        "the id of a stored analysis (SEGMENTATION_DATA_DIR); segments keep their ids and "
        "names, and analysis.json gets the lineage (migration and drift)",
    )  # fmt: skip
    analyze_cmd.add_argument(
        "--engine", choices=("local", "spark"), default="local",
        help="spark: DATA is any path or URI Spark reads (Parquet file or folder, CSV, JSON "
        "Lines), analysed on Apache Spark (pip install 'segmentation[spark]')",
    )  # fmt: skip
    analyze_cmd.add_argument(
        "--spark-master", default=None, metavar="URL",
        help="with --engine spark: local[*] (default) or spark://host:7077",
    )  # fmt: skip
    analyze_cmd.add_argument(
        "--no-header", dest="header", action="store_const", const=False, default=None,
        help="the file's first row is data, not field names (default: detected; a first row "
        "that looks like data gets the names column_1, column_2, ...)",
    )  # fmt: skip
    analyze_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    orders = analyze_cmd.add_argument_group(
        "transactions", "with --transactions the file holds orders; customers are derived (RFM)"
    )
    orders.add_argument("--transactions", action="store_true")
    orders.add_argument("--customer-id", help="the customer id column")
    orders.add_argument("--date", help="the order date column")
    orders.add_argument("--amount", help="the order value column (or --quantity and --price)")
    orders.add_argument("--quantity")
    orders.add_argument("--price")
    orders.add_argument(
        "--invoice",
        help='invoice numbers; "C" + digits among invoices of digits marks a cancellation',
    )
    orders.add_argument("--as-of", help="the day recency counts to (default: the last date)")
    analyze_cmd.set_defaults(run=run_analyze)


def _add_keys_commands(commands: Any) -> None:
    keys_cmd = commands.add_parser(
        "keys", help="API keys of SEGMENTATION_AUTH=keys (in SEGMENTATION_DATA_DIR)"
    )
    keys_commands = keys_cmd.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key; it is printed this once")
    create.add_argument("--tenant", required=True, help="whose analyses and jobs the key sees")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument(
        "--scope", required=True, choices=[s.value for s in Scope],
        help="read: GET; write: read plus analyses, jobs, assign, advice, deletes; "
        "admin: write plus keys and the audit trail",
    )  # fmt: skip
    listing = keys_commands.add_parser("list", help="id, tenant, name, scope, dates; no key")
    listing.add_argument("--tenant", default=None, help="only this tenant's keys")
    revoke = keys_commands.add_parser("revoke", help="revoke a key at once, for good")
    revoke.add_argument("key_id", metavar="KEY_ID")
    keys_cmd.set_defaults(run=run_keys)

    audit_cmd = commands.add_parser("audit", help="the audit trail, newest first")
    audit_cmd.add_argument("--tenant", default=None, help="only this tenant's rows")
    audit_cmd.add_argument("--since", type=float, default=None, metavar="EPOCH_SECONDS")
    audit_cmd.add_argument("--limit", type=int, default=100)
    audit_cmd.set_defaults(run=run_audit)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except SegmentationError as error:
        print(f"segmentation {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except OSError as error:
        print(f"segmentation {args.command}: {error}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
