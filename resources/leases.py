"""Leases in the catalog's database: what must not run twice at once, across processes and hosts.

A lease is a row of ``c360_leases`` (name, holder, expiry) in the same database as the Iceberg
catalog, so it holds wherever the catalog is shared (PostgreSQL in the stack; the SQLite file of
the embedded default). Taking one is a single atomic upsert that succeeds only when the row is
absent or expired; the holder extends it from a heartbeat thread while it works and deletes it
when done. A holder that dies (SIGKILL, a lost machine) stops extending it, and the next taker
waits at most ``ttl_s`` for it to expire. Time is the database's clock, never a machine's.

Leases serialize work; they are not what makes a write correct. Every write is also safe on its
own (Iceberg's optimistic commits, batch and file ledgers in snapshot summaries), so a holder that
stalls past its expiry costs repeated work, never a doubled or lost row.
"""

from __future__ import annotations

import contextvars
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa

TABLE = "c360_leases"
TTL_S = 60.0  # C360_LEASE_TTL_SECONDS: how long a dead holder keeps a lease
WAIT_S = 3600.0  # C360_LEASE_WAIT_SECONDS: how long a taker waits before it gives up
_NOW = {  # the database's clock, in epoch seconds
    "postgresql": "extract(epoch from clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


# the leases held in this context (thread or task): every write checks them before committing
_HELD: contextvars.ContextVar[tuple[Lease, ...]] = contextvars.ContextVar("c360_leases", default=())


def check_held() -> None:
    """Raise ``LeaseLost`` if a lease held in this context expired under its holder: called
    right before every commit, so a holder that stalled past its expiry stops there."""
    for lease in _HELD.get():
        lease.check()


class LeaseTimeout(RuntimeError):
    """A lease stayed held by another holder for longer than the caller would wait."""


class LeaseLost(RuntimeError):
    """The lease expired under its holder (it stalled past ``ttl_s``); another may hold it now."""


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (one process may hold several)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@functools.cache
def _engine(uri: str) -> sa.Engine:
    kwargs: dict = {"pool_pre_ping": True}
    if uri.startswith("sqlite"):
        # writers wait for each other's short transactions instead of failing at once
        kwargs = {"connect_args": {"timeout": 30}}
    engine = sa.create_engine(uri, **kwargs)
    with engine.begin() as con:
        con.execute(
            sa.text(
                f"create table if not exists {TABLE} ("
                "name varchar(512) primary key, holder varchar(512) not null, "
                "acquired_at double precision not null, expires_at double precision not null)"
            )
        )
    return engine


@dataclass
class Lease:
    """A held lease; ``check()`` before an irreversible step raises if it was lost."""

    name: str
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(
                f"lease {self.name!r} expired under its holder {self.holder} (stalled longer "
                "than its time to live): stopping before the next write"
            )


class Leases:
    """The leases of one catalog (its database's SQLAlchemy URI and the catalog's name: several
    Iceberg catalogs may share one database, each with leases of its own).

    Lease names are given without the catalog; rows store ``<catalog>:<name>``."""

    def __init__(self, uri: str, catalog: str):
        self.uri = uri
        self.prefix = f"{catalog}:"
        self.ttl_s = float(os.environ.get("C360_LEASE_TTL_SECONDS", TTL_S))
        self.wait_s = float(os.environ.get("C360_LEASE_WAIT_SECONDS", WAIT_S))

    @property
    def _now(self) -> str:
        return _NOW[_engine(self.uri).dialect.name]

    def try_acquire(self, name: str, holder: str) -> tuple[bool, dict]:
        """Take ``name`` if it is free or expired (or already ours); returns (taken, its row)."""
        now, name = self._now, self.prefix + name
        with _engine(self.uri).begin() as con:
            con.execute(
                sa.text(
                    f"insert into {TABLE} (name, holder, acquired_at, expires_at) "
                    f"values (:name, :holder, {now}, {now} + :ttl) "
                    "on conflict (name) do update set holder = excluded.holder, "
                    "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
                    f"where {TABLE}.expires_at < {now} or {TABLE}.holder = excluded.holder"
                ),
                {"name": name, "holder": holder, "ttl": self.ttl_s},
            )
            row = con.execute(
                sa.text(
                    f"select holder, acquired_at, expires_at, {now} as now from {TABLE} "
                    "where name = :name"
                ),
                {"name": name},
            ).one()
        info = dict(row._mapping)
        return info["holder"] == holder, info

    def extend(self, name: str, holder: str) -> bool:
        """Push the expiry forward; False when the lease is no longer ours."""
        name = self.prefix + name
        with _engine(self.uri).begin() as con:
            result = con.execute(
                sa.text(
                    f"update {TABLE} set expires_at = {self._now} + :ttl "
                    "where name = :name and holder = :holder"
                ),
                {"name": name, "holder": holder, "ttl": self.ttl_s},
            )
        return result.rowcount == 1

    def release(self, name: str, holder: str) -> None:
        name = self.prefix + name
        with _engine(self.uri).begin() as con:
            con.execute(
                sa.text(f"delete from {TABLE} where name = :name and holder = :holder"),
                {"name": name, "holder": holder},
            )

    def held(self) -> list[dict]:
        """This catalog's lease rows (expired ones included, with the database's ``now``)."""
        with _engine(self.uri).begin() as con:
            rows = con.execute(
                sa.text(
                    f"select name, holder, acquired_at, expires_at, {self._now} as now "
                    f"from {TABLE} order by name"
                )
            )
            found = [dict(r._mapping) for r in rows]
        mine = [row for row in found if row["name"].startswith(self.prefix)]
        for row in mine:
            row["name"] = row["name"].removeprefix(self.prefix)
        return mine

    @staticmethod
    def expired(row: dict) -> bool:
        return row["expires_at"] < row["now"]

    @contextmanager
    def hold(
        self,
        name: str,
        holder: str | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[Lease]:
        """Hold ``name`` for the block: wait while another holds it (up to ``wait_s``, then
        ``LeaseTimeout`` naming the holder), keep it alive from a heartbeat thread, release it."""
        holder = holder or holder_id()
        deadline = time.monotonic() + self.wait_s
        pause, told = 0.05, False
        while True:
            taken, info = self.try_acquire(name, holder)
            if taken:
                break
            if time.monotonic() > deadline:
                raise LeaseTimeout(
                    f"waited {self.wait_s:.0f} s for {name!r}: it is held by {info['holder']} "
                    f"(taken {info['now'] - info['acquired_at']:.0f} s ago, expires in "
                    f"{info['expires_at'] - info['now']:.0f} s unless its holder extends it)"
                )
            if on_wait is not None and not told:
                on_wait(f"waiting for {name!r}, held by {info['holder']}")
                told = True
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        lease = Lease(name, holder)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.ttl_s / 4):
                try:
                    if not self.extend(name, holder):
                        lease.lost.set()
                        return
                except sa.exc.SQLAlchemyError:
                    continue  # the database is briefly unreachable: try again next beat

        beat = threading.Thread(target=heartbeat, name=f"lease:{name}", daemon=True)
        beat.start()
        token = _HELD.set((*_HELD.get(), lease))
        try:
            yield lease
        finally:
            _HELD.reset(token)
            stop.set()
            beat.join()
            self.release(name, holder)
