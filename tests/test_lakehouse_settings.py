"""How LakehouseResource and the stack are configured, and what they say when the catalog and
the warehouse disagree (no server: the embedded catalog, a local warehouse)."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import AlwaysFalse, In

from c360_assets.lib.sqlmodel import ParquetScan, SqlSession, connect, scan_where
from c360_assets.tools import stack
from resources.lakehouse import LakehouseResource, MissingMetadataError
from tests.lake import Lake


def test_a_missing_metadata_file_names_the_table_and_the_path(lake: Lake) -> None:
    con = connect()
    con.register("rows", pa.table({"id": [1, 2, 3]}))
    lake.lakehouse.write_query(con, "core.metadata_probe", "select * from rows")
    con.close()
    location = lake.lakehouse.load("core.metadata_probe").metadata_location
    Path(location.removeprefix("file://")).unlink()

    with pytest.raises(MissingMetadataError) as caught:
        lake.lakehouse.scan("core.metadata_probe")

    assert str(caught.value) == (
        f"table core.metadata_probe: the catalog (c360) points at the metadata file {location}, "
        "which the warehouse does not hold: the catalog and the warehouse disagree (restore the "
        "file, or drop the table and rebuild it)"
    )


def test_object_store_settings_come_from_the_environment(monkeypatch, tmp_path) -> None:
    env = {
        "C360_CATALOG_URI": f"sqlite:///{tmp_path / 'catalog.db'}",
        "C360_WAREHOUSE": "s3://lake/prefix",
        "C360_S3_ENDPOINT": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)

    lakehouse = LakehouseResource.from_env()

    # Dagster's config holds the variables' names, never their values
    assert isinstance(lakehouse.s3_secret_access_key, dg.EnvVar)
    assert lakehouse.s3_secret_access_key.env_var_name == "AWS_SECRET_ACCESS_KEY"
    assert lakehouse.s3_region is None
    assert "s3cr3t" not in repr(lakehouse)
    # the catalog gets the values (and a region: without one pyiceberg would ask AWS)
    properties = lakehouse.catalog.properties
    assert {name: properties.get(name) for name in properties if name.startswith("s3.")} == {
        "s3.endpoint": "http://127.0.0.1:9",
        "s3.access-key-id": "key-id",
        "s3.secret-access-key": "s3cr3t",
        "s3.region": "us-east-1",
    }


def test_the_stack_profile_is_the_last_ups(tmp_path) -> None:
    base = {"C360_STACK_DIR": str(tmp_path / "stack"), "C360_WAREHOUSE": "s3://bucket/wh"}
    assert not stack.StackConfig.from_env(base).cluster  # never brought up: local
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "profile.json").write_text(json.dumps({"cluster": True, "workers": 2}))

    cfg = stack.StackConfig.from_env(base)

    assert (cfg.cluster, cfg.workers, cfg.warehouse_uri, cfg.bucket) == (
        True,
        2,
        "s3://bucket/wh",
        "bucket",
    )
    # after 18080 (clients, HTTPS) and 18081 (the coordinator's internal HTTP)
    assert [w.http_port for w in cfg.worker_nodes] == [18082, 18083]
    assert [w.name for w in cfg.worker_nodes] == ["trino-worker-1", "trino-worker-2"]
    local = stack.StackConfig.from_env(base, cluster=False)
    with pytest.raises(
        stack.StackError, match="C360_WAREHOUSE=s3://bucket/wh is on an object store"
    ):
        stack.env_lines(local)
    default = stack.StackConfig.from_env({"C360_STACK_DIR": str(tmp_path / "x")}, cluster=True)
    assert default.warehouse_uri == "s3://c360/warehouse"


def test_up_warns_while_a_default_password_is_in_use(tmp_path) -> None:
    env = {"C360_STACK_DIR": str(tmp_path), "C360_TRINO_PASSWORD": "chosen"}
    warnings = stack.default_password_warnings(stack.StackConfig.from_env(env))
    assert [w.split()[1] for w in warnings] == ["C360_PG_PASSWORD", "C360_TRINO_BI_PASSWORD"]
    assert all(w.startswith("WARNING: ") for w in warnings)
    chosen = {name: "not-a-default" for name in stack.DEV_SECRETS}
    assert stack.default_password_warnings(stack.StackConfig.from_env({**env, **chosen})) == []


def test_rows_of_one_partition_are_written_as_one_file_of_that_partition(lake: Lake) -> None:
    """``one_partition``: one data file, its partition read from its statistics; a file holding
    two partition values is refused at the commit and the table keeps no row of it."""
    day = dt.date(2026, 10, 8)
    con = connect()
    con.register("rows", pa.table({"id": [1, 2, 3], "day": [day] * 3}))
    rows, files = lake.lakehouse.write_query(
        con, "core.one_day_probe", "select * from rows", partition_by=("day",), one_partition=True
    )
    entries = lake.lakehouse.load("core.one_day_probe").inspect.files().to_pylist()
    assert (rows, len(files)) == (3, 1)
    assert [(e["partition"], e["record_count"]) for e in entries] == [({"day": day}, 3)]

    con.register("rows", pa.table({"id": [4, 5], "day": [day, day + dt.timedelta(days=1)]}))
    with pytest.raises(ValueError, match="more than one partition values"):
        lake.lakehouse.write_query(
            con,
            "core.one_day_probe",
            "select * from rows",
            partition_by=("day",),
            one_partition=True,
        )
    assert sorted(lake.lakehouse.scan("core.one_day_probe").column("id").to_pylist()) == [1, 2, 3]
    con.close()


def test_a_scan_where_reads_the_selected_partitions_files_and_filters_their_rows(
    lake: Lake,
) -> None:
    """``scan_where``: the Iceberg filter picks the files (day partitions), the DuckDB predicate
    the rows; DuckDB reads the Parquet files itself. A filter selecting no file gives no row, in
    the columns asked for. The files are written with c360's codec (zstd)."""
    first, second = dt.date(2026, 10, 8), dt.date(2026, 10, 9)
    con = connect()
    con.register(
        "rows",
        pa.table(
            {
                "id": ["a", "b", "a", "c", "a"],
                "n": [1, 2, 3, 4, 5],
                "day": [first, first, second, second, dt.date(2026, 10, 10)],
            }
        ),
    )
    lake.lakehouse.write_query(con, "core.scan_probe", "select * from rows", partition_by=("day",))
    con.close()
    days = In("day", [first.isoformat(), second.isoformat()])
    where = "list_contains(['a', 'c'], id)"
    found = scan_where(lake.lakehouse, "core.scan_probe", days, ("id", "n"), where)
    assert isinstance(found, ParquetScan)  # read by DuckDB, not materialized
    with SqlSession({"probe": found}) as session:
        rows = session.query("select id, n from probe order by n").to_pylist()
    # the third day's "a" is in a file the filter did not select
    assert rows == [{"id": "a", "n": 1}, {"id": "a", "n": 3}, {"id": "c", "n": 4}]
    codecs = {
        pq.ParquetFile(path).metadata.row_group(0).column(0).compression
        for path in found.files.paths
    }
    assert codecs == {"ZSTD"}

    none = scan_where(lake.lakehouse, "core.scan_probe", AlwaysFalse(), ("id", "n"), where)
    assert isinstance(none, pa.Table)
    assert (none.num_rows, none.column_names) == (0, ["id", "n"])
