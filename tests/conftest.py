"""Two tiers. The fast tier (``pytest -m "not stack"``) starts no server: an embedded lakehouse
(SQLite catalog, local warehouse), in-process Dagster, DuckDB. A test that needs a server
(PostgreSQL, Trino, the object store, the Dagster daemon) is in the ``stack`` tier: it is marked
``stack`` explicitly or, when it uses a server fixture, automatically here."""

import dagster as dg
import pytest

from resources.lakehouse import LakehouseResource
from tests.lake import Lake
from tests.stack_fixture import (  # noqa: F401  (the session's real stacks)
    cluster_stack,
    trino_stack,
)

# fixtures that start a server: a test using one (directly or through another fixture) is `stack`
SERVER_FIXTURES = {"trino_stack", "cluster_stack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lake:
    """A fresh embedded lakehouse + Dagster instance under tmp_path, pointed to by the env."""
    env = {
        "C360_LANDING_DIR": str(tmp_path / "landing"),
        "C360_WAREHOUSE": str(tmp_path / "warehouse"),
        "C360_CATALOG_URI": f"sqlite:///{tmp_path / 'catalog.db'}",
        "C360_CATALOG_NAME": "c360",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "landing").mkdir()
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.get() as instance:
        yield Lake(tmp_path, LakehouseResource.from_env(), instance)
