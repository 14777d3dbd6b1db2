"""The risk domain's SQL models on hand-built rows (sql/risk/): subscription coverage, usage
anomalies against a key's own trailing baseline, month-over-month adoption."""

import datetime as dt

from tests.models.given import day, run_model, ts


def test_int_subscription_coverage_covers_whole_utc_days_from_the_latest_version():
    def version(subscription_id, valid_from, status, started, ended=None, plan="growth"):
        return {
            "subscription_id": subscription_id,
            "billing_customer_id": "cus_1",
            "plan_code": plan,
            "status": status,
            "started_at": ts(started),
            "ended_at": ts(ended) if ended else None,
            "valid_from": ts(valid_from),
        }

    rows = run_model(
        "int_subscription_coverage",
        {
            "int_subscription_versions": [
                version("sub_1", "2026-09-01T10:00", "active", "2026-09-01T10:00"),
                # the latest version: canceled, ending exactly at midnight -> 10-20 not covered
                version(
                    "sub_1",
                    "2026-10-10T00:00",
                    "canceled",
                    "2026-09-01T10:00",
                    "2026-10-20T00:00",
                    plan="scale",
                ),
                # starts 23:30 UTC on 09-15: that day is covered; ends 08:00 on 10-05: so is it
                version(
                    "sub_2", "2026-09-15T23:30", "active", "2026-09-15T23:30", "2026-10-05T08:00"
                ),
                # canceled without an end date: ends when the cancellation was recorded
                version("sub_3", "2026-10-07T13:00", "canceled", "2026-09-01T00:00"),
                # past due still covers, open-ended
                version("sub_4", "2026-09-01T00:00", "past_due", "2026-09-01T00:00"),
            ]
        },
        columns=(
            "subscription_id",
            "plan_code",
            "status",
            "ended_at",
            "covered_from",
            "covered_until",
        ),
    )
    assert rows == [
        {
            "subscription_id": "sub_1",
            "plan_code": "scale",
            "status": "canceled",
            "ended_at": ts("2026-10-20T00:00"),
            "covered_from": day("2026-09-01"),
            "covered_until": day("2026-10-20"),
        },
        {
            "subscription_id": "sub_2",
            "plan_code": "growth",
            "status": "active",
            "ended_at": ts("2026-10-05T08:00"),
            "covered_from": day("2026-09-15"),
            "covered_until": day("2026-10-06"),
        },
        {
            "subscription_id": "sub_3",
            "plan_code": "growth",
            "status": "canceled",
            "ended_at": ts("2026-10-07T13:00"),
            "covered_from": day("2026-09-01"),
            "covered_until": day("2026-10-08"),
        },
        {
            "subscription_id": "sub_4",
            "plan_code": "growth",
            "status": "past_due",
            "ended_at": None,
            "covered_from": day("2026-09-01"),
            "covered_until": None,
        },
    ]


SCORED = day("2026-10-05")


def usage_days(customer_key: str, tenant_id: str, units_by_day: dict[dt.date, int]) -> list:
    return [
        {
            "usage_date": on,
            "customer_key": customer_key,
            "tenant_id": tenant_id,
            "product": "fraud_score",
            "units": units,
        }
        for on, units in units_by_day.items()
    ]


def steady(units: int, days: int = 28) -> dict[dt.date, int]:
    """``units`` on each of the ``days`` days before 10-05."""
    return {SCORED - dt.timedelta(days=i): units for i in range(1, days + 1)}


def test_usage_anomalies_flags_spikes_and_usage_no_subscription_covers():
    usage = [
        # 28 days of 100 then 250: median 100, MAD 0, p90 100 -> scale 1, score 150; a spike
        *usage_days("ka", "ta", {**steady(100), SCORED: 250, day("2026-10-06"): 999}),
        # no subscription ever: flagged whatever its size, not judged as a spike (no history)
        *usage_days("kb", "tb", {SCORED: 5}),
        # its subscription ended 10-05 00:00 and it spikes: both reasons, the unpaid one first
        *usage_days("kc", "tc", {**steady(100), SCORED: 300}),
        # covered, no history: nothing to flag
        *usage_days("kd", "td", {SCORED: 5}),
        # back after silence: 10 days of history (< 14) -> not judged, however large
        *usage_days("kf", "tf", {**steady(10, days=10), SCORED: 1000}),
        # an occasional user: 100 on 09-07 and 10-04, 26 silent days -> median 0, score 100;
        # but 100 is not twice the median of its usage days (100): not a spike
        *usage_days("kg", "tg", {day("2026-09-07"): 100, day("2026-10-04"): 100, SCORED: 100}),
        # a tenant no customer claims
        *usage_days("unknown", "te", {SCORED: 7}),
    ]
    tenants = [
        {"tenant_id": t, "billing_customer_id": f"cus_{t[1]}"}
        for t in ("ta", "tb", "tc", "td", "tf", "tg")
    ]
    coverage = [
        {"billing_customer_id": "cus_a", "covered_from": day("2026-09-01")},
        {
            "billing_customer_id": "cus_c",
            "covered_from": day("2026-09-01"),
            "covered_until": day("2026-10-05"),
        },
        {
            "billing_customer_id": "cus_d",
            "covered_from": day("2026-09-01"),
            "covered_until": day("2026-10-06"),
        },
        {"billing_customer_id": "cus_f", "covered_from": day("2026-09-01")},
        {"billing_customer_id": "cus_g", "covered_from": day("2026-09-01")},
    ]
    rows = run_model(
        "usage_anomalies",
        {
            "fct_usage_daily": usage,
            "int_tenants_resolved": tenants,
            "int_subscription_coverage": coverage,
        },
        (SCORED, SCORED + dt.timedelta(days=1)),
    )

    def flagged(customer_key, tenant_id, units, baseline, score, reasons, history_days):
        return {
            "usage_date": SCORED,
            "customer_key": customer_key,
            "tenant_id": tenant_id,
            "product": "fraud_score",
            "units": units,
            "baseline_units": baseline,
            "score": score,
            "reason": reasons.split(",")[0],
            "reasons": reasons,
            "history_days": history_days,
        }

    unpaid, ended = "no_active_subscription", "usage_after_subscription_ended"
    assert rows == [
        flagged("ka", "ta", 250, 100.0, 150.0, "spike", 28),
        flagged("kb", "tb", 5, None, None, unpaid, 0),
        flagged("kc", "tc", 300, 100.0, 200.0, f"{ended},spike", 28),
        flagged("unknown", "te", 7, None, None, unpaid, 0),
    ]


def test_fct_customer_adoption_monthly_compares_each_customer_with_its_month_before():
    september, october = day("2026-09-01"), day("2026-10-01")

    def month(on: dt.date, customer_key: str, usage_units: int) -> dict:
        return {"month": on, "customer_key": customer_key, "usage_units": usage_units}

    def used(on: str, customer_key: str, product: str) -> dict:
        return {"usage_date": day(on), "customer_key": customer_key, "product": product}

    rows = run_model(
        "fct_customer_adoption_monthly",
        {
            "fct_customer_month": [
                month(september, "ka", 100),
                month(october, "ka", 150),
                month(october, "kb", 10),  # new in October
                month(september, "kc", 50),
                month(october, "kc", 50),
                month(september, "kd", 80),
                month(october, "kd", 40),
                month(september, "kz", 0),
                month(october, "kz", 5),
            ],
            "fct_usage_daily": [
                used("2026-09-03", "ka", "fraud_score"),
                used("2026-09-30", "ka", "kyc"),
                used("2026-10-01", "ka", "fraud_score"),
                used("2026-10-09", "ka", "payments"),
                used("2026-10-09", "kb", "kyc"),
            ],
        },
        (october, day("2026-11-01")),
        columns=(
            "customer_key",
            "usage_units",
            "previous_usage_units",
            "usage_units_change",
            "usage_units_change_pct",
            "products",
            "products_adopted",
            "products_dropped",
            "units_trend",
        ),
    )

    def adoption(
        customer_key, units, previous, pct, trend, products=None, adopted=None, dropped=None
    ):
        return {
            "customer_key": customer_key,
            "usage_units": units,
            "previous_usage_units": previous,
            "usage_units_change": units - previous,
            "usage_units_change_pct": pct,
            "products": products,
            "products_adopted": adopted,
            "products_dropped": dropped,
            "units_trend": trend,
        }

    assert rows == [
        # +50 of 100; payments new, kyc gone
        adoption("ka", 150, 100, 50.0, "up", "fraud_score,payments", "payments", "kyc"),
        adoption("kb", 10, 0, None, "new", "kyc", "kyc"),
        adoption("kc", 50, 50, 0.0, "flat"),
        adoption("kd", 40, 80, -50.0, "down"),
        # up from a zero month: no percentage
        adoption("kz", 5, 0, None, "up"),
    ]
