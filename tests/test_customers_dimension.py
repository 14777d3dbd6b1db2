"""Identity and the SCD2 customer dimension (marts.dim_customer), and its effective-dated use in
marts.fct_customer_month, on a real embedded lakehouse. Expected windows are worked out by hand
in the comments."""

import datetime as dt
import hashlib

import dagster as dg

from tests.records import billing_customer, crm_account, event

UTC = dt.UTC


def key(natural: str) -> str:
    """The durable customer_key: first 16 hex of md5('crm:<id>') or md5('billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


A, B, C = key("crm:acc_A"), key("crm:acc_B"), key("crm:acc_C")
NINE = key("billing:cus_9")


def by_version(rows: list[tuple]) -> list[tuple]:
    """Versions ordered by (customer_key, valid_from)."""
    return sorted(rows, key=lambda row: (row[0], row[6]))


def version(
    customer_key: str,
    crm_account_id: str | None,
    billing_customer_id: str | None,
    account_name: str | None,
    segment: str | None,
    owner_name: str | None,
    valid_from: str,
    valid_to: str | None = None,
    deleted: bool = False,
) -> tuple:
    """An expected dim_customer row, as `dimension` reads it; current when it has no end."""
    end = at(valid_to) if valid_to is not None else None
    return (
        customer_key,
        crm_account_id,
        billing_customer_id,
        account_name,
        segment,
        owner_name,
        at(valid_from),
        end,
        valid_to is None,
        deleted,
    )


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
            crm_account(
                crm_account_id="acc_A",
                account_name="Acme",
                owner_name="Ann",
                segment="SMB",
                region="NA",
                billing_customer_id=" CUS_1",
                updated_at="2026-01-01T00:00:00Z",
                snapshot_at="2026-01-06T00:00:00Z",
            ),
            # cus_404: no such billing customer, an orphan link
            crm_account(
                crm_account_id="acc_B",
                account_name="Beta",
                owner_name="Bob",
                segment="SMB",
                region="EMEA",
                billing_customer_id="cus_404",
                updated_at="2026-01-05T00:00:00Z",
                snapshot_at="2026-01-06T00:00:00Z",
            ),
            crm_account(
                crm_account_id="acc_C",
                account_name="Gamma",
                owner_name="Cid",
                segment="Enterprise",
                region="APAC",
                billing_customer_id=None,
                updated_at="2026-01-03T00:00:00Z",
                snapshot_at="2026-01-06T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "crm/accounts",
        "2026-03-02.jsonl",
        [
            # segment change (and a new name) on Mar 1: a new version from Mar 1
            crm_account(
                crm_account_id="acc_A",
                account_name="Acme Corp",
                owner_name="Ann",
                segment="Enterprise",
                region="NA",
                billing_customer_id=" CUS_1",
                updated_at="2026-03-01T00:00:00Z",
                snapshot_at="2026-03-02T00:00:00Z",
            ),
            # name-only change on Feb 20: the same version, now showing the new name
            crm_account(
                crm_account_id="acc_B",
                account_name="Beta GmbH",
                owner_name="Bob",
                segment="SMB",
                region="EMEA",
                billing_customer_id="cus_404",
                updated_at="2026-02-20T00:00:00Z",
                snapshot_at="2026-03-02T00:00:00Z",
            ),
            # deleted on Feb 15: its version ends there
            crm_account(
                crm_account_id="acc_C",
                account_name="Gamma",
                owner_name="Cid",
                segment="Enterprise",
                region="APAC",
                billing_customer_id=None,
                is_deleted=True,
                updated_at="2026-02-15T00:00:00Z",
                snapshot_at="2026-03-02T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            # billing says acc_B, the CRM says acc_A claims it: a conflict, CRM wins (reported)
            billing_customer(
                billing_customer_id=" CUS_1",
                tenant_id="T1",
                created_at="2025-12-01T00:00:00Z",
                crm_account_id="acc_B",
            ),
            # names a CRM account that does not exist: billing-only, an orphan link (reported)
            billing_customer(
                billing_customer_id="cus_9",
                tenant_id="t9",
                created_at="2026-01-20T00:00:00Z",
                crm_account_id="acc_Z",
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            # two runs of consecutive days: two daily runs
            event(event_id="e1", tenant_id="t1", occurred_at="2026-01-31T10:00:00Z", quantity=2),
            event(event_id="e4", tenant_id="t9", occurred_at="2026-02-01T10:00:00Z", quantity=1),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-02-02T10:00:00Z", quantity=3),
            # no billing customer names t404
            event(event_id="e5", tenant_id="t404", occurred_at="2026-02-28T10:00:00Z", quantity=5),
            event(event_id="e3", tenant_id=" T1", occurred_at="2026-03-01T10:00:00Z", quantity=4),
        ],
    )
    lake.run()

    # the versions the late snapshot below leaves as they are
    unchanged = [
        version(A, "acc_A", "cus_1", "Acme Corp", "Enterprise", "Ann", "2026-03-01"),
        version(B, "acc_B", None, "Beta GmbH", "SMB", "Bob", "2026-01-05"),
        version(NINE, None, "cus_9", None, None, None, "2026-01-20"),
        version("unknown", None, None, "Unknown customer", None, None, "1970-01-01"),
    ]
    assert dimension(lake) == by_version(
        [
            version(A, "acc_A", "cus_1", "Acme", "SMB", "Ann", "2026-01-01", "2026-03-01"),
            version(
                C,
                "acc_C",
                None,
                "Gamma",
                "Enterprise",
                "Cid",
                "2026-01-03",
                "2026-02-15",
                deleted=True,
            ),
            *unchanged,
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
            crm_account(
                crm_account_id="acc_A",
                account_name="Acme",
                owner_name="Ann",
                segment="Mid-Market",
                region="NA",
                billing_customer_id=" CUS_1",
                updated_at="2026-02-01T00:00:00Z",
                snapshot_at="2026-02-02T00:00:00Z",
            ),
            crm_account(
                crm_account_id="acc_C",
                account_name="Gamma",
                owner_name="Dee",
                segment="Enterprise",
                region="APAC",
                billing_customer_id=None,
                updated_at="2026-02-01T00:00:00Z",
                snapshot_at="2026-02-02T00:00:00Z",
            ),
        ],
    )
    report = lake.run()
    # the changed versions span January to March: those months are rebuilt
    assert report.rebuilt["monthly"] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert dimension(lake) == by_version(
        [
            version(A, "acc_A", "cus_1", "Acme", "SMB", "Ann", "2026-01-01", "2026-02-01"),
            version(A, "acc_A", "cus_1", "Acme", "Mid-Market", "Ann", "2026-02-01", "2026-03-01"),
            version(C, "acc_C", None, "Gamma", "Enterprise", "Cid", "2026-01-03", "2026-02-01"),
            version(
                C,
                "acc_C",
                None,
                "Gamma",
                "Enterprise",
                "Dee",
                "2026-02-01",
                "2026-02-15",
                deleted=True,
            ),
            *unchanged,
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
