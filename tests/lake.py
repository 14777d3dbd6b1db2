"""Test harness: a real, temporary c360 lakehouse (SQLite Iceberg catalog, local warehouse,
landing zone, Dagster instance) and helpers to drop landing files and run the pipeline."""

import csv
import datetime as dt
import functools
import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.definitions import all_models, build_definitions
from c360_assets.lib.ingest import LANDING_FILES_TABLE, ingest_source
from c360_assets.lib.sources import Source
from c360_assets.tools.runner import RunReport, run_pipeline
from resources.lakehouse import LakehouseResource

EPOCH = dt.date(1970, 1, 1)


@dataclass
class Lake:
    root: Path
    lakehouse: LakehouseResource
    instance: dg.DagsterInstance

    @property
    def landing(self) -> Path:
        return self.lakehouse.landing_path

    def drop(self, folder: str, name: str, records: list[dict] | list[str]) -> Path:
        """Write a landing file; records are dicts (JSON lines / CSV rows) or raw text lines."""
        path = self.landing / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".csv"):
            columns = list(records[0].keys())
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(records)
            return path
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        text = "\n".join(lines) + "\n"
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text)
        return path

    @functools.cached_property
    def _definitions(self) -> dg.Definitions:
        return build_definitions(self.lakehouse)

    def definitions(self) -> dg.Definitions:
        """The definitions over this lakehouse, built once (and their jobs resolved once)."""
        return self._definitions

    def sensor_context(self, cursor: str | None = None) -> dg.SensorEvaluationContext:
        """A sensor tick on this lakehouse (its cursor: what the sensor's last tick stored)."""
        return dg.build_sensor_context(
            instance=self.instance,
            cursor=cursor,
            definitions=self.definitions(),
            resources={"lakehouse": self.lakehouse},
        )

    def run(self) -> RunReport:
        report = run_pipeline(self.definitions(), self.instance, all_models())
        assert report.ok, report
        return report

    def rows(self, identifier: str, order_by: tuple[str, ...] = ()) -> list[dict]:
        table = self.lakehouse.scan(identifier)
        if order_by:
            table = table.sort_by([(c, "ascending") for c in order_by])
        return table.to_pylist()

    def check_violations(self, asset: str, check: str) -> tuple[bool, int]:
        """The latest evaluation of a check: (passed, violations)."""
        record = self.instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey(asset), check)
        )
        evaluation = record.event.dagster_event.event_specific_data
        return evaluation.passed, evaluation.metadata["violations"].value

    def data_files(self, identifier: str) -> dict[str, set[str]]:
        """Partition value (as text) -> the data file paths of the current snapshot."""
        table = self.lakehouse.load(identifier)
        files: dict[str, set[str]] = {}
        for task in table.scan().plan_files():
            value = task.file.partition[0] if len(task.file.partition) else ""
            if isinstance(value, int):  # identity partition on a date: days since 1970-01-01
                value = (EPOCH + dt.timedelta(days=value)).isoformat()
            key = str(value)
            files.setdefault(key, set()).add(task.file.file_path)
        return files


@contextmanager
def embedded_lake(
    root: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool = False
) -> Iterator[Lake]:
    """A fresh embedded lakehouse + Dagster instance under ``root``, pointed to by the env.

    ``in_memory``: the Dagster instance keeps its runs and events in memory (Dagster's ephemeral
    instance) instead of SQLite files under DAGSTER_HOME: for tests that never hand the
    instance to another process (the CLI, the daemon) and run many jobs."""
    env = {
        "C360_LANDING_DIR": str(root / "landing"),
        "C360_WAREHOUSE": str(root / "warehouse"),
        "C360_CATALOG_URI": f"sqlite:///{root / 'catalog.db'}",
        "C360_CATALOG_NAME": "c360",
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (root / "landing").mkdir()
    (root / "dagster_home").mkdir()
    opened = dg.DagsterInstance.ephemeral() if in_memory else dg.DagsterInstance.get()
    with opened as instance:
        yield Lake(root, LakehouseResource.from_env(), instance)


def ingest_interrupted_before_the_file_log(
    lake: Lake, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ingestion of ``source`` that appends the raw rows and the quarantine, then fails (the
    file-log write raises, as a killed step would stop there): the files are not logged."""
    write_query = LakehouseResource.write_query

    def interrupted(self, con, identifier, *args, **kwargs):
        if identifier == LANDING_FILES_TABLE:
            raise RuntimeError("interrupted before the file log")
        return write_query(self, con, identifier, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(LakehouseResource, "write_query", interrupted)
        with pytest.raises(RuntimeError, match="interrupted"):
            ingest_source(lake.lakehouse, source)
