"""The spike thresholds of marts.usage_anomalies (sql/risk/usage_anomalies.sql), each by a near
miss: one unit (or one day of history) on either side of minimum score 6, minimum excess 25
units, minimum ratio 2x the baseline and minimum history 14 days. The model's SQL runs on
hand-built daily usage of one day, 2026-10-31; every tenant is covered by a subscription, so
only the spike rule can flag. Baselines are worked out in the comments."""

import datetime as dt

import pyarrow as pa

from c360_assets.lib.sqlmodel import run_sql, sql_text

DAY = dt.date(2026, 10, 31)
KEY = "k1"  # every tenant's customer


def days_before(n: int) -> dt.date:
    return DAY - dt.timedelta(days=n)


def series(tenant_id: str, history: dict[int, int], units: int) -> list[dict]:
    """A tenant's daily usage: ``history`` maps days before DAY to units; ``units`` on DAY."""
    rows = {days_before(n): u for n, u in history.items()} | {DAY: units}
    return [
        {
            "usage_date": day,
            "customer_key": KEY,
            "tenant_id": tenant_id,
            "product": "fraud_score",
            "events": 1,
            "units": u,
        }
        for day, u in sorted(rows.items())
    ]


# 20 days of history, D-20 .. D-1: eight 10s, six 20s, six days without usage (zeros). Sorted:
# 0 x6, 10 x8, 20 x6 -> median 10; deviations 0 x8, 10 x12 -> MAD 10, scale 1.4826 x 10 =
# 14.826 (p90 = 20: (20 - 10) / 1.2816 = 7.8 is smaller); median of the days with usage 10.
# Score 6 needs 10 + 6 x 14.826 = 98.956 units: 99 scores 6.0029, 98 scores 5.9355.
SPREAD = {n: 10 for n in range(13, 21)} | {n: 20 for n in range(7, 13)}


def flat(units: int, days: int = 20) -> dict[int, int]:
    """``units`` on each of the ``days`` days before DAY: median = units, MAD 0, scale 1."""
    return {n: units for n in range(1, days + 1)}


USAGE = [
    *series("score_6.00", SPREAD, 99),
    *series("score_5.94", SPREAD, 98),
    # flat 20: excess 45 - 20 = 25 (score 25, 45 >= 2 x 20); 44 is 24 above
    *series("excess_25", flat(20), 45),
    *series("excess_24", flat(20), 44),
    # flat 30: 60 = 2 x 30 (excess 30, score 30); 59 is under twice the baseline
    *series("ratio_2.00", flat(30), 60),
    *series("ratio_1.97", flat(30), 59),
    # 500 against a flat 20: judged with 14 days of history (D-14 .. D-1), not with 13
    *series("history_14", flat(20, days=14), 500),
    *series("history_13", flat(20, days=13), 500),
]
TENANTS = sorted({row["tenant_id"] for row in USAGE})


def anomalies() -> dict[str, tuple]:
    inputs = {
        "fct_usage_daily": pa.Table.from_pylist(USAGE),
        "int_tenants_resolved": pa.Table.from_pylist(
            [{"tenant_id": t, "billing_customer_id": "cus_1", "customer_key": KEY} for t in TENANTS]
        ),
        "int_subscription_coverage": pa.Table.from_pylist(
            [
                {
                    "subscription_id": "sub_1",
                    "billing_customer_id": "cus_1",
                    "customer_key": KEY,
                    "covered_from": dt.date(2026, 1, 1),
                    "covered_until": None,
                }
            ],
            schema=pa.schema(
                [
                    ("subscription_id", pa.string()),
                    ("billing_customer_id", pa.string()),
                    ("customer_key", pa.string()),
                    ("covered_from", pa.date32()),
                    ("covered_until", pa.date32()),
                ]
            ),
        ),
    }
    params = {"window_start": DAY, "window_end": DAY + dt.timedelta(days=1)}
    rows = run_sql(sql_text("risk/usage_anomalies"), inputs, params).to_pylist()
    assert {(r["usage_date"], r["customer_key"], r["product"]) for r in rows} <= {
        (DAY, KEY, "fraud_score")
    }
    return {
        r["tenant_id"]: (
            r["units"],
            r["baseline_units"],
            r["score"],
            r["reason"],
            r["reasons"],
            r["history_days"],
        )
        for r in rows
    }


def test_each_spike_threshold_flags_at_the_line_and_not_one_below():
    assert anomalies() == {
        # (units, baseline_units, score, reason, reasons, history_days)
        "score_6.00": (99, 10.0, 6.0, "spike", "spike", 20),
        "excess_25": (45, 20.0, 25.0, "spike", "spike", 20),
        "ratio_2.00": (60, 30.0, 30.0, "spike", "spike", 20),
        "history_14": (500, 20.0, 480.0, "spike", "spike", 14),
    }
