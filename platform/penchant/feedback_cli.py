"""``penchant feedback import | replay | report``: the feedback loop from the command line.

Kept apart from :mod:`penchant.cli` so that the feedback commands are one readable unit;
the work is done by :mod:`penchant.feedback_import`, :mod:`penchant.replay` and
:mod:`penchant.feedback_report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    """Add ``feedback`` and its subcommands to the ``penchant`` parser's subparsers."""
    commands = sub.add_parser("feedback", help="import, replay and report feedback on a "
                                               "run's recommendations").add_subparsers(
        dest="feedback_command", required=True)
    # Plain text, not the constants: building the parser must not import pandas.
    batch_help = "rows stored per transaction (default: $PENCHANT_FEEDBACK_BATCH or 5000)"

    imp = commands.add_parser("import", help="store feedback from a CSV or JSON-lines file "
                                             "(gzip ok); importing again stores nothing twice")
    imp.add_argument("file", type=Path)
    imp.add_argument("--run", type=int, dest="run_id",
                     help="the run the feedback is about, for rows that name none")
    imp.add_argument("--batch", type=int, help=batch_help)
    imp.set_defaults(func=cmd_import)

    replay = commands.add_parser("replay", help="simulate a run's feedback from what users "
                                                "did after its cutoff, and store it")
    replay.add_argument("run_id", type=int)
    replay.add_argument("--horizon", default="30d",
                        help="how long after the cutoff an interaction counts (default 30d)")
    replay.add_argument("--batch", type=int, help=batch_help)
    replay.set_defaults(func=cmd_replay)

    report = commands.add_parser("report", help="impressions, clicks, add-to-carts, "
                                                "purchases, CTR and conversion")
    report.add_argument("--run", type=int, action="append", dest="runs", metavar="RUN_ID",
                        help="only this run's feedback (repeat for several)")
    report.add_argument("--by", default="run",
                        help="group by run (default), model, position, category, day or week")
    report.set_defaults(func=cmd_report)


def _store(args: argparse.Namespace) -> Any:
    from penchant.store import RunStore

    return RunStore(args.store)


def _warn(errors: list[str]) -> None:
    for error in errors:
        print(f"warning: feedback observer failed: {error}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    from penchant.feedback_import import import_file

    result = import_file(args.file, _store(args), args.run_id, args.batch)
    recorded = result.recorded
    print(f"{args.file}: {result.rows} row(s) in {result.batches} batch(es): "
          f"{recorded.stored} stored, {recorded.skipped} already stored")
    if result.ignored_columns:
        print(f"ignored column(s): {', '.join(result.ignored_columns)}")
    _warn(recorded.observer_errors)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from penchant.replay import replay

    result = replay(_store(args), args.run_id, args.horizon, batch=args.batch)
    counts = ", ".join(f"{kind} {n}" for kind, n in result.counts.items())
    print(f"run {result.run_id}, cutoff {result.cutoff}, horizon {result.horizon}: {counts}")
    print(f"{result.recorded.stored} stored, {result.recorded.skipped} already stored")
    _warn(result.recorded.observer_errors)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from penchant.feedback_report import feedback_report
    from penchant.report import table

    report = feedback_report(_store(args), args.runs, args.by)
    frame = report.table
    if frame.empty:
        print("no feedback stored" + (f" for run(s) {', '.join(map(str, args.runs))}"
                                      if args.runs else ""))
    else:
        rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
        print(table(rows, list(frame.columns)))
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.4f}"
    return str(value)
