"""The ``c360`` command line. Heavy imports happen inside each command, not at start-up."""

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from c360_assets.tools.instance import dagster_home, load_env_file
from resources.private_files import private_dir


def _landing_copy(folder: Path) -> Path:
    """A landing zone c360 writes itself holds customers' data: created owner-only (an existing
    folder, which source systems may share, keeps its mode)."""
    return folder if folder.exists() else private_dir(folder)


def cmd_generate(args: argparse.Namespace) -> int:
    from c360_assets.tools.generate import run_from_args

    _landing_copy(Path(args.out))
    run_from_args(args)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import dagster as dg

    from c360_assets.definitions import all_models, build_definitions
    from c360_assets.tools.runner import (
        Progress,
        print_progress,
        refresh_bi_views,
        run_pipeline,
        summary_lines,
    )

    dagster_home()
    with dg.DagsterInstance.get() as instance:
        defs = build_definitions()
        report = run_pipeline(defs, instance, all_models(), Progress(print_progress))
        if report.ok and refresh_bi_views(defs, instance) is False:  # None: no Trino configured
            report.failed_runs.append("serving_job (Trino BI views)")
    print("\n".join(summary_lines(report)))
    for failure in report.failed_runs:
        print(f"FAILED run: {failure}", file=sys.stderr)
    for failure in report.failed_checks:
        print(f"FAILED blocking check: {failure}", file=sys.stderr)
    if not args.quiet:
        from c360_assets.tools.summary import print_summary

        print_summary()
    return 0 if report.ok else 1


def cmd_maintain(args: argparse.Namespace) -> int:
    import dagster as dg

    from c360_assets.definitions import build_definitions
    from c360_assets.defs.automation.maintenance import MAINTENANCE_JOB
    from c360_assets.tools.maintain import print_report, run_config

    dagster_home()
    with dg.DagsterInstance.get() as instance:
        job = build_definitions().resolve_job_def(MAINTENANCE_JOB)
        result = job.execute_in_process(
            instance=instance,
            run_config=run_config(args.keep_days, args.min_file_age_hours),
            raise_on_error=False,
        )
    if not result.success:
        print("c360 maintain failed: see the run's log in the Dagster UI", file=sys.stderr)
        return 1
    print_report(result.output_for_node("maintain_tables"))
    return 0


def cmd_stack(args: argparse.Namespace) -> int:
    from c360_assets.tools import stack

    if args.workers is not None and not args.cluster:
        print("c360 stack: --workers goes with --cluster", file=sys.stderr)
        return 2
    try:
        if args.action in ("up", "install"):
            # the flags choose the profile of `up`; the other actions use the last `up`'s
            config = stack.StackConfig.from_env(cluster=args.cluster, workers=args.workers)
            (stack.up if args.action == "up" else stack.install)(config)
        elif args.action == "down":
            stack.down()
        elif args.action == "status":
            print(stack.format_status(stack.status()))
        else:
            print("\n".join(stack.env_lines()))
    except stack.StackError as error:
        print(f"c360 stack {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from c360_assets.definitions import build_definitions
    from c360_assets.tools.demo import first_partitions_from_data
    from c360_assets.tools.generate import generate_landing
    from c360_assets.tools.runner import Progress, RunReport, execute, print_progress
    from resources.lakehouse import LakehouseResource

    landing = _landing_copy(Path(os.environ.get("C360_LANDING_DIR", "./data/landing")))
    if not any(landing.glob("*/*")) or args.regenerate:
        generate_landing(
            landing,
            customers=args.customers,
            start=dt.date.fromisoformat(args.start),
            days=args.days,
            events_per_day=args.events_per_day,
            seed=args.seed,
        )
    # ingest first (raw is not partitioned), then start the partitions where the data starts
    dagster_home()
    report = RunReport()
    with dg.DagsterInstance.get() as instance:
        execute(
            build_definitions(), instance, "ingest_job", report, progress=Progress(print_progress)
        )
    if not report.ok:
        print(f"FAILED: {report.failed_runs + report.failed_checks}", file=sys.stderr)
        return 1
    for name, value in first_partitions_from_data(LakehouseResource.from_env()).items():
        print(f"{name}={value} (written to .env: dagster dev reads it too)")
    return cmd_run(argparse.Namespace(quiet=False))


def cmd_graph(args: argparse.Namespace) -> int:
    import json

    from c360_assets.definitions import build_definitions
    from c360_assets.lib.graph import graph_snapshot, mermaid

    defs = build_definitions()
    print(mermaid(defs) if args.mermaid else json.dumps(graph_snapshot(defs), indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from c360_assets.tools.bench import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c360", description="Customer 360 lakehouse")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic landing zone")
    from c360_assets.tools.generate import add_cli_arguments

    add_cli_arguments(gen)
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="bring every asset up to date with the landing zone")
    run.add_argument("--quiet", action="store_true", help="no summary at the end")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="generate a demo landing zone (once) and run everything")
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--start", default="2026-08-01")
    demo.add_argument("--days", type=int, default=92)
    demo.add_argument("--events-per-day", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--regenerate", action="store_true")
    demo.set_defaults(func=cmd_demo)

    maintain = sub.add_parser(
        "maintain", help="compact small files, expire snapshots, remove orphans (no row changes)"
    )
    maintain.add_argument(
        "--keep-days",
        type=float,
        default=7.0,
        help="keep snapshots younger than this (default 7; 0 keeps only what is needed)",
    )
    maintain.add_argument(
        "--min-file-age-hours",
        type=float,
        default=1.0,
        help="leave files younger than this (a running writer's; default 1)",
    )
    maintain.set_defaults(func=cmd_maintain)

    from c360_assets.tools.close_month import add_close_month_command

    add_close_month_command(sub)

    graph = sub.add_parser("graph", help="print the asset graph (JSON snapshot or mermaid)")
    graph.add_argument("--mermaid", action="store_true")
    graph.set_defaults(func=cmd_graph)

    stack = sub.add_parser(
        "stack",
        help="the serving stack: PostgreSQL catalog + Trino (--cluster: + object store, workers)",
    )
    stack.add_argument("action", choices=["up", "down", "status", "env", "install"])
    stack.add_argument(
        "--cluster",
        action="store_true",
        help="up/install: the warehouse on an S3 object store, a Trino coordinator + workers",
    )
    stack.add_argument("--workers", type=int, help="up --cluster: Trino workers (default 1)")
    stack.set_defaults(func=cmd_stack)

    bench = sub.add_parser("bench", help="benchmark c360 stage by stage against its peers")
    from c360_assets.tools.bench import add_cli_arguments as add_bench_arguments

    add_bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    load_env_file()  # C360_FIRST_DAY etc., as `dagster dev` reads them
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
