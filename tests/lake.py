"""Test harness: a real, temporary c360 lakehouse (SQLite Iceberg catalog, local warehouse,
landing zone, Dagster instance) and helpers to drop landing files and run the pipeline."""

import csv
import datetime as dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from c360_assets.definitions import all_models, build_definitions
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

    def definitions(self) -> dg.Definitions:
        return build_definitions(self.lakehouse)

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
