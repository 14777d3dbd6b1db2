"""Two tiers. The fast tier (``pytest -m "not stack"``) starts no server: an embedded lakehouse
(SQLite catalog, local warehouse), in-process Dagster, DuckDB. A test that needs a server
(PostgreSQL, Trino, the object store, the Dagster daemon) is in the ``stack`` tier: it is marked
``stack`` explicitly or, when it uses a server fixture, automatically here."""

import pytest

from tests.lake import Lake, embedded_lake
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
    with embedded_lake(tmp_path, monkeypatch) as built:
        yield built


@pytest.fixture(scope="module")
def module_lake(tmp_path_factory) -> Lake:
    """One embedded lakehouse for a whole module (inputs built once, shared by its tests), with
    an in-memory Dagster instance."""
    root = tmp_path_factory.mktemp("lake")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        embedded_lake(root, monkeypatch, in_memory=True) as built,
    ):
        yield built
