"""Usage events from landing files to marts.fct_usage_daily, on a real embedded lakehouse."""

import hashlib
import json
import os

import dagster as dg

from c360_assets.lib import ingest
from c360_assets.lib.partitions import RANGE_END_TAG, RANGE_START_TAG
from tests.records import billing_customer, event


def facts(lake) -> dict[tuple, tuple]:
    """(usage_date, tenant, product) -> (events, units)."""
    return {
        (r["usage_date"].isoformat(), r["tenant_id"], r["product"]): (r["events"], r["units"])
        for r in lake.rows("marts.fct_usage_daily")
    }


def test_dedupe_utc_days_and_quarantine(lake):
    lake.drop(
        "usage_events",
        "2026-10-01.jsonl",
        [
            # 23:30 at -05:00 is 04:30 UTC the next day: it belongs to 2026-10-02
            event(
                event_id="e1", tenant_id="T1", occurred_at="2026-10-01T23:30:00-05:00", quantity=2
            ),
            # 00:30 at +02:00 is 22:30 UTC the previous day: 2026-09-30
            event(
                event_id="e2", tenant_id="t1", occurred_at="2026-10-01T00:30:00+02:00", quantity=3
            ),
            event(event_id="e3", tenant_id=" t1 ", occurred_at="2026-10-01T12:00:00Z", quantity=5),
            # in-file re-delivery
            event(event_id="e3", tenant_id=" t1 ", occurred_at="2026-10-01T12:00:00Z", quantity=5),
            "{not json",
            json.dumps(
                event(
                    event_id="e4",
                    tenant_id="t1",
                    occurred_at="2026-10-01T12:00:00Z",
                    quantity="lots",
                )
            ),
            json.dumps(
                event(
                    event_id="e5", tenant_id="t1", occurred_at="2026-10-01T12:00:00Z", quantity=-1
                )
            ),
            json.dumps({"event_id": "e6", "product": "kyc_check", "occurred_at": "2026-10-01"}),
            json.dumps(
                {
                    "event_id": "e7",
                    "tenant_id": "t1",
                    "product": "kyc_check",
                    "occurred_at": "2026-10-01T12:00:00Z",
                }
            ),  # quantity defaults to 1
        ],
    )
    lake.drop(
        "usage_events",
        "2026-10-04.jsonl.gz",
        [
            # cross-file re-delivery, days later
            event(event_id="e3", tenant_id="t1", occurred_at="2026-10-01T12:00:00Z", quantity=5),
            event(
                event_id="e8",
                tenant_id="t2",
                occurred_at="2026-10-01T23:59:59.999999Z",
                quantity=7,
                product="device_intel",
            ),
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-09-30", "2026-10-01", "2026-10-02"]
    assert facts(lake) == {
        ("2026-09-30", "t1", "fraud_score"): (1, 3),  # e2
        ("2026-10-01", "t1", "fraud_score"): (1, 5),  # e3 once, though delivered 3 times
        ("2026-10-01", "t1", "kyc_check"): (1, 1),  # e7, default quantity
        ("2026-10-01", "t2", "device_intel"): (1, 7),  # e8, one microsecond before midnight
        ("2026-10-02", "t1", "fraud_score"): (1, 2),  # e1
    }
    quarantine = lake.rows("raw.quarantine", order_by=("source_file", "source_line"))
    assert [(q["source_line"], q["reason"]) for q in quarantine] == [
        (5, "invalid JSON"),
        (6, "wrong type for quantity"),
        (7, "quantity below 0"),
        (8, "missing tenant_id; wrong type for occurred_at"),
    ]
    assert quarantine[0]["raw_text"] == "{not json"
    assert {q["source_file"] for q in quarantine} == {"usage_events/2026-10-01.jsonl"}
    # rows in = rows accepted + rows quarantined, per file
    files = {f["source_file"]: f for f in lake.rows("raw.landing_files")}
    first = files["usage_events/2026-10-01.jsonl"]
    assert (first["rows_in"], first["rows_accepted"], first["rows_quarantined"]) == (9, 5, 4)
    second = files["usage_events/2026-10-04.jsonl.gz"]
    assert (second["rows_in"], second["rows_accepted"], second["rows_quarantined"]) == (2, 2, 0)
    # deduplication is a step of the fact's build, never stored (its first-delivery rule:
    # tests/models/test_usage_models.py)
    assert not lake.lakehouse.table_exists("staging.stg_usage_events")


def test_same_file_twice_and_repeated_run_change_nothing(lake, monkeypatch):
    records = [
        event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T10:00:00Z", quantity=4),
        event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z"),
    ]
    lake.drop("usage_events", "a.jsonl", records)
    lake.run()
    before = facts(lake)
    snapshot = lake.lakehouse.current_snapshot_id("raw.usage_events")
    hashed = []
    digest = ingest.file_digest
    monkeypatch.setattr(
        ingest, "file_digest", lambda path: hashed.append(path.name) or digest(path)
    )
    # a file still at the path, size and mtime it was ingested with is not even read again
    assert lake.run().rebuilt == {"daily": [], "monthly": []}
    assert hashed == []
    lake.drop("usage_events", "a-copy.jsonl", records)  # same bytes, another name
    # and the same file touched again: its modification time moves by a whole second, whatever
    # the file system's timestamp granularity
    touched = lake.landing / "usage_events" / "a.jsonl"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    report = lake.run()
    assert sorted(hashed) == ["a-copy.jsonl", "a.jsonl"]  # both read: content already ingested
    assert report.rebuilt == {"daily": [], "monthly": []}
    assert lake.lakehouse.current_snapshot_id("raw.usage_events") == snapshot
    assert len(lake.rows("raw.usage_events")) == 2
    assert len(lake.rows("raw.landing_files")) == 1
    assert (
        facts(lake)
        == before
        == {
            ("2026-10-01", "t1", "fraud_score"): (1, 4),
            ("2026-10-02", "t1", "fraud_score"): (1, 1),
        }
    )


def _materialize_days(lake, first: str, last: str) -> None:
    job = lake.definitions().resolve_job_def("daily_job")
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    assert job.execute_in_process(instance=lake.instance, tags=tags).success


def test_late_file_rebuilds_only_its_day_via_sensor(lake):
    days = ["2026-10-01", "2026-10-02", "2026-10-03"]
    lake.drop(
        "usage_events",
        "d1.jsonl",
        [
            event(event_id=f"e{i}", tenant_id="t1", occurred_at=f"{day}T08:00:00Z", quantity=i + 1)
            for i, day in enumerate(days)
        ],
    )
    lake.run()
    files_before = lake.data_files("marts.fct_usage_daily")
    assert set(files_before) == set(days)

    defs = lake.definitions()
    ingest = defs.resolve_job_def("ingest_job")
    daily_sensor = defs.resolve_sensor_def("daily_partitions_sensor")
    # the sensor's first tick starts from what lake.run() built (the cursor they share)
    assert isinstance(daily_sensor(lake.sensor_context()), dg.SkipReason)
    # two ingestions between ticks: a late event for 10-02, then one for 10-05
    lake.drop(
        "usage_events",
        "late-1.jsonl",
        [event(event_id="x1", tenant_id="t1", occurred_at="2026-10-02T23:00:00Z", quantity=10)],
    )
    assert ingest.execute_in_process(instance=lake.instance).success
    lake.drop(
        "usage_events",
        "late-2.jsonl",
        [event(event_id="x2", tenant_id="t1", occurred_at="2026-10-05T01:00:00Z", quantity=20)],
    )
    assert ingest.execute_in_process(instance=lake.instance).success

    # usage ingestion feeds no unpartitioned model: nothing to refresh, nothing held back
    refresh_sensor = defs.resolve_sensor_def("refresh_sensor")
    assert isinstance(refresh_sensor(lake.sensor_context()), dg.SkipReason)
    context = lake.sensor_context()
    requests = daily_sensor(context)
    ranges = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)
    assert ranges == [("2026-10-02", "2026-10-02"), ("2026-10-05", "2026-10-05")]
    assert len({r.run_key for r in requests}) == 2
    # a second tick with the advanced cursor requests nothing
    again = lake.sensor_context(context.cursor)
    assert isinstance(daily_sensor(again), dg.SkipReason)

    for first, last in ranges:  # what the daemon launches
        _materialize_days(lake, first, last)
    files_after = lake.data_files("marts.fct_usage_daily")
    assert files_after["2026-10-01"] == files_before["2026-10-01"]
    assert files_after["2026-10-03"] == files_before["2026-10-03"]
    assert files_after["2026-10-02"] != files_before["2026-10-02"]
    assert facts(lake) == {
        ("2026-10-01", "t1", "fraud_score"): (1, 1),
        ("2026-10-02", "t1", "fraud_score"): (2, 12),
        ("2026-10-03", "t1", "fraud_score"): (1, 3),
        ("2026-10-05", "t1", "fraud_score"): (1, 20),
    }


def test_identity_change_rebuilds_the_remapped_tenants_days(lake):
    lake.drop(
        "usage_events",
        "u.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T08:00:00Z"),
            event(event_id="e2", tenant_id="t2", occurred_at="2026-10-02T08:00:00Z"),
        ],
    )
    lake.run()
    assert {r["customer_key"] for r in lake.rows("marts.fct_usage_daily")} == {"unknown"}
    lake.drop(
        "billing/customers",
        "customers.csv",
        [
            billing_customer(
                billing_customer_id=" CUS_9",
                tenant_id="T2 ",
                crm_account_id="",
                currency="usd",
                created_at="2026-01-01T00:00:00Z",
            )
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-10-02"]  # only t2's day
    keys = {r["tenant_id"]: r["customer_key"] for r in lake.rows("marts.fct_usage_daily")}
    # t2 now belongs to the billing-only customer cus_9: md5('billing:cus_9'), first 16 hex
    assert keys == {"t1": "unknown", "t2": hashlib.md5(b"billing:cus_9").hexdigest()[:16]}


def test_usage_waits_for_the_refresh_a_billing_file_needs(lake):
    lake.drop(
        "usage_events",
        "d1.jsonl",
        [event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T08:00:00Z")],
    )
    lake.run()
    defs = lake.definitions()
    daily_sensor = defs.resolve_sensor_def("daily_partitions_sensor")
    refresh_sensor = defs.resolve_sensor_def("refresh_sensor")
    # a first tick finds what lake.run() built already built (the cursor they share)
    first = lake.sensor_context()
    assert isinstance(daily_sensor(first), dg.SkipReason)
    lake.drop(
        "usage_events",
        "d2.jsonl",
        [event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T08:00:00Z")],
    )
    lake.drop(
        "billing/customers",
        "c.csv",
        [
            billing_customer(
                billing_customer_id="cus_1",
                tenant_id="t9",
                crm_account_id="",
                currency="usd",
                created_at="2026-01-01T00:00:00Z",
            )
        ],
    )
    assert defs.resolve_job_def("ingest_job").execute_in_process(instance=lake.instance).success

    # a billing file can remap tenants: the new usage day waits for the refresh
    context = lake.sensor_context(first.cursor)
    assert isinstance(daily_sensor(context), dg.SkipReason)
    tick = lake.sensor_context()
    request = refresh_sensor(tick)
    assert isinstance(request, dg.RunRequest)
    assert refresh_sensor(tick).run_key == request.run_key  # the same request, deduplicated
    # more usage while the refresh is pending asks for no second refresh
    lake.drop(
        "usage_events", "d3.jsonl", [event(event_id="e3", occurred_at="2026-10-02T09:00:00Z")]
    )
    assert defs.resolve_job_def("ingest_job").execute_in_process(instance=lake.instance).success
    assert refresh_sensor(tick).run_key == request.run_key

    assert defs.resolve_job_def("refresh_job").execute_in_process(instance=lake.instance).success
    assert isinstance(refresh_sensor(tick), dg.SkipReason)
    context = lake.sensor_context(context.cursor)
    ranges = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in daily_sensor(context))
    assert ranges == [("2026-10-02", "2026-10-02")]


def test_rows_conserved_fails_when_landed_rows_go_missing(lake):
    from pyiceberg.expressions import EqualTo

    from c360_assets.defs.ingest.assets import ingestion_checks
    from c360_assets.defs.ingest.sources import USAGE

    records = [
        event(event_id="e1", tenant_id="t1", occurred_at="2026-10-01T10:00:00Z"),
        event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z"),
        "not json",
    ]
    lake.drop("usage_events", "a.jsonl", records)
    summary = ingest.ingest_source(lake.lakehouse, USAGE)
    # 3 lines = 2 accepted (10-01, 10-02) + 1 quarantined
    conserved, *_ = ingestion_checks(lake.lakehouse, USAGE, summary)
    assert conserved.passed and conserved.metadata["files_not_conserved"].value == 0
    # a landed row lost afterwards (its day's partition emptied) is caught
    lake.lakehouse.load(USAGE.table).delete(EqualTo("event_date", "2026-10-02"))
    conserved, *_ = ingestion_checks(lake.lakehouse, USAGE, summary)
    assert not conserved.passed and conserved.metadata["files_not_conserved"].value == 1
