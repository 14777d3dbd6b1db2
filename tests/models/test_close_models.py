"""The close domain's SQL model on hand-built rows (sql/close/): restatements of closed months."""

import datetime as dt
from decimal import Decimal

from tests.models.given import day, run_model, ts

OCTOBER, SEPTEMBER = day("2026-10-01"), day("2026-09-01")
FIRST_SEEN = ts("2026-11-02T00:00")


def test_restatements_list_every_measure_that_differs_from_the_closed_month():
    def facts(month: dt.date, customer_key: str, **measures) -> dict:
        return {"month": month, "customer_key": customer_key, **measures}

    def restatement(customer_key: str, measure: str, as_closed, restated) -> dict:
        return {
            "month": OCTOBER,
            "customer_key": customer_key,
            "measure": measure,
            "as_closed": as_closed,
            "restated": restated,
            "close_tag": "close-2026-10",
        }

    before = dt.datetime.now(dt.UTC)
    rows = run_model(
        "restatements",
        {
            "fct_customer_month": [
                facts(
                    OCTOBER, "ka", usage_units=27, net_revenue_usd=Decimal("494.00"), segment="SMB"
                ),
                facts(OCTOBER, "kb", usage_units=3),  # appeared after the close
                facts(SEPTEMBER, "ka", usage_units=1),  # September was never closed
            ],
            "fct_customer_month_as_closed": [
                facts(
                    OCTOBER, "ka", usage_units=15, net_revenue_usd=Decimal("514.00"), segment="SMB"
                ),
                facts(OCTOBER, "kc", usage_units=8),  # gone since the close
            ],
            "previous_restatements": [
                # seen before with the same values: keeps its first detection time
                {**restatement("ka", "usage_units", "15", "27"), "detected_at": FIRST_SEEN},
                # seen before with another restated value: detected again now
                {
                    **restatement("ka", "net_revenue_usd", "514.00", "490.00"),
                    "detected_at": ts("2026-11-01T00:00"),
                },
            ],
        },
        (SEPTEMBER, day("2026-11-01")),
        columns=(
            "month",
            "customer_key",
            "measure",
            "as_closed",
            "restated",
            "detected_at",
            "close_tag",
        ),
    )
    detected = {(r["customer_key"], r["measure"]): r.pop("detected_at") for r in rows}
    assert rows == [
        restatement("ka", "net_revenue_usd", "514.00", "494.00"),
        restatement("ka", "usage_units", "15", "27"),
        restatement("kb", "usage_units", None, "3"),
        restatement("kc", "usage_units", "8", None),
    ]
    assert detected.pop(("ka", "usage_units")) == FIRST_SEEN
    # the others are detected by this build: one time, now
    (now,) = set(detected.values())
    assert before <= now <= dt.datetime.now(dt.UTC)
