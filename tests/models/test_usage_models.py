"""The usage domain's SQL models on hand-built rows (sql/usage/)."""

from tests.models.given import day, landed, run_intermediate, run_model, ts
from tests.records import event

OCTOBER_1 = (day("2026-10-01"), day("2026-10-02"))


def delivered(event_id: str, tenant_id: str, product: str, quantity: int, at: str) -> dict:
    """A raw usage event as ingestion lands it: event_date is the UTC date of occurred_at."""
    record = event(event_id=event_id, tenant_id=tenant_id, product=product, quantity=quantity)
    return {**record, "occurred_at": ts(at), "event_date": ts(at).date()}


def test_stg_usage_events_keeps_the_first_delivery_of_each_event_in_its_day():
    raw = landed(
        "a.jsonl",
        "2026-10-02T00:00",
        # ids are trimmed (case kept), tenant and product trimmed and lower-cased
        delivered(" E1 ", " T1 ", "Fraud_Score", 5, "2026-10-01T23:59:59"),
        delivered("e2", "t1", "fraud_score", 1, "2026-10-01T00:00"),
        # the next UTC day: outside the partition, never read
        delivered("e3", "t1", "fraud_score", 1, "2026-10-02T00:00"),
        # e2 again, later in the same file: the earlier line wins
        delivered("e2", "t1", "fraud_score", 9, "2026-10-01T00:00"),
    ) + landed(
        # E1 re-delivered by a file ingested a day later: the first delivery wins
        "b.jsonl",
        "2026-10-03T00:00",
        delivered("E1", "t2", "kyc", 7, "2026-10-01T23:59:59"),
    )
    staged = run_intermediate(
        "fct_usage_daily", "stg_usage_events", {"raw_usage_events": raw}, OCTOBER_1, ("event_id",)
    )
    assert staged == [
        {
            "event_date": day("2026-10-01"),
            "event_id": "E1",
            "tenant_id": "t1",
            "product": "fraud_score",
            "quantity": 5,
            "occurred_at": ts("2026-10-01T23:59:59"),
            "source_file": "a.jsonl",
            "source_line": 1,
            "deliveries": 2,
        },
        {
            "event_date": day("2026-10-01"),
            "event_id": "e2",
            "tenant_id": "t1",
            "product": "fraud_score",
            "quantity": 1,
            "occurred_at": ts("2026-10-01T00:00"),
            "source_file": "a.jsonl",
            "source_line": 2,
            "deliveries": 2,
        },
    ]


def test_fct_usage_daily_sums_units_per_day_customer_tenant_and_product():
    raw = landed(
        "a.jsonl",
        "2026-10-04T00:00",
        delivered("e1", "t1", "fraud_score", 5, "2026-10-01T01:00"),
        delivered("e2", "T1", "fraud_score", 1, "2026-10-01T02:00"),
        delivered("e2", "t1", "fraud_score", 1, "2026-10-01T02:00"),  # re-delivered: once
        delivered("e3", "t1", "KYC", 2, "2026-10-01T03:00"),
        delivered("e4", "t9", "fraud_score", 4, "2026-10-01T04:00"),  # a tenant nobody claims
        delivered("e5", "t1", "fraud_score", 3, "2026-10-02T05:00"),
        delivered("e6", "t1", "fraud_score", 100, "2026-10-03T00:00"),  # after the window
    )
    tenants = [{"tenant_id": "t1", "billing_customer_id": "cus_1", "customer_key": "k1"}]
    rows = run_model(
        "fct_usage_daily",
        {"raw_usage_events": raw, "int_tenants_resolved": tenants},
        (day("2026-10-01"), day("2026-10-03")),
    )
    assert rows == [
        {
            "usage_date": day("2026-10-01"),
            "customer_key": "k1",
            "tenant_id": "t1",
            "product": "fraud_score",
            "events": 2,
            "units": 6,
        },
        {
            "usage_date": day("2026-10-01"),
            "customer_key": "k1",
            "tenant_id": "t1",
            "product": "kyc",
            "events": 1,
            "units": 2,
        },
        {
            "usage_date": day("2026-10-01"),
            "customer_key": "unknown",
            "tenant_id": "t9",
            "product": "fraud_score",
            "events": 1,
            "units": 4,
        },
        {
            "usage_date": day("2026-10-02"),
            "customer_key": "k1",
            "tenant_id": "t1",
            "product": "fraud_score",
            "events": 1,
            "units": 3,
        },
    ]
