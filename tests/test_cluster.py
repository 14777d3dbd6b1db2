"""The cluster profile on real servers: MinIO holding the warehouse, PostgreSQL, a Trino
coordinator that schedules no work and one worker (`c360 stack up --cluster`), no mocks.

One cluster for the session (`cluster_stack`, see stack_fixture.py), started once.
`test_down_stops_every_process` stops it, so it stays last in this module.

The pipeline (the `profiles` fixture): the landing zone of test_trino_serving.py (its module
docstring has the world), run on the cluster profile and, over the same landing files, on the
embedded local profile (SQLite catalog, local warehouse): first run, October closed, late data,
second run. Usage by hand: 4 + 6 + (5 + 5) + 3 + 7 + 12 + 2 = 44 units from 8 distinct events
(e5 delivered twice). Then faults on the cluster, each followed by a run that must end exact:
a wrong object-store key (+ e9, 5 units), the object store stopped in the middle of an ingestion
commit (+ e10, 7 units, and a malformed line), a metadata file missing from the warehouse.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.definitions import all_models, build_definitions
from c360_assets.defs.close.assets import close_month
from c360_assets.defs.serving.assets import MART_KEY_SUMS, PARITY_CHECK, compare_with_trino
from c360_assets.tools import stack
from c360_assets.tools.runner import RunReport, run_pipeline
from c360_assets.tools.stack import objectstore
from resources.lakehouse import LakehouseResource, MissingMetadataError
from tests.lake import Lake
from tests.osuser import readable_by_another_user
from tests.records import event
from tests.stack_fixture import StackHandle, throwaway_env
from tests.test_trino_serving import ServedLake, drop_late_data, drop_september_october

OCTOBER = dt.date(2026, 10, 1)
# columns that differ between any two lakes: the wall-clock time of a run, a snapshot's id
RUN_SPECIFIC = {"detected_at", "closed_at", "_ingested_at", "ingested_at", "snapshot_id"}
MARTS = sorted({m.table for m in all_models() if m.table.startswith("marts.")})


@pytest.fixture
def cluster(cluster_stack: StackHandle) -> StackHandle:
    """The session's cluster, running (a test may have stopped a part of it)."""
    if not cluster_stack.all_running():
        cluster_stack.up()
    return cluster_stack


def test_cluster_processes_and_env(cluster: StackHandle) -> None:
    result = cluster.status()
    assert result["profile"] == "cluster"
    names = [name for name, _ in stack.processes(result)]
    assert names == ["postgres", "objectstore", "trino", "trino-worker-1"]
    assert all(part["state"] == "running" and part["pid"] for _, part in stack.processes(result))
    shown = stack.format_status(result)
    for name in names:
        assert f"\n{name} " in shown
    assert "(coordinator)" in shown

    exported = cluster.exported()
    key, secret = objectstore.credentials(cluster.config)
    assert exported["C360_WAREHOUSE"] == "s3://c360-test/warehouse"
    assert exported["C360_S3_ENDPOINT"] == f"http://127.0.0.1:{cluster.config.s3_port}"
    assert (exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"]) == (key, secret)
    assert exported["AWS_REGION"] == "us-east-1"
    assert exported["C360_CATALOG_URI"] == cluster.catalog_uri
    # the test passwords are not the defaults: no warning. The defaults give one per secret.
    assert stack.default_password_warnings(cluster.config) == []
    defaults = stack.StackConfig.from_env(
        {"C360_STACK_DIR": str(cluster.config.stack_dir)}, cluster=True
    )
    warnings = stack.default_password_warnings(defaults)
    assert [w.split()[1] for w in warnings] == list(stack.DEV_SECRETS)


def test_up_twice_is_harmless(cluster: StackHandle) -> None:
    before = {name: part["pid"] for name, part in stack.processes(cluster.status())}

    cluster.up()

    assert {name: part["pid"] for name, part in stack.processes(cluster.status())} == before


def test_the_worker_runs_the_queries(cluster: StackHandle) -> None:
    admin = cluster.trino()
    nodes = admin.query("select node_id, coordinator, state from system.runtime.nodes")
    assert sorted(nodes) == [
        ("c360-trino", True, "active"),
        ("c360-trino-worker-1", False, "active"),
    ]
    admin.query(
        "create or replace table iceberg.core.cluster_probe as "
        "select x, x % 7 as k from unnest(sequence(1, 5000)) as t(x)"
    )
    # 1 + 2 + ... + 5000 = 5000 * 5001 / 2
    assert admin.query("select count(*), sum(x) from iceberg.core.cluster_probe") == [
        (5000, 12502500)
    ]
    (query_id,) = admin.query(
        "select query_id from system.runtime.queries "
        "where query = 'select count(*), sum(x) from iceberg.core.cluster_probe'"
    )[0]
    nodes_of_tasks = admin.query(
        f"select distinct node_id from system.runtime.tasks where query_id = '{query_id}'"
    )
    assert nodes_of_tasks == [("c360-trino-worker-1",)]
    # the table's files are in the object store's bucket, under the warehouse prefix
    (path,) = admin.query('select file_path from iceberg.core."cluster_probe$files"')[0]
    assert path.startswith("s3://c360-test/warehouse/core/cluster_probe")


def test_the_stack_files_are_private(cluster: StackHandle) -> None:
    cfg = cluster.config
    assert readable_by_another_user(Path("/etc/hostname"))  # the probe itself can say yes
    with objectstore.filesystem(cfg).open_output_stream(f"{cfg.bucket}/probe/owner_email") as out:
        out.write(b"jane.doe@example.com")
    stored = cfg.objectstore_data / cfg.bucket / "probe" / "owner_email"
    objects = sorted(p for p in stored.rglob("*") if p.is_file())  # how MinIO keeps it on disk
    assert objects, f"no file under {stored}"
    private = [
        cfg.trino_tls_pem,
        cfg.objectstore_credentials,
        cfg.trino_shared_secret_file,
        cfg.trino_etc / "password.db",
        cfg.worker(1).etc / "catalog" / "iceberg.properties",
        cfg.coordinator.server_log,
        cfg.objectstore_log,
        cfg.pg_data / "PG_VERSION",
        objects[0],
    ]
    assert [p for p in private if readable_by_another_user(p)] == []
    mode = cfg.trino_tls_pem.stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Profiles:
    local: Lake
    cluster: ServedLake
    stack: StackHandle

    def usage_totals(self) -> tuple[int, int]:
        rows = self.cluster.rows("marts.fct_usage_daily")
        return sum(r["units"] for r in rows), sum(r["events"] for r in rows)

    def landing_record(self, source_file: str) -> list[tuple[int, int, int]]:
        return [
            (r["rows_in"], r["rows_accepted"], r["rows_quarantined"])
            for r in self.cluster.rows("raw.landing_files")
            if r["source_file"] == source_file
        ]


@pytest.fixture(scope="module")
def profiles(cluster_stack: StackHandle, tmp_path_factory) -> Iterator[Profiles]:
    if not cluster_stack.all_running():
        cluster_stack.up()
    cluster_stack.reset_catalog()  # the session shares the cluster: start from an empty catalog
    root = tmp_path_factory.mktemp("profiles")
    for folder in ("landing", "local/dagster_home", "cluster/dagster_home"):
        (root / folder).mkdir(parents=True)
    landing = root / "landing"
    local_lakehouse = LakehouseResource(
        catalog_uri=f"sqlite:///{root / 'local' / 'catalog.db'}",
        warehouse=str(root / "local" / "warehouse"),
        landing_dir=str(landing),
    )
    with (
        dg.DagsterInstance.local_temp(str(root / "local" / "dagster_home")) as local_instance,
        dg.DagsterInstance.local_temp(str(root / "cluster" / "dagster_home")) as instance,
    ):
        local = Lake(root / "local", local_lakehouse, local_instance)
        cluster = ServedLake(
            root / "cluster", cluster_stack.lakehouse(landing), instance, cluster_stack.trino()
        )
        drop_september_october(local)  # one landing zone: both profiles read the same files
        for lake in (local, cluster):
            lake.run()
            close_month(lake.lakehouse, lake.instance, lake.definitions(), all_models(), OCTOBER)
        drop_late_data(local)
        for lake in (local, cluster):
            lake.run()
        yield Profiles(local, cluster, cluster_stack)


def comparable(lake: Lake, table: str) -> list[tuple]:
    """A table's rows without the run-specific columns, in a stable order."""
    rows = lake.lakehouse.scan(table).to_pylist()
    kept = [tuple((k, v) for k, v in sorted(r.items()) if k not in RUN_SPECIFIC) for r in rows]
    return sorted(kept, key=repr)


def test_marts_on_the_object_store_equal_the_local_profile(profiles: Profiles) -> None:
    assert "marts.restatements" in MARTS and len(MARTS) >= 7
    for table in [*MARTS, "marts.month_closes"]:
        on_cluster = comparable(profiles.cluster, table)
        assert on_cluster == comparable(profiles.local, table), table
        assert on_cluster, f"{table} is empty"
    assert profiles.usage_totals() == (44, 8)
    # the cluster's data files are in the object store's bucket, the local ones on disk
    cluster_files = {
        f for fs in profiles.cluster.data_files("marts.fct_usage_daily").values() for f in fs
    }
    local_files = {
        f for fs in profiles.local.data_files("marts.fct_usage_daily").values() for f in fs
    }
    on_the_store = "s3://c360-test/warehouse/marts/fct_usage_daily/data/"
    assert all(f.startswith(on_the_store) for f in cluster_files)
    assert all(f.startswith("file:///") for f in local_files)
    # October's close is a tag on the object store's table too; the restatement is the late data
    restated = {
        (r["measure"], r["as_closed"], r["restated"])
        for r in profiles.cluster.rows("marts.restatements")
    }
    assert ("usage_units", "10", "22") in restated  # Ann: 5 + 5 closed, + 12 late


def test_trino_reads_the_cluster_marts_on_its_worker(profiles: Profiles) -> None:
    admin = profiles.stack.trino()
    for key_sums in MART_KEY_SUMS:
        comparison = compare_with_trino(profiles.cluster.lakehouse, admin, key_sums)
        assert comparison.ok, (key_sums.table, comparison.differences)
    # the pipeline's own parity checks (Trino against pyiceberg + DuckDB) passed on the cluster
    record = profiles.cluster.instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("fct_usage_daily"), PARITY_CHECK)
    )
    assert record is not None and record.status.value == "SUCCEEDED"
    sql = "select sum(units), sum(events) from iceberg.marts.fct_usage_daily"
    assert admin.query(sql) == [(44, 8)]
    (query_id,) = admin.query(
        f"select query_id from system.runtime.queries where query = '{sql}' order by created desc"
    )[0]
    tasks = admin.query(
        f"select distinct node_id from system.runtime.tasks where query_id = '{query_id}'"
    )
    assert tasks == [("c360-trino-worker-1",)]


def failed_run_message(report: RunReport) -> str:
    assert not report.ok, report
    assert report.failed_runs, report
    return report.failed_runs[0]


def test_a_wrong_key_fails_naming_the_store_and_the_next_run_is_exact(profiles: Profiles) -> None:
    cfg = profiles.stack.config
    late = event(event_id="e9", tenant_id="t2", occurred_at="2026-10-22T10:00:00Z", quantity=5)
    profiles.cluster.drop("usage_events", "2026-11-03.jsonl", [late])
    wrong = profiles.stack.lakehouse(profiles.cluster.landing, s3_secret_access_key="not-the-key")

    report = run_pipeline(build_definitions(wrong), profiles.cluster.instance, all_models())

    message = failed_run_message(report)
    assert f"the object store at {cfg.s3_endpoint}, bucket 'c360-test'" in message
    assert "refuses the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message
    assert profiles.usage_totals() == (44, 8)  # nothing landed

    profiles.cluster.run()

    assert profiles.usage_totals() == (44 + 5, 8 + 1)
    assert profiles.landing_record("usage_events/2026-11-03.jsonl") == [(1, 1, 0)]


STOP_BEFORE: dict[str, Callable[[], None]] = {}


class StoreStopsMidRun(LakehouseResource):
    """The pipeline's resource, except that before writing a table named in STOP_BEFORE it runs
    that table's hook (once): the real object store is stopped in the middle of a run."""

    def write_query(self, con, identifier, *args, **kwargs):
        hook = STOP_BEFORE.pop(identifier, None)
        if hook is not None:
            hook()
        return super().write_query(con, identifier, *args, **kwargs)


def test_the_store_stopped_mid_run_fails_naming_it_and_the_next_run_is_exact(
    profiles: Profiles,
) -> None:
    cfg = profiles.stack.config
    name = "usage_events/2026-11-04.jsonl"
    late = event(event_id="e10", tenant_id="t1", occurred_at="2026-10-23T10:00:00Z", quantity=7)
    profiles.cluster.drop("usage_events", "2026-11-04.jsonl", [late, "{not json"])
    # the usage batch's rows are committed, its quarantine and file log not yet
    STOP_BEFORE["raw.quarantine"] = lambda: objectstore.stop_objectstore(cfg, echo=lambda _: None)
    stopping = profiles.stack.lakehouse(profiles.cluster.landing, kind=StoreStopsMidRun)

    report = run_pipeline(build_definitions(stopping), profiles.cluster.instance, all_models())

    message = failed_run_message(report)
    assert f"the object store at {cfg.s3_endpoint}, bucket 'c360-test'" in message
    assert "cannot be reached: is it running" in message
    assert not STOP_BEFORE  # the hook ran: the store really went away mid-run

    objectstore.ensure_objectstore(cfg, echo=lambda _: None)  # the store is back
    profiles.cluster.run()

    assert profiles.usage_totals() == (44 + 5 + 7, 8 + 1 + 1)
    assert profiles.landing_record(name) == [(2, 1, 1)]
    quarantined = [
        (r["source_line"], r["raw_text"], r["reason"])
        for r in profiles.cluster.rows("raw.quarantine")
        if r["source_file"] == name
    ]
    assert quarantined == [(2, "{not json", "invalid JSON")]
    e10 = [r for r in profiles.cluster.rows("raw.usage_events") if r["event_id"] == "e10"]
    assert len(e10) == 1


def test_a_missing_metadata_file_names_the_table_and_the_path(profiles: Profiles) -> None:
    lakehouse = profiles.cluster.lakehouse
    location = lakehouse.load("raw.landing_files").metadata_location
    assert location.startswith("s3://c360-test/warehouse/raw/landing_files/metadata/")
    objectstore.filesystem(profiles.stack.config).delete_file(location.removeprefix("s3://"))

    with pytest.raises(MissingMetadataError) as caught:
        lakehouse.load("raw.landing_files")
    assert str(caught.value).startswith(
        f"table raw.landing_files: the catalog (c360) points at the metadata file {location}, "
        "which the warehouse does not hold"
    )
    report = run_pipeline(profiles.cluster.definitions(), profiles.cluster.instance, all_models())
    message = failed_run_message(report)
    assert (
        f"table raw.landing_files: the catalog (c360) points at the metadata file {location}"
        in message
    )


def test_down_stops_every_process(cluster: StackHandle) -> None:
    ports = [cluster.config.pg_port, cluster.config.s3_port, cluster.trino_port]
    ports += [cluster.config.trino_internal_port, cluster.config.worker(1).http_port]

    cluster.down()

    result = cluster.status()
    assert [(n, p["state"]) for n, p in stack.processes(result)] == [
        ("postgres", "stopped"),
        ("objectstore", "stopped"),
        ("trino", "stopped"),
        ("trino-worker-1", "stopped"),
    ]
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    cluster.down()  # stopping a stopped stack is harmless too


def test_a_worker_that_cannot_start_fails_the_start_naming_it_and_its_reason() -> None:
    """A worker whose JVM cannot start (a heap of 200 TB, more than the address space) fails
    `up` with the worker's name and its JVM's own words; `down` then stops what did start. Its
    own stack: the session's cluster must stay up."""
    base = Path(tempfile.mkdtemp(prefix="c360-cluster-fail-test-"))
    base.chmod(0o711)  # the postgres OS user traverses it (see stack_fixture.py)
    overrides = {**throwaway_env(base, cluster=True), "C360_TRINO_WORKER_HEAP": "204800000G"}
    config = stack.StackConfig.from_env({**os.environ, **overrides}, cluster=True, workers=1)

    def states() -> dict[str, str]:
        return {name: part["state"] for name, part in stack.processes(stack.status(config))}

    try:
        with pytest.raises(stack.StackError) as failed:
            stack.up(config, echo=lambda line: None)
        message = str(failed.value)
        assert message.startswith("the trino-worker-1 process exited during start-up"), message
        assert "Could not reserve enough space" in message, message
        assert states()["trino-worker-1"] == "stopped", states()
    finally:  # what did start stays up for inspection until `down`, which stops it all
        stack.down(config, echo=lambda line: None)
        after_down = states()
        shutil.rmtree(base, ignore_errors=True)
    assert set(after_down.values()) == {"stopped"}, after_down
