"""Identity tie-breaks (docs/model.md, "Identity precedence") and "the latest export wins"
whatever the arrival order, on a real embedded lakehouse: ingestion and the refresh of the
unpartitioned models, as `c360 run` starts them.

- Several CRM accounts claim one billing customer: a live account before a deleted one, then the
  smallest crm_account_id; an account restored after its deletion is live again.
- The CRM and billing name different accounts: the CRM wins; billing names an account the CRM
  does not have: billing-only, an orphan link.
- Several billing customers name one tenant: the earliest created, then the smallest id.
Every pick among disagreeing sources is listed by a WARN check.
"""

import datetime as dt
import hashlib

from c360_assets.tools.runner import QUIET
from tests.records import billing_customer, crm_account, invoice


def key(natural: str) -> str:
    """The durable customer_key: first 16 hex of md5('crm:<id>') or md5('billing:<id>')."""
    return hashlib.md5(natural.encode()).hexdigest()[:16]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


SEVERAL = "several CRM accounts claim this billing customer (live, then smallest wins)"
CRM_WINS = "CRM and billing name different accounts (CRM wins)"
NO_SUCH_ACCOUNT = "billing names a CRM account that does not exist"
SHARED_TENANT = "several billing customers name this tenant"


def account(crm_account_id: str, billing_customer_id: str | None, updated_at: str, **fields):
    return crm_account(
        crm_account_id=crm_account_id,
        owner_name="Ann",
        billing_customer_id=billing_customer_id,
        updated_at=updated_at,
        **fields,
    )


def drop_identities(lake) -> None:
    lake.drop(
        "crm/accounts",
        "2026-09-01.jsonl",
        [
            account("acc_B", "cus_1", "2026-09-01T00:00:00Z"),  # acc_A and acc_B claim cus_1
            account("acc_A", "cus_1", "2026-09-01T00:00:00Z"),
            account("acc_Y", "cus_2", "2026-09-01T00:00:00Z"),  # acc_Y (deleted below), acc_Z
            account("acc_Z", "cus_2", "2026-09-01T00:00:00Z"),
            account("acc_C", "cus_3", "2026-09-01T00:00:00Z"),  # acc_C (deleted, back), acc_D
            account("acc_D", "cus_3", "2026-09-01T00:00:00Z"),
            account("acc_E", "cus_404", "2026-09-01T00:00:00Z"),  # no such billing customer
            account("acc_F", None, "2026-09-01T00:00:00Z"),
            account("acc_G", "cus_10", "2026-09-01T00:00:00Z"),
            account("acc_W", "cus_9", "2026-09-01T00:00:00Z"),  # cus_9's only claimant
        ],
    )
    lake.drop(
        "crm/accounts",
        "2026-09-10.jsonl",
        [
            account("acc_Y", "cus_2", "2026-09-10T00:00:00Z", is_deleted=True),
            account("acc_C", "cus_3", "2026-09-10T00:00:00Z", is_deleted=True),
            account("acc_W", "cus_9", "2026-09-10T00:00:00Z", is_deleted=True),
        ],
    )
    lake.drop(  # acc_C restored
        "crm/accounts", "2026-09-20.jsonl", [account("acc_C", "cus_3", "2026-09-20T00:00:00Z")]
    )

    def customer(billing_customer_id, tenant_id, crm_account_id=None, created="01-01", **more):
        return billing_customer(
            billing_customer_id=billing_customer_id,
            tenant_id=tenant_id,
            crm_account_id=crm_account_id,
            created_at=f"2026-{created}T00:00:00Z",
            **more,
        )

    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            customer("cus_1", "t1", "acc_B"),
            customer("cus_2", "t2"),
            customer("cus_3", "t3"),
            # t5: cus_5 was created first, though its id is the larger
            customer("cus_4", "t5", created="03-01"),
            customer("cus_5", "t5", created="02-01", updated_at="2026-06-01T00:00:00Z"),
            # t6: created together, the smaller id wins
            customer("cus_6", "t6", created="04-01"),
            customer("cus_7", "t6", created="04-01"),
            customer("cus_8", None, "acc_X"),  # acc_X does not exist
            customer("cus_9", None),
            customer("cus_10", None, "acc_F"),  # the CRM says acc_G
            # two billing customers of acc_F name t7: cus_12 was created first
            customer("cus_11", "t7", "acc_F", created="06-01"),
            customer("cus_12", "t7", "acc_F", created="05-01"),
        ],
    )
    lake.drop(
        "billing/invoices",
        "2026-10-10.jsonl",
        [invoice(status="paid", updated_at="2026-10-10T00:00:00Z")],
    )


def refresh(lake) -> None:
    """Ingest the landing zone and refresh the unpartitioned models (identity, dimension)."""
    defs = lake.definitions()
    for job in ("ingest_job", "refresh_job"):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=lake.instance, run_config=QUIET
        )
        assert result.success, job


def resolved(lake) -> dict[str, tuple]:
    return {
        r["billing_customer_id"]: (
            r["crm_account_id"],
            r["resolved_by"],
            r["conflict"],
            r["orphan_link"],
            r["customer_key"],
        )
        for r in lake.rows("core.int_billing_customers_resolved")
    }


def tenants(lake) -> dict[str, tuple]:
    return {
        r["tenant_id"]: (r["billing_customer_id"], r["customer_key"], r["conflict"])
        for r in lake.rows("core.int_tenants_resolved")
    }


CLAIMED, NAMED, ALONE = "crm_claims_billing_customer", "billing_names_crm_account", "billing_only"


def test_identity_tie_breaks_and_the_latest_export_wins_whatever_arrives_last(module_lake):
    lake = module_lake
    drop_identities(lake)
    refresh(lake)

    assert resolved(lake) == {
        # acc_A and acc_B both live: the smaller id; billing's own link (acc_B) loses too
        "cus_1": ("acc_A", CLAIMED, SEVERAL, None, key("crm:acc_A")),
        # acc_Y's latest record deleted it: the live acc_Z wins, though its id is the larger
        "cus_2": ("acc_Z", CLAIMED, SEVERAL, None, key("crm:acc_Z")),
        # acc_C deleted on 09-10, restored on 09-20: live again, and the smaller id
        "cus_3": ("acc_C", CLAIMED, SEVERAL, None, key("crm:acc_C")),
        "cus_4": (None, ALONE, None, None, key("billing:cus_4")),
        "cus_5": (None, ALONE, None, None, key("billing:cus_5")),
        "cus_6": (None, ALONE, None, None, key("billing:cus_6")),
        "cus_7": (None, ALONE, None, None, key("billing:cus_7")),
        "cus_8": (None, ALONE, None, NO_SUCH_ACCOUNT, key("billing:cus_8")),
        # its only claimant was deleted: still its customer (history does not move)
        "cus_9": ("acc_W", CLAIMED, None, None, key("crm:acc_W")),
        "cus_10": ("acc_G", CLAIMED, CRM_WINS, None, key("crm:acc_G")),
        "cus_11": ("acc_F", NAMED, None, None, key("crm:acc_F")),
        "cus_12": ("acc_F", NAMED, None, None, key("crm:acc_F")),
    }
    assert tenants(lake) == {
        "t1": ("cus_1", key("crm:acc_A"), None),
        "t2": ("cus_2", key("crm:acc_Z"), None),
        "t3": ("cus_3", key("crm:acc_C"), None),
        "t5": ("cus_5", key("billing:cus_5"), SHARED_TENANT),  # created first
        "t6": ("cus_6", key("billing:cus_6"), SHARED_TENANT),  # created together: smaller id
        # one customer (acc_F) either way, but two billing customers disagree: listed
        "t7": ("cus_12", key("crm:acc_F"), SHARED_TENANT),
    }
    # the WARN checks list every pick: cus_1, cus_2, cus_3, cus_10; cus_8's link and acc_E's
    # link to nothing; t5, t6, t7
    identity = "int_billing_customers_resolved"
    assert lake.check_violations(identity, "no_identity_conflicts") == (False, 4)
    assert lake.check_violations(identity, "no_identity_orphans") == (False, 2)
    assert lake.check_violations("int_tenants_resolved", "no_tenant_conflicts") == (False, 3)
    # the restored account: a deleted version, a gap, a current one (the dimension's checks pass)
    versions = {
        (r["valid_from"], r["valid_to"], r["is_deleted"], r["billing_customer_id"])
        for r in lake.rows("marts.dim_customer")
        if r["crm_account_id"] == "acc_C"
    }
    assert versions == {
        (at("2026-09-01T00:00:00"), at("2026-09-10T00:00:00"), True, "cus_3"),
        (at("2026-09-20T00:00:00"), None, False, "cus_3"),
    }
    before = (resolved(lake), tenants(lake))

    # Older exports ingested last: cus_5 as exported on 02-01 (naming another tenant), inv_1
    # as exported on 10-05 (open), acc_A's record of 08-15 (naming no billing customer). The
    # latest updated_at wins whatever arrives last: nothing the models say changes.
    lake.drop(
        "billing/customers",
        "customers-older.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_5",
                tenant_id="t_old",
                created_at="2026-02-01T00:00:00Z",
                updated_at="2026-02-01T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/invoices",
        "2026-10-05.jsonl",
        [invoice(status="open", updated_at="2026-10-05T00:00:00Z")],
    )
    lake.drop(
        "crm/accounts",
        "2026-08-15.jsonl",
        [account("acc_A", None, "2026-08-15T00:00:00Z")],
    )
    refresh(lake)
    assert len(lake.rows("raw.billing_customers")) == 13  # the older export did land
    staged = {r["billing_customer_id"]: r for r in lake.rows("staging.stg_billing_customers")}
    assert (staged["cus_5"]["tenant_id"], staged["cus_5"]["updated_at"]) == ("t5", at("2026-06-01"))
    (inv_1,) = lake.rows("staging.stg_billing_invoices")
    assert (inv_1["status"], inv_1["updated_at"], inv_1["exports"]) == ("paid", at("2026-10-10"), 2)
    assert (resolved(lake), tenants(lake)) == before
