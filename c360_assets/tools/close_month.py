"""``c360 close-month YYYY-MM``: the command around :func:`close_month` (see its module)."""

import argparse
import sys

import dagster as dg

from c360_assets.definitions import all_models, build_definitions
from c360_assets.defs.close.assets import CloseRefused, close_month, parse_month
from c360_assets.tools.instance import dagster_home
from resources.lakehouse import LakehouseResource


def cmd_close_month(args: argparse.Namespace) -> int:
    dagster_home()
    lakehouse = LakehouseResource.from_env()
    with dg.DagsterInstance.get() as instance:
        try:
            result = close_month(
                lakehouse, instance, build_definitions(lakehouse), all_models(), args.month
            )
        except CloseRefused as refused:
            print(f"REFUSED: {refused}", file=sys.stderr)
            return 1
    if result.already_closed:
        print(
            f"{result.month:%Y-%m} is already closed (tag {result.tag}, snapshot "
            f"{result.snapshot_id}, closed at {result.closed_at:%Y-%m-%d %H:%M:%S} UTC): "
            "nothing to do"
        )
        return 0
    tables = ", ".join(
        f"{table} (snapshot {snapshot})" for table, snapshot in result.tagged.items()
    )
    print(
        f"closed {result.month:%Y-%m}: tagged {result.tag} on {tables} "
        f"after {result.checks_run} checks passed"
    )
    for name, value in result.totals.items():
        print(f"  {name:<20} {value}")
    return 0


def add_close_month_command(subparsers) -> None:
    close = subparsers.add_parser(
        "close-month", help="freeze a month's customer facts as reported (an Iceberg tag)"
    )
    close.add_argument("month", type=parse_month, help="the month to close, YYYY-MM")
    close.set_defaults(func=cmd_close_month)
