"""The command line: `segmentation analyze | assign | serve`. It only parses and calls.

    segmentation analyze customers.csv --out results/ [--algorithm kmeans] [--k 5]
        [--features a,b] [--exclude c] [--random-state 0]
    segmentation analyze orders.csv --transactions --customer-id CustomerID --date InvoiceDate
        (--amount Total | --quantity Quantity --price UnitPrice) [--invoice InvoiceNo] --out r/
    segmentation assign --analysis results/ new_customers.csv [--out scored.csv]
    segmentation serve [--host 127.0.0.1] [--port 8000]

`analyze` writes analysis.json (the /api/analyze response), assignments.csv (one row per
customer), recommendations.md, report.html, the five charts as PNG and the fitted model
(model.json, model.npz) that `assign` reads. Errors go to stderr with exit status 2 (bad
input) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from segmentation.analysis import analyze
from segmentation.api.convert import analysis_to_wire, dumps
from segmentation.assign import assign, assignment_table, fitted_of
from segmentation.charts import CHARTS, chart_data_of, render
from segmentation.errors import SegmentationError
from segmentation.jobs.files import detect_kind, read_customers
from segmentation.recommend import recommend
from segmentation.report import render_report
from segmentation.rfm import customers_from_transactions
from segmentation.storage.model_file import load_fitted, save_fitted

__all__ = ["main"]

BAR_WIDTH = 30


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SegmentationError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(8192)
    return read_customers(path, detect_kind(head, path.name))


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


def _markdown(analysis_path: Path, frame_rows: int, advice: list[str]) -> str:
    lines = [f"# Recommendations for {analysis_path.name}", "", f"{frame_rows} customers.", ""]
    lines += [f"{i}. {text}" for i, text in enumerate(advice, start=1)]
    return "\n".join(lines) + "\n"


def _customers(args: argparse.Namespace) -> pd.DataFrame:
    """The file's rows, or with --transactions one row per customer derived from its orders."""
    frame = _read(args.file)
    if not args.transactions:
        return frame
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
    return derived.customers


def run_analyze(args: argparse.Namespace) -> int:
    frame = _customers(args)
    progress = _ProgressBar(sys.stderr.isatty() and not args.quiet)
    analysis = analyze(
        frame,
        algorithm=args.algorithm,
        n_clusters=args.k,
        features=args.features,
        exclude=args.exclude or (),
        random_state=args.random_state,
        progress=progress,
    )
    progress.done()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cells = frame.astype(object).where(frame.notna(), None)
    records = [{str(k): v for k, v in row.items()} for row in cells.to_dict(orient="records")]
    wire = analysis_to_wire(analysis, records)
    (out / "analysis.json").write_bytes(dumps(wire))
    names = [segment.name for segment in analysis.segments]
    assignment_table(
        analysis.labels, analysis.confidence, analysis.ambiguous, names, analysis.customer_ids
    ).to_csv(out / "assignments.csv", index=False)
    advice = [r.text for r in recommend(analysis)]
    (out / "recommendations.md").write_text(_markdown(args.file, len(frame), advice))
    save_fitted(fitted_of(analysis), out)
    charts = chart_data_of(analysis)
    for name in CHARTS:
        (out / f"{name}.png").write_bytes(render(name, charts, "png"))
    title = f"Customer segments — {args.file.name}"
    (out / "report.html").write_text(render_report(wire, charts, advice, title))
    summary = ", ".join(f"{s.name} ({s.size})" for s in analysis.segments)
    print(f"{len(analysis.segments)} segments: {summary}; accuracy {analysis.accuracy:.2f}")
    print(
        f"written to {out}/: analysis.json, assignments.csv, recommendations.md, "
        "report.html, the charts (*.png), model.*"
    )
    return 0


def run_assign(args: argparse.Namespace) -> int:
    if not (args.analysis / "model.json").is_file():
        raise SegmentationError(f"{args.analysis}: no model.json (run `segmentation analyze`)")
    fitted = load_fitted(args.analysis)
    frame = _read(args.file)
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


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run("segmentation.api.app:create_app", factory=True, host=args.host, port=args.port)
    return 0


def _fields(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="segmentation", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)

    analyze_cmd = commands.add_parser("analyze", help="segment a customer file")
    analyze_cmd.add_argument("file", type=Path, help="CSV (any delimiter), Parquet or JSON Lines")
    analyze_cmd.add_argument("--out", type=Path, required=True, help="folder for the results")
    analyze_cmd.add_argument(
        "--algorithm", default="auto", choices=("auto", "kmeans", "hierarchical", "dbscan")
    )
    analyze_cmd.add_argument("--k", type=int, default=None, help="a fixed number of segments")
    analyze_cmd.add_argument("--features", type=_fields, help="comma-separated fields to use")
    analyze_cmd.add_argument("--exclude", type=_fields, help="comma-separated fields to leave out")
    analyze_cmd.add_argument("--random-state", type=int, default=0)
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
    orders.add_argument("--invoice", help="invoice numbers; a leading C marks a cancellation")
    orders.add_argument("--as-of", help="the day recency counts to (default: the last date)")
    analyze_cmd.set_defaults(run=run_analyze)

    assign_cmd = commands.add_parser("assign", help="score new customers into saved segments")
    assign_cmd.add_argument("--analysis", type=Path, required=True, help="an `analyze` folder")
    assign_cmd.add_argument("file", type=Path)
    assign_cmd.add_argument("--out", type=Path, default=None, help="CSV file (default stdout)")
    assign_cmd.set_defaults(run=run_assign)

    serve_cmd = commands.add_parser("serve", help="run the HTTP service")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.set_defaults(run=run_serve)
    return root


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
