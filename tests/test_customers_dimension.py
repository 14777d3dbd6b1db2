"""Identity and the SCD2 customer dimension (marts.dim_customer), and its effective-dated use in
marts.fct_customer_month, on a real embedded lakehouse. Expected windows are worked out by hand
in the comments."""

import datetime as dt
import hashlib

import dagster as dg

UTC = dt.UTC


def key(natural: str) -> str:
    """The durable customer_key: first 16 hex of md5('crm:<id>') or md5('billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


A, B, C = key("crm:acc_A"), key("crm:acc_B"), key("crm:acc_C")
NINE = key("billing:cus_9")


def account(acc, updated_at, snapshot_at, name, segment, region, owner, bid=None, deleted=False):
    return {
        "crm_account_id": acc,
        "account_name": name,
        "owner_name": owner,
        "owner_email": f"{owner.lower()}@example.com",
        "segment": segment,
        "region": region,
        "billing_customer_id": bid,
        "is_deleted": deleted,
        "updated_at": updated_at,
        "snapshot_at": snapshot_at,
    }


def billing_customer(bid, tenant, created_at, crm=None):
    return {
        "billing_customer_id": bid,
        "tenant_id": tenant,
        "crm_account_id": crm,
        "currency": "USD",
        "created_at": created_at,
        "updated_at": created_at,
    }


def event(event_id, tenant, occurred_at, quantity):
    return {
        "event_id": event_id,
        "tenant_id": tenant,
        "product": "fraud_score",
        "quantity": quantity,
        "occurred_at": occurred_at,
    }


def by_version(rows: list[tuple]) -> list[tuple]:
    """Versions ordered by (customer_key, valid_from)."""
    return sorted(rows, key=lambda row: (row[0], row[6]))


def dimension(lake) -> list[tuple]:
    return by_version(
        [
            (
                r["customer_key"],
                r["crm_account_id"],
                r["billing_customer_id"],
                r["account_name"],
                r["segment"],
                r["owner_name"],
                r["valid_from"],
                r["valid_to"],
                r["is_current"],
                r["is_deleted"],
            )
            for r in lake.rows("marts.dim_customer")
        ]
    )


def warnings(lake, asset: str, check: str) -> int:
    record = lake.instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(asset), check)
    )
    evaluation = record.event.dagster_event.event_specific_data
    return evaluation.metadata["violations"].value


def test_scd2_history_late_snapshot_name_only_change_deletion_and_noisy_ids(lake):
    lake.drop(
        "crm/accounts",
        "2026-01-06.jsonl",
        [
            # acc_A names its billing customer with noise: " CUS_1" is cus_1
            account(
                "acc_A",
                "2026-01-01T00:00:00Z",
                "2026-01-06T00:00:00Z",
                "Acme",
                "SMB",
                "NA",
                "Ann",
                bid=" CUS_1",
            ),
            account(
                "acc_B",
                "2026-01-05T00:00:00Z",
                "2026-01-06T00:00:00Z",
                "Beta",
                "SMB",
                "EMEA",
                "Bob",
                bid="cus_404",
            ),  # no such billing customer: an orphan link
            account(
                "acc_C",
                "2026-01-03T00:00:00Z",
                "2026-01-06T00:00:00Z",
                "Gamma",
                "Enterprise",
                "APAC",
                "Cid",
            ),
        ],
    )
    lake.drop(
        "crm/accounts",
        "2026-03-02.jsonl",
        [
            # segment change (and a new name) on Mar 1: a new version from Mar 1
            account(
                "acc_A",
                "2026-03-01T00:00:00Z",
                "2026-03-02T00:00:00Z",
                "Acme Corp",
                "Enterprise",
                "NA",
                "Ann",
                bid=" CUS_1",
            ),
            # name-only change on Feb 20: the same version, now showing the new name
            account(
                "acc_B",
                "2026-02-20T00:00:00Z",
                "2026-03-02T00:00:00Z",
                "Beta GmbH",
                "SMB",
                "EMEA",
                "Bob",
                bid="cus_404",
            ),
            # deleted on Feb 15: its version ends there
            account(
                "acc_C",
                "2026-02-15T00:00:00Z",
                "2026-03-02T00:00:00Z",
                "Gamma",
                "Enterprise",
                "APAC",
                "Cid",
                deleted=True,
            ),
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            # billing says acc_B, the CRM says acc_A claims it: a conflict, CRM wins (reported)
            billing_customer(" CUS_1", "T1", "2025-12-01T00:00:00Z", crm="acc_B"),
            # names a CRM account that does not exist: billing-only, an orphan link (reported)
            billing_customer("cus_9", "t9", "2026-01-20T00:00:00Z", crm="acc_Z"),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            # two runs of consecutive days: two daily runs
            event("e1", "t1", "2026-01-31T10:00:00Z", 2),
            event("e4", "t9", "2026-02-01T10:00:00Z", 1),
            event("e2", "t1", "2026-02-02T10:00:00Z", 3),
            event("e5", "t404", "2026-02-28T10:00:00Z", 5),  # no billing customer names t404
            event("e3", " T1", "2026-03-01T10:00:00Z", 4),
        ],
    )
    lake.run()

    never = None
    assert dimension(lake) == by_version(
        [
            (
                A,
                "acc_A",
                "cus_1",
                "Acme",
                "SMB",
                "Ann",
                at("2026-01-01"),
                at("2026-03-01"),
                False,
                False,
            ),
            (
                A,
                "acc_A",
                "cus_1",
                "Acme Corp",
                "Enterprise",
                "Ann",
                at("2026-03-01"),
                never,
                True,
                False,
            ),
            (B, "acc_B", None, "Beta GmbH", "SMB", "Bob", at("2026-01-05"), never, True, False),
            (
                C,
                "acc_C",
                None,
                "Gamma",
                "Enterprise",
                "Cid",
                at("2026-01-03"),
                at("2026-02-15"),
                False,
                True,
            ),
            (NINE, None, "cus_9", None, None, None, at("2026-01-20"), never, True, False),
            (
                "unknown",
                None,
                None,
                "Unknown customer",
                None,
                None,
                at("1970-01-01"),
                never,
                True,
                False,
            ),
        ]
    )
    identity = {
        r["billing_customer_id"]: r for r in lake.rows("core.int_billing_customers_resolved")
    }
    assert {b: (r["crm_account_id"], r["customer_key"]) for b, r in identity.items()} == {
        "cus_1": ("acc_A", A),
        "cus_9": (None, NINE),
    }
    assert warnings(lake, "int_billing_customers_resolved", "no_identity_conflicts") == 1  # cus_1
    # cus_9 -> acc_Z, and acc_B -> cus_404
    assert warnings(lake, "int_billing_customers_resolved", "no_identity_orphans") == 2
    assert {r["tenant_id"]: r["customer_key"] for r in lake.rows("marts.fct_usage_daily")} == {
        "t1": A,
        "t9": NINE,
        "t404": "unknown",
    }
    segments = {
        (r["month"].isoformat(), r["customer_key"]): (r["segment"], r["usage_units"])
        for r in lake.rows("marts.fct_customer_month")
    }
    assert segments == {
        ("2026-01-01", A): ("SMB", 2),
        ("2026-02-01", A): ("SMB", 3),  # as known before the late snapshot
        ("2026-03-01", A): ("Enterprise", 4),
        ("2026-02-01", NINE): (None, 1),
        ("2026-03-01", NINE): (None, 0),
        ("2026-02-01", "unknown"): (None, 5),  # t404: counted, under the unknown member
        ("2026-03-01", "unknown"): (None, 0),
    }

    # the Feb 2 snapshot arrives last: acc_A was Mid-Market from Feb 1 (splitting its first
    # version in two), acc_C changed owner on Feb 1; acc_B is absent from it (unchanged)
    lake.drop(
        "crm/accounts",
        "2026-02-02.jsonl",
        [
            account(
                "acc_A",
                "2026-02-01T00:00:00Z",
                "2026-02-02T00:00:00Z",
                "Acme",
                "Mid-Market",
                "NA",
                "Ann",
                bid=" CUS_1",
            ),
            account(
                "acc_C",
                "2026-02-01T00:00:00Z",
                "2026-02-02T00:00:00Z",
                "Gamma",
                "Enterprise",
                "APAC",
                "Dee",
            ),
        ],
    )
    report = lake.run()
    # the changed versions span January to March: those months are rebuilt
    assert report.rebuilt["monthly"] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert dimension(lake) == by_version(
        [
            (
                A,
                "acc_A",
                "cus_1",
                "Acme",
                "SMB",
                "Ann",
                at("2026-01-01"),
                at("2026-02-01"),
                False,
                False,
            ),
            (
                A,
                "acc_A",
                "cus_1",
                "Acme",
                "Mid-Market",
                "Ann",
                at("2026-02-01"),
                at("2026-03-01"),
                False,
                False,
            ),
            (
                A,
                "acc_A",
                "cus_1",
                "Acme Corp",
                "Enterprise",
                "Ann",
                at("2026-03-01"),
                never,
                True,
                False,
            ),
            (B, "acc_B", None, "Beta GmbH", "SMB", "Bob", at("2026-01-05"), never, True, False),
            (
                C,
                "acc_C",
                None,
                "Gamma",
                "Enterprise",
                "Cid",
                at("2026-01-03"),
                at("2026-02-01"),
                False,
                False,
            ),
            (
                C,
                "acc_C",
                None,
                "Gamma",
                "Enterprise",
                "Dee",
                at("2026-02-01"),
                at("2026-02-15"),
                False,
                True,
            ),
            (NINE, None, "cus_9", None, None, None, at("2026-01-20"), never, True, False),
            (
                "unknown",
                None,
                None,
                "Unknown customer",
                None,
                None,
                at("1970-01-01"),
                never,
                True,
                False,
            ),
        ]
    )
    segments = {
        (r["month"].isoformat(), r["customer_key"]): r["segment"]
        for r in lake.rows("marts.fct_customer_month")
        if r["customer_key"] == A
    }
    assert segments == {
        ("2026-01-01", A): "SMB",
        ("2026-02-01", A): "Mid-Market",  # history corrected
        ("2026-03-01", A): "Enterprise",
    }
