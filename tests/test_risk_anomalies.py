"""marts.usage_anomalies on a real embedded lakehouse: spikes against the key's own trailing
baseline, new keys, usage no subscription covers, and the late-data paths that re-judge past
days. Expected values are worked out by hand in the comments."""

import datetime as dt
import hashlib

from tests.records import billing_customer, event, subscription

ANOMALIES = "marts.usage_anomalies"
DAY0 = dt.date(2026, 9, 1)


def key(natural: str) -> str:
    """The durable customer_key of a billing-only customer: md5('billing:<id>')[:16]."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def morning(on: dt.date) -> str:
    """09:00 UTC on a day: the time of every usage event here."""
    return f"{on.isoformat()}T09:00:00Z"


def daily_usage(prefix: str, tenant_id: str, first: dt.date, units: list[int], **fields) -> list:
    """One event a day from ``first`` at 09:00 UTC, ``units[i]`` on day i (id ``<prefix><i>``)."""
    return [
        event(
            event_id=f"{prefix}{i}",
            tenant_id=tenant_id,
            occurred_at=morning(first + dt.timedelta(days=i)),
            quantity=u,
            **fields,
        )
        for i, u in enumerate(units)
    ]


def flagged(lake) -> dict[tuple, tuple]:
    """(usage_date, customer_key, tenant_id, product) -> (units, baseline, score, reason)."""
    return {
        (r["usage_date"].isoformat(), r["customer_key"], r["tenant_id"], r["product"]): (
            r["units"],
            r["baseline_units"],
            r["score"],
            r["reason"],
        )
        for r in lake.rows(ANOMALIES)
    }


def test_a_steady_customer_is_flagged_only_on_its_spike(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_a", tenant_id="ta", created_at="2026-08-01T00:00:00Z"
            )
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(
                subscription_id="sub_a",
                billing_customer_id="cus_a",
                started_at="2026-08-01T00:00:00Z",
                updated_at="2026-08-01T00:00:00Z",
            )
        ],
    )
    # 40 days, 09-01 .. 10-10: 90, 100, 110, 90, ... (day i: 90 + 10 * (i % 3)); 10-05 (i = 34)
    # has 400 instead of its ordinary 100
    units = [90 + 10 * (i % 3) for i in range(40)]
    units[34] = 400
    lake.drop(
        "usage_events",
        "usage.jsonl",
        daily_usage("e", "ta", DAY0, units),
    )
    lake.run()

    # 10-05: baseline days 09-07 .. 10-04 (i = 6..33, 28 days, all with usage):
    #   ten 90s (i % 3 = 0), nine 100s, nine 110s -> median 100;
    #   |x - 100|: nine 0s, nineteen 10s -> MAD 10; p90 = 110 -> (110 - 100) / 1.2816 = 7.8
    #   scale = max(1.4826 * 10, 7.8, 1) = 14.826; score = (400 - 100) / 14.826 = 20.23;
    #   400 >= 2 * 100 -> spike.
    # Every ordinary day: median 100 (the 400 replaces one 100), so |z| <= 10 / 14.826 < 1; the
    # first 13 days have under 14 days of history and are not judged at all.
    assert flagged(lake) == {
        ("2026-10-05", key("billing:cus_a"), "ta", "fraud_score"): (400, 100.0, 20.23, "spike"),
    }
    (row,) = lake.rows(ANOMALIES)
    assert (row["reasons"], row["history_days"]) == ("spike", 28)


def test_a_new_customer_is_not_flagged_and_late_history_rejudges_later_days(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_n", tenant_id="tn", created_at="2026-08-01T00:00:00Z"
            )
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(
                subscription_id="sub_n",
                billing_customer_id="cus_n",
                started_at="2026-09-01T00:00:00Z",
                updated_at="2026-09-01T00:00:00Z",
            )
        ],
    )
    start = day("2026-10-01")
    # fraud_score: a brand-new key, bursty from day one: 10, 10, 500, 10, 10, 500, ... (13 days)
    bursty = [500 if i % 3 == 2 else 10 for i in range(13)]
    # device_intel: 100 a day for 20 days, 400 on 10-14 (i = 13)
    steady = [400 if i == 13 else 100 for i in range(20)]
    lake.drop(
        "usage_events",
        "usage.jsonl",
        daily_usage("f", "tn", start, bursty, product="fraud_score")
        + daily_usage("d", "tn", start, steady, product="device_intel"),
    )
    lake.run()
    # fraud_score's 500s (10-03, -06, -09, -12) have 2..11 days of history (< 14): not judged.
    # Days before the first usage do not count as zeros, so "new" is never "spiking".
    # device_intel on 10-14 has 13 days of history (10-01 .. 10-13): not judged either.
    assert flagged(lake) == {}

    # A late event: device_intel on 09-28. Only that day is rebuilt by the daily job, but
    # usage_anomalies also rewrites the 28 days after it (rebuild_ahead):
    # 10-14's baseline now runs from 09-28: 100, then 0, 0 (09-29, 09-30: no usage), then
    # thirteen 100s -> 16 values: two 0s, fourteen 100s -> median 100, MAD 0, p90 = 100, so
    # scale = max(0, 0, 1) = 1 and score = (400 - 100) / 1 = 300; 400 >= 2 * 100 -> spike.
    # The other device_intel days are 100 = the median (score 0).
    lake.drop(
        "usage_events",
        "late.jsonl",
        [
            event(
                event_id="late1",
                tenant_id="tn",
                occurred_at=morning(day("2026-09-28")),
                quantity=100,
                product="device_intel",
            )
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-09-28"]
    assert flagged(lake) == {
        ("2026-10-14", key("billing:cus_n"), "tn", "device_intel"): (400, 100.0, 300.0, "spike"),
    }


def test_usage_without_a_subscription_and_after_a_late_cancellation(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_c", tenant_id="tc", created_at="2026-08-01T00:00:00Z"
            ),
            billing_customer(
                billing_customer_id="cus_d", tenant_id="td", created_at="2026-08-01T00:00:00Z"
            ),
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions-1.jsonl",
        [
            subscription(
                subscription_id="sub_c",
                billing_customer_id="cus_c",
                started_at="2026-09-01T00:00:00Z",
                updated_at="2026-09-01T00:00:00Z",
            ),
            subscription(
                subscription_id="sub_d",
                billing_customer_id="cus_d",
                started_at="2026-10-12T08:00:00Z",
                updated_at="2026-10-12T08:00:00Z",
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            event(
                event_id=f"c{d}",
                tenant_id="tc",
                occurred_at=morning(dt.date(2026, 10, d)),
                quantity=1,
            )
            for d in (9, 10, 11, 12)
        ]
        + [
            event(
                event_id=f"d{d}",
                tenant_id="td",
                occurred_at=morning(dt.date(2026, 10, d)),
                quantity=1,
            )
            for d in (11, 12)
        ]
        + [
            # tu: a tenant no customer claims
            event(event_id="u9", tenant_id="tu", occurred_at=morning(day("2026-10-09")), quantity=1)
        ],
    )
    lake.run()
    cus_c, cus_d = key("billing:cus_c"), key("billing:cus_d")
    # sub_c covers every day from 09-01; sub_d covers from 10-12 (started 08:00 that day), so
    # td's 10-11 is uncovered with nothing ended before it; tu has no subscription at all.
    # One day of history each: no baseline, no score.
    assert flagged(lake) == {
        ("2026-10-11", cus_d, "td", "fraud_score"): (1, None, None, "no_active_subscription"),
        ("2026-10-09", "unknown", "tu", "fraud_score"): (1, None, None, "no_active_subscription"),
    }

    # The cancellation arrives late: sub_c ended 10-10 at noon. 10-10 is still covered (active
    # at some instant of it); 10-11 and 10-12 are now after the end. The coverage model reports
    # exactly those usage days as touched, and only they are rebuilt.
    lake.drop(
        "billing/subscriptions",
        "subscriptions-2.jsonl",
        [
            subscription(
                subscription_id="sub_c",
                billing_customer_id="cus_c",
                started_at="2026-09-01T00:00:00Z",
                updated_at="2026-10-13T00:00:00Z",
                status="canceled",
                ended_at="2026-10-10T12:00:00Z",
            )
        ],
    )
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-10-11", "2026-10-12"]
    after_end = "usage_after_subscription_ended"
    assert flagged(lake) == {
        ("2026-10-11", cus_d, "td", "fraud_score"): (1, None, None, "no_active_subscription"),
        ("2026-10-09", "unknown", "tu", "fraud_score"): (1, None, None, "no_active_subscription"),
        ("2026-10-11", cus_c, "tc", "fraud_score"): (1, None, None, after_end),
        ("2026-10-12", cus_c, "tc", "fraud_score"): (1, None, None, after_end),
    }
