"""Usage events from landing files to marts.fct_usage_daily, on a real embedded lakehouse."""


def event(event_id, tenant, occurred_at, quantity=1, product="fraud_score"):
    return {
        "event_id": event_id,
        "tenant_id": tenant,
        "product": product,
        "quantity": quantity,
        "occurred_at": occurred_at,
    }


def test_smoke_run(lake):
    lake.drop("usage_events", "a.jsonl", [event("e1", "t1", "2026-10-01T10:00:00Z", 2)])
    report = lake.run()
    assert report.rebuilt["daily"] == ["2026-10-01"]
    rows = lake.rows("marts.fct_usage_daily")
    assert [(r["tenant_id"], r["events"], r["units"]) for r in rows] == [("t1", 1, 2)]
