"""marts.fct_customer_adoption_monthly (Sales adoption) on a real embedded lakehouse: month over
month units and the products adopted and dropped, with the account owner. Expected values are
worked out by hand in the comments."""

import datetime as dt
import hashlib

from tests.records import billing_customer, crm_account, event

ANN = hashlib.md5(b"crm:acc_1").hexdigest()[:16]


def test_adoption_compares_each_month_with_the_month_before(lake):
    lake.drop(
        "crm/accounts",
        "2026-09-01.jsonl",
        [
            crm_account(
                crm_account_id="acc_1",
                account_name="Acme",
                owner_name="Ann",
                billing_customer_id="cus_1",
                updated_at="2026-09-01T00:00:00Z",
                snapshot_at="2026-09-01T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_1",
                tenant_id="t1",
                crm_account_id="acc_1",
                created_at="2026-09-01T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            # September: fraud_score 10 + device_intel 5 = 15 units on 2 days
            event(
                event_id="s1",
                occurred_at="2026-09-03T10:00:00Z",
                quantity=10,
                product="fraud_score",
            ),
            event(
                event_id="s2",
                occurred_at="2026-09-04T10:00:00Z",
                quantity=5,
                product="device_intel",
            ),
            # October: fraud_score 20 + kyc_check 7 + 3 = 30 units on 3 days
            event(
                event_id="o1",
                occurred_at="2026-10-02T10:00:00Z",
                quantity=20,
                product="fraud_score",
            ),
            event(
                event_id="o2", occurred_at="2026-10-05T10:00:00Z", quantity=7, product="kyc_check"
            ),
            event(
                event_id="o3", occurred_at="2026-10-06T10:00:00Z", quantity=3, product="kyc_check"
            ),
        ],
    )
    lake.run()

    rows = {
        r["month"]: r
        for r in lake.rows("marts.fct_customer_adoption_monthly")
        if r["customer_key"] == ANN
    }
    columns = (
        "owner_name",
        "usage_units",
        "previous_usage_units",
        "usage_units_change",
        "usage_units_change_pct",
        "active_days",
        "previous_active_days",
        "products",
        "products_adopted",
        "products_adopted_count",
        "products_dropped",
        "products_dropped_count",
        "units_trend",
    )
    # September is the first month: everything is adopted, compared with 0; no % change.
    september = ("Ann", 15, 0, 15, None, 2, 0, "device_intel,fraud_score",
                 "device_intel,fraud_score", 2, None, 0, "new")  # fmt: skip
    # October: 30 vs 15 units = +15 (+100.0 %); kyc_check adopted, device_intel dropped.
    october = ("Ann", 30, 15, 15, 100.0, 3, 2, "fraud_score,kyc_check", "kyc_check", 1,
               "device_intel", 1, "up")  # fmt: skip
    assert {m: tuple(r[c] for c in columns) for m, r in rows.items()} == {
        dt.date(2026, 9, 1): september,
        dt.date(2026, 10, 1): october,
    }
