"""The ``penchant`` command."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from penchant.errors import PenchantError, RunInterrupted


def _store(args: argparse.Namespace) -> Any:
    from penchant.store import RunStore

    return RunStore(args.store)


def cmd_run(args: argparse.Namespace) -> int:
    from penchant import distributed

    joined = distributed.init_from_env()  # under torchrun, or a process --nproc started
    if args.nproc > 1 and not joined:
        _store(args)  # made once here, not raced for by the processes
        # Each process runs this same command line and joins the group from the
        # environment set up for it, as it would under torchrun.
        return distributed.launch(args.nproc, main, args.argv)
    from penchant.pipeline import load_pipeline
    from penchant.plugins import default_registry
    from penchant.progress import ProgressPrinter
    from penchant.report import metrics_table
    from penchant.run_data import stored_pipeline
    from penchant.runner import Runner

    registry = default_registry()
    _warn_failures(registry)
    store = _store(args)
    if args.resume is None:
        if args.pipeline is None:
            args.usage("give a pipeline file, or --resume RUN_ID")
        pipeline = load_pipeline(args.pipeline, registry, args.set or ())
    else:
        if args.pipeline is not None or args.set or args.out:
            args.usage("--resume continues a run with the pipeline and folder it recorded; "
                       "give no pipeline file, --set or --out with it")
        pipeline = stored_pipeline(store, args.resume, registry)
    runner = Runner(pipeline, registry, store, args.out, [ProgressPrinter()],
                    device=args.device, resume=args.resume)

    def terminate(signum: int, _frame: Any) -> None:
        reason = f"terminated by signal {signal.Signals(signum).name}"
        if runner.cancel.is_set():  # asked twice: stop now, wherever the run is
            raise RunInterrupted(reason)
        runner.stop(reason)

    signal.signal(signal.SIGTERM, terminate)
    result = runner.run()
    if result is None:  # a training process that is not the leader
        return 0
    print(metrics_table(result.metrics))
    print(f"\nrun {result.run.id} finished; results in {result.run.out_dir}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from penchant.plugins import default_registry
    from penchant.store import penchant_home
    from penchant.tune import load_space, tune

    registry = default_registry()
    space = load_space(args.space)
    out = args.out or args.pipeline.with_name(f"{args.pipeline.stem}.tuned.toml")
    work = args.work or penchant_home() / "tuning" / args.pipeline.stem

    def report(number: int, chosen: dict, value: float) -> None:
        shown = ", ".join(f"{k}={v!r}" for k, v in chosen.items())
        print(f"trial {number}: {value:.4f}  {shown}", flush=True)

    result = tune(args.pipeline, space, args.trials, registry, _store(args), out, work,
                  on_trial=report)
    print(f"best {result.best_value:.4f} (run {result.best_run}): "
          + ", ".join(f"{k}={v!r}" for k, v in result.best_params.items()))
    print(f"written to {result.pipeline_path}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from penchant.backtest import backtest
    from penchant.pipeline import parse_value
    from penchant.plugins import default_registry
    from penchant.progress import ProgressPrinter
    from penchant.report import backtest_table

    registry = default_registry()
    _warn_failures(registry)
    cutoffs = [parse_value(text) for text in args.cutoffs]  # as --set reads a cutoff
    result = backtest(args.pipeline, cutoffs, registry, _store(args), args.set or (),
                      [ProgressPrinter()], args.device)
    print(backtest_table(result.metrics))
    print("\nruns " + ", ".join(str(r.run.id) for r in result.runs)
          + " finished; each is in the run store (penchant runs show ID)")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from penchant.report import headline, table

    store = _store(args)
    rows = [[r.id, r.name, r.model, r.status, r.started_at.strftime("%Y-%m-%d %H:%M"),
             headline(store.metrics(r.id).get(r.model, {}))]
            for r in store.runs(limit=args.limit)]
    print(table(rows, ["id", "pipeline", "model", "status", "started", "result"]))
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from penchant.report import LIGHT, horizon_order, metrics_table, versus_table
    from penchant.run_data import run_metrics

    store = _store(args)
    r = store.run(args.id)
    print(f"run {r.id}: {r.name} ({r.model}) — {r.status}")
    print(f"started {r.started_at}" + (f", ended {r.finished_at}" if r.finished_at else ""))
    print(f"folder: {r.out_dir}")
    if r.error:
        print(f"error: {r.error}")
    metrics = store.metrics(r.id)
    if metrics:
        horizons = sorted(next(iter(metrics.values())), key=horizon_order)
        print()
        print(metrics_table({"results": metrics, "horizons": horizons, "model": r.model,
                             "cutoff": (r.summary or {}).get("stages", {})
                             .get("split", {}).get("cutoff", "?")}))
        versus = run_metrics(store, r.id).get("versus")
        if versus and versus.get("ratios"):
            print("\n" + versus_table(versus, [h for h in horizons if not h.endswith(LIGHT)],
                                      r.model))
    for name, path in store.artifacts(r.id).items():
        print(f"{name}: {path}")
    if args.pipeline:
        print("\n" + r.pipeline)
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    from penchant.artifacts import delete_run

    record, left = delete_run(_store(args), args.id, args.with_feedback, args.keep_files)
    print(f"deleted run {record.id} ({record.name}, {record.model}) from the run store")
    if args.keep_files or not record.out_dir:
        return 0
    if left:
        print(f"removed its files; {record.out_dir} keeps {len(left)} it did not write: "
              + ", ".join(p.name for p in left[:5]) + (" …" if len(left) > 5 else ""))
    else:
        print(f"removed its folder {record.out_dir}")
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from penchant.report import compare_table, paired_runs_table
    from penchant.run_data import paired_users

    store = _store(args)
    columns = []
    for run_id in args.ids:
        r = store.run(run_id)
        stages = (r.summary or {}).get("stages", {})
        split = stages.get("split", {})
        merged = "" if "feedback" not in stages else (
            f", {stages['feedback'].get('merged', 0)} feedback event(s) merged "
            f"({split.get('feedback_train', 0)} before the cutoff)")
        print(f"run {r.id}: {r.name} ({r.model}), {r.status}, cutoff "
              f"{split.get('cutoff', '?')}{merged}")
        columns.append((f"run {r.id} {r.model}", store.metrics(r.id).get(r.model, {})))
    print()
    print(compare_table(columns, None if args.all else ("ndcg", "recall", "hr", "users")))
    paired = paired_users(store, *args.ids) if len(args.ids) == 2 else None
    if paired and paired["ratios"]:
        first, second = (label for label, _ in columns)
        print("\n" + paired_runs_table(paired, first, second))
    return 0


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from penchant.plugins import default_registry
    from penchant.report import table

    registry = default_registry()
    rows = [[c.kind, c.name, c.package, c.version, c.cls.description]
            for c in registry.all()]
    print(table(rows, ["kind", "name", "package", "version", "description"]))
    if args.verbose:
        from penchant.hookspecs import API_VERSION

        print(f"\nplugins (this penchant provides plugin API {API_VERSION}):")
        for plugin in registry.plugins():
            api = f", needs API {plugin['api']}" if plugin["api"] else ""
            print(f"  {plugin['plugin']} — {plugin['package']} {plugin['version']}{api}")
            print(f"    from {plugin['module']}")
            print(f"    hooks: {', '.join(plugin['hooks']) or 'none'}")
        for label in registry.skipped:
            print(f"  {label} — not loaded (PENCHANT_PLUGINS)")
    if registry.failures:
        print("\nplugins that failed to load:")
        for failure in registry.failures:
            print(f"  {failure}")
    return 0


def cmd_plugins_info(args: argparse.Namespace) -> int:
    from penchant.plugins import default_registry

    registry = default_registry()
    found = registry.find(args.name)
    if not found:
        names = ", ".join(c.name for c in registry.all())
        raise PenchantError(f"no component named {args.name!r}; installed: {names}")
    for info in found:
        print(f"{info.name} ({info.kind}) from {info.package} {info.version} "
              f"[{info.plugin}]")
        print(f"  {info.cls.description}")
        doc = (info.cls.__doc__ or "").strip()
        if doc and doc != info.cls.description:
            print("  " + "\n  ".join(doc.splitlines()))
        print("  parameters:")
        for p in info.cls.schema():
            print(f"    {p.describe()}")
    return 0


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from penchant.scaffold import create_plugin, names_for

    names = names_for(args.name, args.kind)  # a bad name or kind fails before the registry
    from penchant.plugins import default_registry

    written = create_plugin(args.name, args.kind, args.dir,
                            taken=default_registry().names(args.kind))
    folder = args.dir / args.name
    print(f"wrote {names['kind']} plugin {names['dist']} (component {names['component']!r}) "
          f"to {folder}:")
    for path in written:
        print(f"  {path.relative_to(folder)}")
    print(f"\nnext: cd {folder} && pip install -e '.[test]' && pytest\n"
          f"      then `penchant plugins list` shows {names['component']!r}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from penchant.trained import TrainedRun

    trained = TrainedRun(args.run_id, _store(args))
    if args.explain:
        from penchant.explain import render

        explained = trained.explain(args.user, args.k, args.top)
        if args.json:
            print(json.dumps([{"user": args.user, **e.to_dict()} for e in explained]))
        else:
            print(render(explained))
        return 0
    frame = trained.recommend(args.user, args.k)
    if args.json:
        print(json.dumps(frame.to_dict(orient="records"), default=str))
    else:
        print(frame.to_string(index=False))
    return 0


def cmd_sources_test(args: argparse.Namespace) -> int:
    from penchant.pipeline import load_pipeline
    from penchant.plugins import default_registry
    from penchant.probe import probe_source

    registry = default_registry()
    _warn_failures(registry)
    pipeline = load_pipeline(args.pipeline, registry, args.set or ())
    probe = probe_source(pipeline, registry, rows=args.rows, count=not args.no_count)
    print(probe.render())
    return 1 if probe.missing else 0


def cmd_export(args: argparse.Namespace) -> int:
    import os

    import pandas as pd

    from penchant.errors import StoreError
    from penchant.export import export_recommendations
    from penchant.secrets import mask_url

    store = _store(args)
    run = store.run(args.run_id)
    path = store.artifacts(run.id).get("recommendations")
    if run.status != "finished" or path is None or not Path(path).is_file():
        raise StoreError(f"run {run.id} ({run.status}) has no recommendations to export")
    url = args.to
    if args.to_env:
        url = os.environ.get(args.to_env)
        if not url:
            raise PenchantError(f"environment variable {args.to_env} is not set")
    frame = pd.read_csv(path, dtype={"user": str, "item": str})
    if args.reveal_ids:
        from penchant import pseudonyms

        frame = pseudonyms.reveal(frame, "user", pseudonyms.key_from_env(args.key_env),
                                  pseudonyms.read_ids(args.reveal_ids),
                                  f"run {run.id} recommendations")
    written = export_recommendations(frame, run.id, url, args.table, args.mode, args.database)
    print(f"exported {written} recommendations of run {run.id} to {mask_url(url)} "
          f"{args.table} ({args.mode})")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from penchant_gui.app import run_app
    except ModuleNotFoundError as exc:
        raise PenchantError(f"the desktop app needs {exc.name}: pip install "
                            "'penchant[gui]'") from None
    return run_app(args.pipeline, args.store)


def cmd_generate(args: argparse.Namespace) -> int:
    from penchant.demo_shop import generate

    paths = generate(args.out_dir, users=args.users, items=args.items, months=args.months,
                     seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="penchant", description="Forecast shoppers' interests and recommend from them.")
    parser.add_argument("--store", help="run store SQLAlchemy URL (default: $PENCHANT_STORE "
                                        "or a SQLite file under $PENCHANT_HOME)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline file headless")
    run.add_argument("pipeline", type=Path, nargs="?")
    run.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE",
                     help="override a pipeline value, e.g. --set model.epochs=20")
    run.add_argument("--out", type=Path, help="folder for the run's files")
    run.add_argument("--resume", type=int, metavar="RUN_ID",
                     help="continue an interrupted or failed run from its last checkpoint, "
                          "with the pipeline it recorded")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--nproc", type=_process_count, default=1, metavar="N",
                     help="train on N processes of this machine with DistributedDataParallel "
                          "(gloo on CPUs, NCCL with one GPU each); torchrun starts them on "
                          "several machines")
    run.set_defaults(func=cmd_run, usage=run.error)

    tune = sub.add_parser("tune", help="search hyper-parameters; each trial is a run")
    tune.add_argument("pipeline", type=Path)
    tune.add_argument("--space", type=Path, required=True, help="search space TOML file")
    tune.add_argument("--trials", type=int, default=20)
    tune.add_argument("--out", type=Path, help="where the best pipeline is written "
                                                "(default: PIPELINE.tuned.toml)")
    tune.add_argument("--work", type=Path, help="folder for the trials' run folders")
    tune.set_defaults(func=cmd_tune)

    back = sub.add_parser("backtest", help="run a pipeline from several cutoffs and pool "
                                           "its results per horizon")
    back.add_argument("pipeline", type=Path)
    back.add_argument("--cutoffs", nargs="+", required=True, metavar="CUTOFF",
                      help="quantiles of event times (0.6 0.7 0.8) or dates, each replacing "
                           "[evaluation] cutoff for one run")
    back.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE",
                      help="override a pipeline value for every run, as for run")
    back.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    back.set_defaults(func=cmd_backtest)

    runs = sub.add_parser("runs", help="list and inspect recorded runs").add_subparsers(
        dest="runs_command", required=True)
    runs_list = runs.add_parser("list", help="recent runs")
    runs_list.add_argument("--limit", type=int, default=20)
    runs_list.set_defaults(func=cmd_runs_list)
    runs_show = runs.add_parser("show", help="one run in full")
    runs_show.add_argument("id", type=int)
    runs_show.add_argument("--pipeline", action="store_true", help="print its pipeline too")
    runs_show.set_defaults(func=cmd_runs_show)
    runs_compare = runs.add_parser("compare", help="runs' metrics side by side per horizon")
    runs_compare.add_argument("ids", type=int, nargs="+", metavar="RUN_ID")
    runs_compare.add_argument("--all", action="store_true",
                              help="every metric, not only ndcg, recall, hit rate and users")
    runs_compare.set_defaults(func=cmd_runs_compare)
    runs_delete = runs.add_parser("delete", help="forget a run and remove the files it wrote")
    runs_delete.add_argument("id", type=int)
    runs_delete.add_argument("--with-feedback", action="store_true",
                             help="also delete the feedback given on its lists (refused "
                                  "without this when there is any)")
    runs_delete.add_argument("--keep-files", action="store_true",
                             help="forget the run but leave its folder as it is")
    runs_delete.set_defaults(func=cmd_runs_delete)

    plugins = sub.add_parser("plugins", help="installed components").add_subparsers(
        dest="plugins_command", required=True)
    listing = plugins.add_parser("list", help="every component and failed plugin")
    listing.add_argument("--verbose", "-v", action="store_true",
                         help="also each plugin's origin and the hooks it implements")
    listing.set_defaults(func=cmd_plugins_list)
    info = plugins.add_parser("info", help="a component's description and parameters")
    info.add_argument("name")
    info.set_defaults(func=cmd_plugins_info)
    new = plugins.add_parser("new", help="write a new plugin package to start from")
    new.add_argument("name", help="distribution name, e.g. penchant-acme-boost")
    new.add_argument("--kind", required=True,
                     help="source, preprocessor, features, model or recommender")
    new.add_argument("--dir", type=Path, default=Path("."),
                     help="folder to create NAME in (default: the current one)")
    new.set_defaults(func=cmd_plugins_new)

    rec = sub.add_parser("recommend", help="a user's recommendations from a finished run")
    rec.add_argument("run_id", type=int)
    rec.add_argument("--user", required=True)
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--json", action="store_true", help="print JSON records")
    rec.add_argument("--explain", action="store_true",
                     help="with each item, the history items and categories behind it")
    rec.add_argument("--top", type=int, default=5,
                     help="history items shown per item with --explain (default: 5)")
    rec.set_defaults(func=cmd_recommend)

    sources = sub.add_parser("sources", help="check data sources").add_subparsers(
        dest="sources_command", required=True)
    probe = sources.add_parser("test", help="connect to a pipeline's source, read a sample "
                                            "and count its rows, before a long run")
    probe.add_argument("pipeline", type=Path)
    probe.add_argument("--rows", type=int, default=10, help="events to show (default 10)")
    probe.add_argument("--no-count", action="store_true",
                       help="skip counting the rows (a count can take a while)")
    probe.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE",
                       help="override a pipeline value, e.g. source.table=events_2024")
    probe.set_defaults(func=cmd_sources_test)

    export = sub.add_parser("export", help="write a run's recommendations to a database "
                                           "table or MongoDB collection, all or nothing")
    export.add_argument("run_id", type=int)
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="URL", help="SQLAlchemy or mongodb:// URL")
    where.add_argument("--to-env", metavar="NAME",
                       help="environment variable holding the URL (keeps the password out "
                            "of shell history and process lists)")
    export.add_argument("--table", required=True, help="table (or collection) to write")
    export.add_argument("--database", help="MongoDB database, when the URL names none")
    export.add_argument("--mode", choices=("replace", "append"), default="replace",
                        help="replace the table's rows (default) or add to them")
    export.add_argument("--reveal-ids", type=Path, metavar="FILE",
                        help="for a run with pseudonymized users: the shop's real user ids, "
                             "one per line, to export the lists under")
    export.add_argument("--key-env", default="PENCHANT_PSEUDONYM_KEY", metavar="NAME",
                        help="environment variable holding the pseudonym key the run used "
                             "(default: PENCHANT_PSEUDONYM_KEY)")
    export.set_defaults(func=cmd_export)

    from penchant.feedback_cli import add_commands as add_feedback_commands

    add_feedback_commands(sub)

    gui = sub.add_parser("gui", help="start the desktop app")
    gui.add_argument("pipeline", nargs="?", type=Path, help="a pipeline file to open")
    gui.set_defaults(func=cmd_gui)

    gen = sub.add_parser("generate", help="generate data").add_subparsers(
        dest="what", required=True)
    shop = gen.add_parser("demo-shop", help="a synthetic shop whose interests evolve")
    shop.add_argument("out_dir", type=Path)
    shop.add_argument("--users", type=int, default=3000)
    shop.add_argument("--items", type=int, default=1000)
    shop.add_argument("--months", type=int, default=18)
    shop.add_argument("--seed", type=int, default=0)
    shop.set_defaults(func=cmd_generate)
    return parser


def _warn_failures(registry: Any) -> None:
    for failure in registry.failures:
        print(f"warning: plugin skipped: {failure}", file=sys.stderr)


def _process_count(text: str) -> int:
    """--nproc: a whole number of processes, at least one."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except PenchantError as exc:
        if isinstance(exc, RunInterrupted):
            print(f"\ninterrupted: {exc}", file=sys.stderr)
            return 130
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
