"""Dagster's SQLite event log, keeping its database connections open between statements.

Dagster's own ``SqliteEventLogStorage`` creates a SQLAlchemy engine, connects, runs one statement
and disposes the engine again for every event it stores or reads (``_connect``); an asset event
does that twice (the run's database and the index). That cost, about 8 ms an event here, was a
tenth of a late-data ``c360 run`` (docs/performance.md, session 9). This subclass keeps one
engine, with its connection pool, per database file: the same files, tables and statements, the
same lock around each use, the same busy timeout.

It is what c360's instance settings name (``c360_assets/tools/instance.py``), so every process of
a c360 home uses it: ``c360`` commands, the daemon, the webserver and the runs they launch.
Engines are bounded (the least recently used beyond ``MAX_ENGINES`` is disposed: a webserver reads
many runs' databases), dropped in a forked child (a pooled SQLite connection must not cross a
fork), and closed before a wipe deletes the files and when the instance is disposed.
"""

import functools
import os
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, create_engine

MAX_ENGINES = 16  # the index and the databases of the runs most recently used
_OPEN: "weakref.WeakSet[PooledSqliteEventLogStorage]" = weakref.WeakSet()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one pooled engine per database file (index and runs)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)
        _register_fork_hook()
        _OPEN.add(self)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "PooledSqliteEventLogStorage":
        return cls(base_dir=config_value["base_dir"], inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                while len(self._engines) > MAX_ENGINES:
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _forget_engines(self, close: bool) -> None:
        engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose(close=close)

    def wipe(self) -> None:
        """Dagster's wipe deletes the runs' database files: none may stay open under a pool."""
        with self._db_lock:
            self._forget_engines(close=True)
        super().wipe()

    def dispose(self) -> None:
        with self._db_lock:
            self._forget_engines(close=True)
        super().dispose()


@functools.cache
def _register_fork_hook() -> None:
    """Once a process, by the first storage made (not at import)."""
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    """A child of a fork starts with no engine: its parent's connections stay the parent's."""
    for storage in list(_OPEN):
        storage._forget_engines(close=False)
