"""``c360 demo``: the first partitions from the demo's own data, kept in ``.env``.

The UI's partitions start at ``C360_FIRST_DAY`` and ``C360_FIRST_MONTH`` (lib/partitions.py).
The demo ingests its landing zone, reads where its data starts (the first day of usage, the
first month of any billing activity: a subscription start, an invoice, a line's service period,
a credit note, a refund) and writes both to ``.env`` in the current directory, which
``dagster dev`` and every ``c360`` command read, so fill rates and partition lists are true.
"""

import datetime as dt
import os
from pathlib import Path

import pyarrow.compute as pc

from c360_assets.defs.ingest.sources import SOURCES
from c360_assets.lib.partitions import FIRST_DAY_ENV, FIRST_MONTH_ENV, month_of
from c360_assets.lib.sqlmodel import partition_value
from c360_assets.tools.instance import ENV_FILE
from resources.lakehouse import LakehouseResource


def data_extent(lakehouse: LakehouseResource) -> tuple[dt.date, dt.date] | None:
    """(first usage day, first month of any activity) of what raw holds; None without usage."""
    days, months = [], []
    for source in SOURCES:
        if not lakehouse.table_exists(source.table):
            continue
        table = lakehouse.load(source.table)
        if source.event_time:
            days += [partition_value(t.file.partition[0]) for t in table.scan().plan_files()]
        if source.month_columns:
            data = lakehouse.scan(source.table, columns=source.month_columns)
            for column in source.month_columns:
                first = pc.min(data.column(column)).as_py()
                if first is not None:
                    if isinstance(first, dt.datetime):  # a timestamp: its UTC day
                        first = first.astimezone(dt.UTC).date()
                    months.append(month_of(first))
    if not days:
        return None
    return min(days), min([month_of(min(days)), *months])


def write_env_file(values: dict[str, str], path: Path = ENV_FILE) -> None:
    """Set ``values`` in ``.env`` (other lines kept) and in this process's environment."""
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    path.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")
    os.environ.update(values)


def first_partitions_from_data(lakehouse: LakehouseResource) -> dict[str, str]:
    """Write the data's first day and month to ``.env``; returns what was written."""
    extent = data_extent(lakehouse)
    if extent is None:
        return {}
    values = {FIRST_DAY_ENV: extent[0].isoformat(), FIRST_MONTH_ENV: f"{extent[1]:%Y-%m}"}
    write_env_file(values)
    return values
