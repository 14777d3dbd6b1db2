"""Leases in the catalog's database (resources/leases.py), on the embedded SQLite catalog."""

import threading

import pyarrow as pa
import pytest
import sqlalchemy as sa

from c360_assets.lib.sqlmodel import connect
from resources.lakehouse import LakehouseResource
from resources.leases import LeaseLost, Leases, LeaseTimeout


@pytest.fixture
def lakehouse(tmp_path) -> LakehouseResource:
    return LakehouseResource(
        catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse=str(tmp_path / "warehouse"),
        landing_dir=str(tmp_path / "landing"),
    )


def test_a_held_lease_is_refused_to_another_holder_until_released(lakehouse):
    leases = lakehouse.leases
    with leases.hold("ingest/usage_events", holder="a"):
        taken, info = leases.try_acquire("ingest/usage_events", "b")
        assert (taken, info["holder"]) == (False, "a")
        assert leases.try_acquire("ingest/billing_invoices", "b")[0]  # another name is free
        names = [r["name"] for r in leases.held()]
        assert names == ["ingest/billing_invoices", "ingest/usage_events"]
    taken, info = leases.try_acquire("ingest/usage_events", "b")
    assert (taken, info["holder"]) == (True, "b")


def test_a_dead_holders_lease_expires_and_is_taken_over(lakehouse, monkeypatch):
    monkeypatch.setenv("C360_LEASE_TTL_SECONDS", "0")  # expired as soon as it is taken
    leases = lakehouse.leases
    assert leases.try_acquire("marts.fct_usage_daily/2026-10-01", "dead")[0]  # never extended
    taken, info = leases.try_acquire("marts.fct_usage_daily/2026-10-01", "next")
    assert (taken, info["holder"]) == (True, "next")


def test_a_waiting_holder_gets_the_lease_when_it_is_released(lakehouse):
    leases = lakehouse.leases
    waiting, done = threading.Event(), []

    def second() -> None:
        with leases.hold("marts.usage_anomalies", holder="second", on_wait=lambda _: waiting.set()):
            done.append(leases.held()[0]["holder"])

    with leases.hold("marts.usage_anomalies", holder="first"):
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(30)  # it asked, and waits
        assert not done
    thread.join(30)
    assert done == ["second"]
    assert leases.held() == []


def test_waiting_too_long_fails_naming_the_holder(lakehouse, monkeypatch):
    monkeypatch.setenv("C360_LEASE_WAIT_SECONDS", "0")
    leases = lakehouse.leases
    with (
        leases.hold("ingest/crm_accounts", holder="host:42:abcd"),
        pytest.raises(LeaseTimeout, match="held by host:42:abcd"),
        leases.hold("ingest/crm_accounts"),
    ):
        pass


def test_leases_of_two_catalogs_in_one_database_are_apart(tmp_path):
    uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    one, other = Leases(uri, "c360"), Leases(uri, "staging_copy")
    assert one.try_acquire("ingest/usage_events", "a")[0]
    assert other.try_acquire("ingest/usage_events", "b")[0]
    assert [r["holder"] for r in one.held()] == ["a"]


def test_a_lease_lost_under_its_holder_stops_the_next_commit(lakehouse, monkeypatch):
    monkeypatch.setenv("C360_LEASE_TTL_SECONDS", "0.4")  # heartbeat every 0.1 s
    leases = lakehouse.leases
    con = connect()
    con.register("batch", pa.table({"id": [1]}))
    with leases.hold("core.probe") as lease:
        # another holder takes it over (as if this one had stalled past its expiry)
        with sa.create_engine(lakehouse.catalog_db_uri).begin() as db:
            db.exec_driver_sql("update c360_leases set holder = 'thief'")
        assert lease.lost.wait(30)
        with pytest.raises(LeaseLost, match="core.probe"):
            lakehouse.write_query(con, "core.probe", "select * from batch")
    assert lakehouse.scan("core.probe").num_rows == 0  # nothing was committed
