"""The cluster profile on real servers: MinIO holding the warehouse, PostgreSQL, a Trino
coordinator that schedules no work and one worker (`c360 stack up --cluster`), no mocks.

One cluster for the session (`cluster_stack`, see stack_fixture.py), started once.
`test_down_stops_every_process` stops it, so it stays last in this module.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from c360_assets.tools import stack
from c360_assets.tools.stack import objectstore
from tests.stack_fixture import StackHandle


@pytest.fixture
def cluster(cluster_stack: StackHandle) -> StackHandle:
    """The session's cluster, running (a test may have stopped a part of it)."""
    if not cluster_stack.all_running():
        cluster_stack.up()
    return cluster_stack


def readable_by_another_user(path: Path) -> bool:
    """Whether an OS user other than this one (and not root) can read ``path``: as root, a real
    read as `nobody`; otherwise from the modes of the path and its folders."""
    if os.geteuid() == 0:
        read = ["runuser", "-u", "nobody", "--", "head", "-c", "1", str(path)]
        return subprocess.run(read, capture_output=True, check=False).returncode == 0
    for folder in path.parents:
        if not folder.stat().st_mode & 0o001:  # others cannot traverse it
            return False
    return bool(path.stat().st_mode & 0o004)


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
    objects = [p for p in cfg.objectstore_data.rglob("*") if p.is_file()]
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
