"""What an Iceberg table holds, from its metadata alone (no data file is read): rows per
partition, column schema, and the files, bytes and snapshots maintenance reports.

c360 writes data files whole (a replaced partition's files are dropped, never patched with
delete files), so a data file's record count is its live rows and these counts are exact.
"""

import datetime as dt
from dataclasses import asdict, dataclass

import dagster as dg
from pyiceberg.table import Table
from pyiceberg.table.snapshots import TOTAL_RECORDS

from c360_assets.lib.sqlmodel import between, files_by_date
from resources.lakehouse import LakehouseResource


def partition_row_counts(
    lakehouse: LakehouseResource, identifier: str, column: str, window: tuple[dt.date, dt.date]
) -> dict[dt.date, int]:
    """Rows per partition of ``column`` in ``window`` (end exclusive), current snapshot."""
    table = lakehouse.load(identifier)
    found = files_by_date(table, column, between(column, *window))
    if found is None:
        raise ValueError(f"{identifier} is not partitioned by the value of {column}")
    return {day: sum(f.record_count for f in files) for day, files in found.items()}


def table_row_count(lakehouse: LakehouseResource, identifier: str) -> int:
    """Rows of the table's current snapshot (its data files' records): the ``total-records``
    its summary carries (Iceberg writers keep it, pyiceberg's and Trino's), else the sum over
    its data files. The summary is one value where the sum plans every file of the table, which
    for a table of daily partitions means reading a manifest per day of history."""
    table = lakehouse.load(identifier)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0
    total = snapshot.summary[TOTAL_RECORDS] if snapshot.summary is not None else None
    if total is not None:
        return int(total)
    return sum(task.file.record_count for task in table.scan().plan_files())


def column_schema(lakehouse: LakehouseResource, identifier: str) -> dg.TableSchema:
    """The table's Iceberg schema as Dagster's column schema (``dagster/column_schema``)."""
    schema = lakehouse.load(identifier).schema()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=str(f.field_type),
                description=f.doc,
                constraints=dg.TableColumnConstraints(nullable=not f.required),
            )
            for f in schema.fields
        ]
    )


@dataclass(frozen=True)
class TableFiles:
    """Every file a table's metadata references: what time travel and tags keep reading."""

    metadata: frozenset[str]  # the current metadata.json and those its log keeps
    manifest_lists: frozenset[str]
    manifests: dict[str, int]  # path -> bytes
    data: dict[str, int]  # data (and delete) files of any snapshot: path -> bytes
    current_data: frozenset[str]  # data files of the current snapshot
    snapshots: int

    @property
    def all(self) -> set[str]:
        return {*self.metadata, *self.manifest_lists, *self.manifests, *self.data}


def table_files(table: Table) -> TableFiles:
    """Read every snapshot's manifest list and each distinct manifest once."""
    io = table.io
    current = table.current_snapshot()
    lists: set[str] = set()
    manifests: dict[str, int] = {}
    entries: dict[str, dict[str, int]] = {}  # manifest -> its live files
    current_data: set[str] = set()
    for snapshot in table.snapshots():
        lists.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            path = manifest.manifest_path
            if path not in entries:
                manifests[path] = manifest.manifest_length
                entries[path] = {
                    e.data_file.file_path: e.data_file.file_size_in_bytes
                    for e in manifest.fetch_manifest_entry(io, discard_deleted=True)
                }
            if current is not None and snapshot.snapshot_id == current.snapshot_id:
                current_data.update(entries[path])
    data = {path: size for files in entries.values() for path, size in files.items()}
    metadata = {entry.metadata_file for entry in table.metadata.metadata_log}
    metadata.add(table.metadata_location)
    metadata.update(s.statistics_path for s in table.metadata.statistics)
    return TableFiles(
        frozenset(metadata),
        frozenset(lists),
        manifests,
        data,
        frozenset(current_data),
        len(table.snapshots()),
    )


@dataclass(frozen=True)
class TableStats:
    """What maintenance reports of a table, before and after."""

    snapshots: int
    data_files: int  # referenced by any snapshot (time travel, tags)
    data_bytes: int
    current_data_files: int
    metadata_files: int  # metadata.json files kept, manifest lists, manifests
    metadata_bytes: int  # manifests

    @classmethod
    def of(cls, files: TableFiles) -> "TableStats":
        return cls(
            snapshots=files.snapshots,
            data_files=len(files.data),
            data_bytes=sum(files.data.values()),
            current_data_files=len(files.current_data),
            metadata_files=len(files.metadata) + len(files.manifest_lists) + len(files.manifests),
            metadata_bytes=sum(files.manifests.values()),
        )

    def as_metadata(self, suffix: str) -> dict[str, int]:
        return {f"{name}_{suffix}": value for name, value in asdict(self).items()}
