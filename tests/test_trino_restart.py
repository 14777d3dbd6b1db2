"""PostgreSQL restarting under a running Trino and a running pipeline process (real servers).

Both sides pool catalog connections. Without care the first catalog query after the restart
fails: pyiceberg with "server closed the connection unexpectedly", Trino with "Cannot check and
eventually update SQL schema". `LakehouseResource` pings pooled connections before use, and
`c360 stack up` waits until Trino reads the catalog again.
"""

import pyarrow as pa

from c360_assets.tools import stack
from resources.lakehouse import LakehouseResource
from tests.stack_fixture import StackHandle


def test_postgres_restart_under_trino_and_the_pipeline(trino_stack: StackHandle, tmp_path) -> None:
    lakehouse = LakehouseResource(
        catalog_uri=trino_stack.catalog_uri,
        catalog_name=trino_stack.config.catalog_name,
        warehouse=str(tmp_path / "warehouse"),
        landing_dir=str(tmp_path / "landing"),
    )
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    lakehouse.replace_where("core.restart_probe", rows, "id >= 0")
    trino_pid = stack.status(trino_stack.config)["trino"]["pid"]

    stack.stop_postgres(trino_stack.config, echo=lambda _: None)
    trino_stack.up()  # starts PostgreSQL again; Trino keeps running

    assert stack.status(trino_stack.config)["trino"]["pid"] == trino_pid
    # the first query on each side works: no stale pooled connection surfaces
    assert trino_stack.trino().query("select count(*) from iceberg.core.restart_probe") == [(3,)]
    assert lakehouse.table_exists("core.restart_probe")
    lakehouse.replace_where("core.restart_probe", rows.slice(0, 1), "id >= 0")
    assert trino_stack.trino().query("select count(*) from iceberg.core.restart_probe") == [(1,)]
