"""Session-scoped, real stacks for tests: `trino_stack` (PostgreSQL + one Trino, the warehouse on
local disk) and `cluster_stack` (the cluster profile: object store, PostgreSQL, a Trino
coordinator and one worker).

Import a fixture into a test module (or a conftest) to use it. Each stack gets its own state dir
and warehouse under a fresh temporary directory, free ports and test-only passwords, so it never
touches a developer's running stack; the Trino download and the object-store build in the shared
cache (`C360_CACHE_DIR`) are reused. A stack is started once per session, at its first use, and
torn down at the end of the session even when tests fail. If it cannot start, every test using
it fails with the reason (never skips).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from c360_assets.tools import stack
from resources.lakehouse import LakehouseResource
from resources.trino import TrinoResource


@dataclass
class StackHandle:
    """The running test stack: its config, environment and ready-made clients."""

    config: stack.StackConfig
    env: dict[str, str]

    @property
    def catalog_uri(self) -> str:
        return self.config.catalog_uri

    @property
    def warehouse(self) -> str:
        return self.config.warehouse_uri

    @property
    def trino_host(self) -> str:
        return "127.0.0.1"

    @property
    def trino_port(self) -> int:
        return self.config.trino_port

    def trino(self, user: str = stack.TRINO_ADMIN) -> TrinoResource:
        """A Trino client as `c360` (admin) or `bi` (read-only, masked)."""
        return stack.trino_resource(self.config, user)

    def lakehouse(
        self, landing_dir: Path, kind: type[LakehouseResource] = LakehouseResource, **overrides: str
    ) -> LakehouseResource:
        """The pipeline's resource (of class ``kind``) on this stack: its catalog and warehouse,
        on the cluster the object store with the key `c360 stack env` exports; ``overrides``
        replace settings."""
        exported = self.exported()
        settings = {
            "catalog_uri": exported["C360_CATALOG_URI"],
            "catalog_name": exported["C360_CATALOG_NAME"],
            "warehouse": exported["C360_WAREHOUSE"],
            "landing_dir": str(landing_dir),
        }
        if self.config.cluster:
            settings |= {
                "s3_endpoint": exported["C360_S3_ENDPOINT"],
                "s3_access_key_id": exported["AWS_ACCESS_KEY_ID"],
                "s3_secret_access_key": exported["AWS_SECRET_ACCESS_KEY"],
                "s3_region": exported["AWS_REGION"],
            }
        return kind(**(settings | overrides))

    def catalog(self):
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog(self.config.catalog_name, uri=self.catalog_uri, warehouse=self.warehouse)

    def reset_catalog(self) -> list[str]:
        """Drop every table and view of the stack's Iceberg catalog (namespaces stay).

        The stack is shared by the whole session, and so is its catalog: a module that runs a
        pipeline on it starts from an empty catalog, whatever earlier modules wrote (their data
        files stay in their own temporary warehouses). Returns what was dropped.
        """
        admin = self.trino()
        views = admin.query(
            f"select table_schema || '.' || table_name from {stack.TRINO_CATALOG}"
            ".information_schema.tables where table_type = 'VIEW'"
        )
        dropped = []
        for (view,) in views:  # pyiceberg 0.12 does not implement views: Trino drops them
            admin.query(f"drop view {stack.TRINO_CATALOG}.{view}")
            dropped.append(view)
        catalog = self.catalog()
        try:
            for namespace in catalog.list_namespaces():
                for identifier in catalog.list_tables(namespace):
                    catalog.drop_table(identifier)
                    dropped.append(".".join(identifier))
        finally:
            catalog.engine.dispose()
        return dropped

    def up(self) -> None:
        stack.up(self.config)

    def down(self) -> None:
        stack.down(self.config)

    def all_running(self) -> bool:
        return all(part["state"] == "running" for _, part in stack.processes(self.status()))

    def status(self) -> dict:
        return stack.status(self.config)

    def exported(self) -> dict[str, str]:
        """What `c360 stack env` exports for this stack, as a dict."""
        return dict(shlex.split(line)[1].split("=", 1) for line in stack.env_lines(self.config))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def throwaway_env(base: Path, cluster: bool) -> dict[str, str]:
    """Dirs under `base`, free ports and throw-away passwords (with characters that need
    quoting in SQL and URIs, so escaping is exercised too)."""
    extra = {}
    if cluster:
        extra = {
            "C360_WAREHOUSE": "s3://c360-test/warehouse",
            "C360_S3_PORT": str(_free_port()),
            "C360_TRINO_WORKER_PORT": str(_free_port()),
        }
    return {
        "C360_STACK_DIR": str(base / "stack"),
        "C360_WAREHOUSE": str(base / "warehouse"),
        "C360_CATALOG_NAME": "c360",
        "C360_PG_PORT": str(_free_port()),
        "C360_TRINO_PORT": str(_free_port()),
        "C360_TRINO_INTERNAL_PORT": str(_free_port()),
        "C360_PG_PASSWORD": f"pg'@:/{secrets.token_urlsafe(12)}",
        "C360_TRINO_PASSWORD": f"adm-{secrets.token_urlsafe(12)}",
        "C360_TRINO_BI_PASSWORD": f"bi-{secrets.token_urlsafe(12)}",
    } | extra


@pytest.fixture(scope="session")
def trino_stack() -> Iterator[StackHandle]:
    yield from _session_stack(cluster=False)


@pytest.fixture(scope="session")
def cluster_stack() -> Iterator[StackHandle]:
    yield from _session_stack(cluster=True)


# Free ports are picked, then bound by the stack a moment later: another process on this machine
# (another test session) may take one in between. Such a start is tried again on other ports.
PORT_ATTEMPTS = 3
PORT_TAKEN = "is taken by another process"


def _session_stack(cluster: bool) -> Iterator[StackHandle]:
    # Not pytest's tmp dir: that is mode 0700 and the postgres OS user must traverse it to reach
    # its data dir (the stack's own dir inside is private: see c360_assets/tools/stack).
    base = Path(tempfile.mkdtemp(prefix="c360-cluster-test-" if cluster else "c360-stack-test-"))
    base.chmod(0o711)
    handle = None
    try:
        for _ in range(PORT_ATTEMPTS):
            overrides = throwaway_env(base, cluster)
            env = {**os.environ, **overrides}
            handle = StackHandle(
                stack.StackConfig.from_env(env, cluster=cluster, workers=1), overrides
            )
            error = _start(handle)
            if error is None or PORT_TAKEN not in error:
                break
            handle.down()  # what started before another process took a port: try other ports
        if error:
            pytest.fail(f"the test stack did not start: {error}", pytrace=False)
        yield handle
    finally:
        try:
            handle.down()
        finally:
            if _all_stopped(handle.config):
                shutil.rmtree(base, ignore_errors=True)


def _start(handle: StackHandle) -> str | None:
    try:
        handle.up()
    except stack.StackError as exc:
        return str(exc)
    return None


def _all_stopped(config: stack.StackConfig) -> bool:
    return all(part["state"] == "stopped" for _, part in stack.processes(stack.status(config)))
