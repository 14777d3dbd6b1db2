"""c360's Dagster home keeps its SQLite event log connections open (tools/event_log.py): the same
databases Dagster's own class writes, read back by it; engines bounded; none carried over a fork."""

import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from c360_assets.tools import event_log
from c360_assets.tools.event_log import MAX_ENGINES, PooledSqliteEventLogStorage
from c360_assets.tools.instance import dagster_home


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="probe")])
def probe(context: dg.AssetExecutionContext):
    yield dg.MaterializeResult(metadata={"rows": 3})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    return dagster_home()


def materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([probe], instance=instance)
    assert result.success
    return result.run_id


def test_the_event_log_is_dagsters_own_databases_read_back_by_dagsters_own_class(home) -> None:
    assert f'base_dir: "{home.resolve()}/history/runs"' in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        run_ids = [materialize(instance) for _ in range(2)]
        # the index and each run's database: one engine each, kept between statements
        assert set(storage._engines) == {"index", *run_ids}
        stored = [len(instance.all_logs(run_id)) for run_id in run_ids]
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        assert [len(plain.get_logs_for_run(run_id)) for run_id in run_ids] == stored
        materializations = plain.fetch_materializations(dg.AssetKey("probe"), limit=10).records
        assert sorted(r.run_id for r in materializations) == sorted(run_ids)
        (check,) = plain.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("probe"), "positive"), limit=1
        )
        assert check.run_id == run_ids[-1]
    finally:
        plain.dispose()


def test_engines_beyond_the_bound_are_disposed_and_their_runs_stay_readable(home) -> None:
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        run_ids = [materialize(instance) for _ in range(MAX_ENGINES + 2)]
        assert len(storage._engines) == MAX_ENGINES
        # the index is in use all the time: never the least recently used
        assert "index" in storage._engines and run_ids[0] not in storage._engines
        assert len(instance.all_logs(run_ids[0])) == len(instance.all_logs(run_ids[-1]))
        assert run_ids[0] in storage._engines  # opened again to read it
        assert len(storage._engines) == MAX_ENGINES
    assert storage._engines == {}  # disposed with the instance


def test_a_forked_child_starts_without_its_parents_connections(home) -> None:
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        materialize(instance)
        assert storage._engines
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if it holds no engine of its parent
            os._exit(0 if storage._engines == {} else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert storage._engines  # the parent keeps its own
        assert storage in event_log._OPEN
        materialize(instance)


def test_after_a_wipe_a_run_is_stored_in_new_files_not_in_the_deleted_ones(home) -> None:
    """Dagster's wipe deletes the runs' databases: a connection kept open to one would go on
    writing into the deleted file. Open engines are closed first; the next run is stored anew."""
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        before = materialize(instance)
        instance.wipe()
        assert not (home / "history" / "runs" / f"{before}.db").exists()
        assert set(storage._engines) <= {"index"}  # only the index, opened again by the wipe
        after = materialize(instance)
        stored = len(instance.all_logs(after))
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        assert len(plain.get_logs_for_run(after)) == stored > 0
        assert plain.get_logs_for_run(before) == []
        (record,) = plain.fetch_materializations(dg.AssetKey("probe"), limit=10).records
        assert record.run_id == after
    finally:
        plain.dispose()
