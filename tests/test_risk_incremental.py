"""usage_anomalies rewrites only the series whose daily usage changed
(c360_assets/lib/incremental.py), gives the rows a full rebuild gives, and catches up with changes
an earlier build never saw.
Expected values are worked out by hand in the comments."""

import datetime as dt

import dagster as dg

from c360_assets.lib.incremental import FULL_TAG
from c360_assets.lib.partitions import range_tags
from c360_assets.tools.runner import QUIET
from tests.records import billing_customer, subscription
from tests.test_risk_anomalies import daily_usage, flagged, key

START = dt.date(2026, 10, 1)


def _latest_metadata(lake, asset: str) -> dict:
    record = lake.instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
    return {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}


def _rows(lake) -> list[dict]:
    """Every column of every row of marts.usage_anomalies, in key order."""
    return lake.rows(
        "marts.usage_anomalies", order_by=("usage_date", "customer_key", "tenant_id", "product")
    )


def _execute(lake, job: str, first: dt.date, last: dt.date, assets=None, tags=None) -> None:
    result = (
        lake.definitions()
        .resolve_job_def(job)
        .execute_in_process(
            instance=lake.instance,
            tags={**range_tags(first, last), **(tags or {})},
            asset_selection=[dg.AssetKey(a) for a in assets] if assets else None,
            run_config=QUIET,
        )
    )
    assert result.success


def test_late_usage_rewrites_only_its_series_and_matches_a_full_rebuild(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [billing_customer(billing_customer_id=f"cus_{t}", tenant_id=f"t{t}") for t in ("a", "b")],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(
                subscription_id=f"sub_{t}",
                billing_customer_id=f"cus_{t}",
                started_at="2026-08-01T00:00:00Z",
                updated_at="2026-08-01T00:00:00Z",
            )
            for t in ("a", "b")
        ],
    )
    # tenants ta and tb: 100 units a day 10-01 .. 10-20, 400 on 10-17 (i = 16)
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            row
            for t in ("a", "b")
            for row in daily_usage(t, f"t{t}", START, [400 if i == 16 else 100 for i in range(20)])
        ],
    )
    lake.run()
    # 10-17: baseline 10-01 .. 10-16, sixteen 100s -> median 100, MAD 0, p90 100, scale 1,
    # score 300; 400 >= 2 * 100 and 300 >= 25 -> a spike for both tenants
    spike = (400, 100.0, 300.0, "spike")
    a_17 = ("2026-10-17", key("billing:cus_a"), "ta", "fraud_score")
    b_17 = ("2026-10-17", key("billing:cus_b"), "tb", "fraud_score")
    assert flagged(lake) == {a_17: spike, b_17: spike}

    # Late usage of ta only: +300 on each of 10-05 .. 10-12 (8 days at 400). Ingested, and
    # fct_usage_daily rebuilt for those days, but usage_anomalies is not (as when its step
    # failed): the watermark it recorded still names the fact table's snapshot before.
    lake.drop(
        "usage_events",
        "late.jsonl",
        daily_usage("late", "ta", START + dt.timedelta(days=4), [300] * 8),
    )
    lake.definitions().resolve_job_def("ingest_job").execute_in_process(
        instance=lake.instance, run_config=QUIET
    )
    late_first, late_last = dt.date(2026, 10, 5), dt.date(2026, 10, 12)
    _execute(lake, "daily_job", late_first, late_last, ("fct_usage_daily",))
    assert flagged(lake) == {a_17: spike, b_17: spike}  # not re-judged yet

    # The next usage_anomalies build, of another day (10-20), catches up: the fact table's
    # days 10-05 .. 10-12 changed, for one series (ta); it rewrites that series on every built
    # day whose baseline holds a changed day: 10-05 .. 10-20 (16 days; 10-12 + 28 is past the
    # last built day). tb's rows are kept as they were.
    _execute(lake, "daily_job", dt.date(2026, 10, 20), dt.date(2026, 10, 20), ("usage_anomalies",))
    meta = _latest_metadata(lake, "usage_anomalies")
    assert meta["rebuild_mode"] == "incremental"
    assert meta["changed_series"] == 1
    assert meta["patched_days"] == 16
    assert meta["changed_input_days"] == [
        (late_first + dt.timedelta(days=i)).isoformat() for i in range(8)
    ]
    # ta on 10-17: baseline 10-01 .. 10-16 = eight 100s (10-01..04, 10-13..16) and eight 400s
    # -> median 250; 400 < 2 * 250 -> no spike. Its 400 days 10-05..10-12 have under 14 days
    # of history (not judged), and its 100 days after them sit below the median.
    assert flagged(lake) == {b_17: spike}
    incremental = _rows(lake)
    # tb on 10-17, every column: its baseline 10-01 .. 10-16 (16 days of history)
    assert incremental == [
        {
            "usage_date": dt.date(2026, 10, 17),
            "customer_key": key("billing:cus_b"),
            "tenant_id": "tb",
            "product": "fraud_score",
            "units": 400,
            "baseline_units": 100.0,
            "score": 300.0,
            "reason": "spike",
            "reasons": "spike",
            "history_days": 16,
        }
    ]

    # A full rebuild of every day (tag c360/rebuild=full) gives the same rows.
    _execute(
        lake,
        "daily_job",
        START,
        dt.date(2026, 10, 20),
        ("usage_anomalies",),
        tags={FULL_TAG: "full"},
    )
    meta = _latest_metadata(lake, "usage_anomalies")
    assert meta["rebuild_mode"] == "full"
    assert meta["patched_days"] == 0
    assert _rows(lake) == incremental  # every column of every row

    # Nothing changed since: a rebuild of a day rewrites nothing and keeps every row.
    _execute(lake, "daily_job", dt.date(2026, 10, 17), dt.date(2026, 10, 17), ("usage_anomalies",))
    meta = _latest_metadata(lake, "usage_anomalies")
    assert (meta["rebuild_mode"], meta["changed_series"], meta["patched_days"]) == (
        "incremental",
        0,
        0,
    )
    assert _rows(lake) == incremental
