"""A session-scoped, real serving stack (PostgreSQL + Trino) for tests.

Import `trino_stack` into a test module (or a conftest) to use it. The stack gets its own
state dir and warehouse under a fresh temporary directory, free ports and test-only passwords,
so it never touches a developer's running stack; the Trino download in the shared cache
(`C360_CACHE_DIR`) is reused. It is torn down at the end of the session even when tests fail.
If the stack cannot start, every test using it fails with the reason (never skips).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from c360_assets.tools import stack
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_env(base: Path) -> dict[str, str]:
    """Dirs under `base`, free ports and throw-away passwords (with characters that need
    quoting in SQL and URIs, so escaping is exercised too)."""
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
    }


@pytest.fixture(scope="session")
def trino_stack() -> Iterator[StackHandle]:
    # Not pytest's tmp dir: that is mode 0700 and the postgres OS user must reach its data dir.
    base = Path(tempfile.mkdtemp(prefix="c360-stack-test-"))
    base.chmod(0o755)
    overrides = _test_env(base)
    handle = StackHandle(stack.StackConfig.from_env({**os.environ, **overrides}), overrides)
    try:
        error = _start(handle)
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
