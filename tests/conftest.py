"""Two tiers. The fast tier (``pytest -m "not stack"``) starts no server: an embedded lakehouse
(SQLite catalog, local warehouse), in-process Dagster, DuckDB. A test that needs a server
(PostgreSQL, Trino, the object store, the Dagster daemon) is in the ``stack`` tier: it is marked
``stack`` explicitly or, when it uses a server fixture, automatically here."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.lake import Lake, embedded_lake
from tests.stack_fixture import (  # noqa: F401  (the session's real stacks)
    cluster_stack,
    trino_stack,
)

# fixtures that start a server: a test using one (directly or through another fixture) is `stack`
SERVER_FIXTURES = {"trino_stack", "cluster_stack"}


# test data is thrown away: it lives in memory when the machine has a roomy tmpfs
MEMORY_FS = Path("/dev/shm")
MEMORY_FS_MIN_FREE = 2 << 30
BASETEMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Put the tests' temporary directories (embedded lakehouse, SQLite catalog, Dagster
    instance, stack data) on a tmpfs: every Iceberg commit and Dagster event is a SQLite commit,
    and on a disk each one waits for a flush that a throw-away test does not need. An explicit
    ``--basetemp`` wins; without a tmpfs the default temporary directory is used."""
    if config.option.basetemp or not MEMORY_FS.is_dir():
        return
    if shutil.disk_usage(MEMORY_FS).free < MEMORY_FS_MIN_FREE:
        return
    base = Path(tempfile.mkdtemp(prefix="c360-tests-", dir=MEMORY_FS))
    config.option.basetemp = str(base)
    config.stash[BASETEMP] = base


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(BASETEMP, None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture
def lake(request, tmp_path, monkeypatch) -> Lake:
    """A fresh embedded lakehouse under tmp_path, pointed to by the env, and a Dagster instance.

    The instance keeps its storage in memory (``DagsterInstance.ephemeral``): Dagster's SQLite
    storage opens a database and compiles its SQL again for every event a run logs, which was a
    third of the pipeline tests' time. A ``stack`` test shares its instance with another process
    (the Dagster daemon), and a ``dagster_home`` test with a c360 command, so they get the one in
    DAGSTER_HOME.
    """
    shared = any(request.node.get_closest_marker(m) for m in ("stack", "dagster_home"))
    with embedded_lake(tmp_path, monkeypatch, in_memory=not shared) as built:
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
