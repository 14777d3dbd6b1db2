"""The customers domain's SQL models on hand-built rows (sql/customers/): identity, the SCD2
dimension and the customer-month fact."""

import hashlib
from decimal import Decimal

from tests.models.given import day, in_grain_order, key, landed, run_model, ts


def test_stg_billing_customers_keeps_the_latest_update_then_the_latest_ingestion():
    raw = landed(
        "a.csv",
        "2026-10-01T00:00",
        {
            "billing_customer_id": " CUS_1 ",
            "tenant_id": " T1 ",
            "crm_account_id": " acc_1 ",
            "currency": "usd",
            "created_at": ts("2026-09-01T00:00"),
            "updated_at": ts("2026-09-01T00:00"),
        },
        {
            "billing_customer_id": "cus_2",
            "tenant_id": "",
            "crm_account_id": "",
            "currency": "eur",
            "created_at": ts("2026-09-05T00:00"),
            "updated_at": ts("2026-09-10T00:00"),
        },
    ) + landed(
        "b.csv",
        "2026-10-02T00:00",
        # ingested later but an older update: loses
        {
            "billing_customer_id": "cus_1",
            "tenant_id": "t1b",
            "crm_account_id": "acc_1",
            "currency": "USD",
            "created_at": ts("2026-09-01T00:00"),
            "updated_at": ts("2026-08-31T00:00"),
        },
        # the same update ingested later: wins
        {
            "billing_customer_id": "cus_2",
            "tenant_id": "t2",
            "crm_account_id": None,
            "currency": "EUR",
            "created_at": ts("2026-09-05T00:00"),
            "updated_at": ts("2026-09-10T00:00"),
        },
    )
    assert run_model("stg_billing_customers", {"raw_billing_customers": raw}) == [
        {
            "billing_customer_id": "cus_1",
            "tenant_id": "t1",
            "crm_account_id": "acc_1",
            "currency": "USD",
            "created_at": ts("2026-09-01T00:00"),
            "updated_at": ts("2026-09-01T00:00"),
        },
        {
            "billing_customer_id": "cus_2",
            "tenant_id": "t2",
            "crm_account_id": None,
            "currency": "EUR",
            "created_at": ts("2026-09-05T00:00"),
            "updated_at": ts("2026-09-10T00:00"),
        },
    ]


def crm_record(crm_account_id: str, updated_at: str, snapshot_at: str, **fields) -> dict:
    return {
        "crm_account_id": crm_account_id,
        "updated_at": ts(updated_at),
        "snapshot_at": ts(snapshot_at),
        **fields,
    }


def test_stg_crm_accounts_keeps_each_version_from_the_earliest_snapshot_carrying_it():
    # the 10-02 snapshot lands first, the 10-01 snapshot a day later (out of order)
    raw = landed(
        "snapshot-10-02.csv",
        "2026-10-02T00:00",
        crm_record(
            " acc_1 ",
            "2026-09-01T00:00",
            "2026-10-02T00:00",
            account_name="Acme Inc",
            billing_customer_id="CUS_1",
        ),
        crm_record(
            "acc_1",
            "2026-09-20T00:00",
            "2026-10-02T00:00",
            account_name="Acme",
            segment="Mid-Market",
            billing_customer_id="cus_1",
        ),
    ) + landed(
        "snapshot-10-01.csv",
        "2026-10-03T00:00",
        crm_record(
            "acc_1",
            "2026-09-01T00:00",
            "2026-10-01T00:00",
            account_name="Acme",
            segment="SMB",
            billing_customer_id=" Cus_1 ",
        ),
    )
    rows = run_model(
        "stg_crm_accounts",
        {"raw_crm_accounts": raw},
        columns=(
            "crm_account_id",
            "updated_at",
            "account_name",
            "segment",
            "billing_customer_id",
            "first_snapshot_at",
            "snapshots_seen",
        ),
    )
    assert rows == [
        {
            "crm_account_id": "acc_1",
            "updated_at": ts("2026-09-01T00:00"),
            "account_name": "Acme",
            "segment": "SMB",
            "billing_customer_id": "cus_1",
            "first_snapshot_at": ts("2026-10-01T00:00"),
            "snapshots_seen": 2,
        },
        {
            "crm_account_id": "acc_1",
            "updated_at": ts("2026-09-20T00:00"),
            "account_name": "Acme",
            "segment": "Mid-Market",
            "billing_customer_id": "cus_1",
            "first_snapshot_at": ts("2026-10-02T00:00"),
            "snapshots_seen": 1,
        },
    ]


def test_int_billing_customers_resolved_applies_the_written_precedence():
    def billing(billing_customer_id: str, crm_account_id: str | None) -> dict:
        return {"billing_customer_id": billing_customer_id, "crm_account_id": crm_account_id}

    def crm(crm_account_id: str, updated_at: str, names: str | None, deleted=False) -> dict:
        return {
            "crm_account_id": crm_account_id,
            "updated_at": ts(updated_at),
            "billing_customer_id": names,
            "is_deleted": deleted,
        }

    rows = run_model(
        "int_billing_customers_resolved",
        {
            "stg_billing_customers": [
                billing("cus_1", "acc_9"),  # billing names acc_9, the CRM's acc_1 claims cus_1
                billing("cus_2", "acc_2"),  # billing names an existing account nobody claims
                billing("cus_3", "acc_x"),  # billing names an account that does not exist
                billing("cus_4", None),  # claimed by two accounts
                billing("cus_5", None),  # billing only
            ],
            "stg_crm_accounts": [
                crm("acc_1", "2026-09-01T00:00", "cus_9"),
                crm("acc_1", "2026-09-15T00:00", "cus_1"),  # its latest version counts
                crm("acc_2", "2026-09-01T00:00", None),
                crm("acc_9", "2026-09-01T00:00", None),
                crm("acc_4a", "2026-09-01T00:00", "cus_4", deleted=True),
                crm("acc_4b", "2026-09-01T00:00", "cus_4"),  # live beats the smaller id
            ],
        },
        columns=(
            "billing_customer_id",
            "crm_account_id",
            "resolved_by",
            "conflict",
            "orphan_link",
            "customer_key",
        ),
    )
    several = "several CRM accounts claim this billing customer (live, then smallest wins)"
    assert rows == [
        {
            "billing_customer_id": "cus_1",
            "crm_account_id": "acc_1",
            "resolved_by": "crm_claims_billing_customer",
            "conflict": "CRM and billing name different accounts (CRM wins)",
            "orphan_link": None,
            "customer_key": key("crm:acc_1"),
        },
        {
            "billing_customer_id": "cus_2",
            "crm_account_id": "acc_2",
            "resolved_by": "billing_names_crm_account",
            "conflict": None,
            "orphan_link": None,
            "customer_key": key("crm:acc_2"),
        },
        {
            "billing_customer_id": "cus_3",
            "crm_account_id": None,
            "resolved_by": "billing_only",
            "conflict": None,
            "orphan_link": "billing names a CRM account that does not exist",
            "customer_key": key("billing:cus_3"),
        },
        {
            "billing_customer_id": "cus_4",
            "crm_account_id": "acc_4b",
            "resolved_by": "crm_claims_billing_customer",
            "conflict": several,
            "orphan_link": None,
            "customer_key": key("crm:acc_4b"),
        },
        {
            "billing_customer_id": "cus_5",
            "crm_account_id": None,
            "resolved_by": "billing_only",
            "conflict": None,
            "orphan_link": None,
            "customer_key": key("billing:cus_5"),
        },
    ]


def test_int_tenants_resolved_gives_a_shared_tenant_to_the_earliest_created_customer():
    claims = [  # (billing customer, tenant, customer_key, created)
        ("cus_1", "t1", "k1", "2026-09-05T00:00"),
        ("cus_2", "t1", "k2", "2026-09-01T00:00"),  # created first: owns t1
        ("cus_3", "t3", "k3", "2026-09-01T00:00"),
        ("cus_4", None, "k4", "2026-09-01T00:00"),  # names no tenant
        ("cus_6", "t6", "k6", "2026-09-01T00:00"),
        ("cus_5", "t6", "k5", "2026-09-01T00:00"),  # same time: the smaller id owns t6
        ("cus_8", "t7", "k7", "2026-09-02T00:00"),
        # two billing customers of one customer (k7): still a pick (it decides which
        # subscriptions cover the tenant's usage), so a conflict (DECISIONLOG §10)
        ("cus_7", "t7", "k7", "2026-09-01T00:00"),
    ]
    rows = run_model(
        "int_tenants_resolved",
        {
            "int_billing_customers_resolved": [
                {"billing_customer_id": b, "tenant_id": t, "customer_key": k}
                for b, t, k, _ in claims
            ],
            "stg_billing_customers": [
                {"billing_customer_id": b, "tenant_id": t, "created_at": ts(c)}
                for b, t, _, c in claims
            ],
        },
    )
    several = "several billing customers name this tenant"
    assert rows == [
        {
            "tenant_id": "t1",
            "billing_customer_id": "cus_2",
            "customer_key": "k2",
            "conflict": several,
        },
        {"tenant_id": "t3", "billing_customer_id": "cus_3", "customer_key": "k3", "conflict": None},
        {
            "tenant_id": "t6",
            "billing_customer_id": "cus_5",
            "customer_key": "k5",
            "conflict": several,
        },
        {
            "tenant_id": "t7",
            "billing_customer_id": "cus_7",
            "customer_key": "k7",
            "conflict": several,
        },
    ]


def test_dim_customer_versions_tracked_changes_deletions_and_returns():
    def record(updated_at: str, segment: str, name: str = "Acme", deleted: bool = False) -> dict:
        return {
            "crm_account_id": "acc_1",
            "updated_at": ts(updated_at),
            "account_name": name,
            "owner_name": "Ann",
            "owner_email": "ann@example.com",
            "segment": segment,
            "region": "NA",
            "is_deleted": deleted,
        }

    crm = [
        record("2026-09-01T00:00", "SMB"),
        record("2026-09-10T00:00", "SMB", name="Acme Corp"),  # a new name: same version
        record("2026-09-20T00:00", "Mid-Market", name="Acme Corp"),  # a new segment: new version
        record("2026-10-05T00:00", "Mid-Market", name="gone", deleted=True),  # ends it
        record("2026-10-20T00:00", "Mid-Market", name="Acme Corp"),  # back: a new version
        {
            "crm_account_id": "acc_2",
            "updated_at": ts("2026-09-03T00:00"),
            "account_name": "Beta",
            "segment": "SMB",
            "region": "EU",
        },
    ]
    identity = [
        # acc_1's primary billing customer is the one its CRM record claims
        {
            "billing_customer_id": "cus_1b",
            "crm_account_id": "acc_1",
            "resolved_by": "billing_names_crm_account",
        },
        {
            "billing_customer_id": "cus_1",
            "crm_account_id": "acc_1",
            "resolved_by": "crm_claims_billing_customer",
        },
        {
            "billing_customer_id": "cus_5",
            "crm_account_id": None,
            "resolved_by": "billing_only",
            "created_at": ts("2026-09-07T12:00"),
            "customer_key": key("billing:cus_5"),
        },
    ]
    rows = run_model(
        "dim_customer",
        {"stg_crm_accounts": crm, "int_billing_customers_resolved": identity},
        columns=(
            "customer_key",
            "valid_from",
            "valid_to",
            "billing_customer_id",
            "account_name",
            "segment",
            "is_current",
            "is_deleted",
            "source_system",
        ),
    )

    def version(customer_key, valid_from, valid_to, billing_customer_id, **attributes) -> dict:
        return {
            "customer_key": customer_key,
            "valid_from": ts(valid_from),
            "valid_to": ts(valid_to) if valid_to else None,
            "billing_customer_id": billing_customer_id,
            "account_name": None,
            "segment": None,
            "is_current": valid_to is None,
            "is_deleted": False,
            "source_system": "crm",
            **attributes,
        }

    acme, beta, cus_5 = key("crm:acc_1"), key("crm:acc_2"), key("billing:cus_5")
    assert rows == in_grain_order(
        "dim_customer",
        [
            # the latest name of the version; SMB until the segment changed on 09-20
            version(
                acme,
                "2026-09-01T00:00",
                "2026-09-20T00:00",
                "cus_1",
                account_name="Acme Corp",
                segment="SMB",
            ),
            # ended by the deletion on 10-05 (the deleting record's name is not kept)
            version(
                acme,
                "2026-09-20T00:00",
                "2026-10-05T00:00",
                "cus_1",
                account_name="Acme Corp",
                segment="Mid-Market",
                is_deleted=True,
            ),
            version(
                acme,
                "2026-10-20T00:00",
                None,
                "cus_1",
                account_name="Acme Corp",
                segment="Mid-Market",
            ),
            version(beta, "2026-09-03T00:00", None, None, account_name="Beta", segment="SMB"),
            version(cus_5, "2026-09-07T12:00", None, "cus_5", source_system="billing"),
            version(
                "unknown",
                "1970-01-01T00:00",
                None,
                None,
                account_name="Unknown customer",
                source_system="unknown",
            ),
        ],
    )
    versions = run_model(
        "dim_customer", {"stg_crm_accounts": crm, "int_billing_customers_resolved": identity}
    )
    # the version key: md5 of the customer key and valid_from (microseconds, UTC)
    first = next(r for r in versions if r["valid_from"] == ts("2026-09-01T00:00"))
    digest = hashlib.md5(f"{acme}|2026-09-01T00:00:00.000000".encode()).hexdigest()[:16]
    assert first["customer_version_key"] == digest


def test_fct_customer_month_spans_first_activity_to_the_end_month_with_month_end_attributes():
    def usage(on: str, customer_key: str, product: str, events: int, units: int) -> dict:
        return {
            "usage_date": day(on),
            "customer_key": customer_key,
            "product": product,
            "events": events,
            "units": units,
        }

    def document(kind: str, document_id: str, customer_key: str, month: str, **values) -> dict:
        return {
            "document_type": kind,
            "document_id": document_id,
            "customer_key": customer_key,
            "report_month": day(month),
            **values,
        }

    def subscription(valid_from: str, valid_to: str | None, plan_code: str, fee: int) -> dict:
        return {
            "subscription_id": "sub_a",
            "customer_key": "ka",
            "plan_code": plan_code,
            "status": "active",
            "monthly_fee_minor": fee,
            "started_at": ts("2026-08-01T00:00"),
            "valid_from": ts(valid_from),
            "valid_to": ts(valid_to) if valid_to else None,
        }

    daily = [
        usage("2026-08-15", "ka", "fraud_score", 1, 1),  # before the window: not read
        usage("2026-09-30", "ka", "fraud_score", 2, 10),
        usage("2026-10-01", "ka", "fraud_score", 1, 5),
        usage("2026-10-01", "ka", "kyc", 1, 1),
        usage("2026-10-31", "kb", "fraud_score", 3, 30),
    ]
    documents = [
        document("invoice", "inv_1", "ka", "2026-09-01", amount_usd=Decimal("100.00")),
        document("usage_line", "li_1", "ka", "2026-09-01", units=40),
        document("credit_note", "cn_1", "ka", "2026-10-01", amount_usd=Decimal("20.00")),
        document("refund", "rf_1", "ka", "2026-10-01", amount_usd=Decimal("5.50")),
        # no FX rate: kb's October money is unknown (null), never 0
        document("invoice", "inv_2", "kb", "2026-10-01", amount_usd=None),
    ]
    # three months: November is after the end month (the last month with activity)
    window = (day("2026-09-01"), day("2026-12-01"))
    # the customers with usage in each month, every month built (the spine reads them all)
    usage_months = run_model(
        "int_customer_usage_months", {"fct_usage_daily": daily}, (day("2026-08-01"), window[1])
    )
    # (month, customer, events, units, active days, products)
    assert [tuple(r.values()) for r in usage_months] == [
        (day("2026-08-01"), "ka", 1, 1, 1, 1),
        (day("2026-09-01"), "ka", 2, 10, 1, 1),
        (day("2026-10-01"), "ka", 2, 6, 1, 2),  # two products on one day: one active day
        (day("2026-10-01"), "kb", 3, 30, 1, 1),
    ]
    spine = run_model(
        "int_customer_months",
        {
            "int_customer_usage_months": [
                {k: r[k] for k in ("month", "customer_key")} for r in usage_months
            ],
            "int_billing_documents_resolved": documents,
            "int_subscription_versions": [
                subscription("2026-08-01T00:00", "2026-10-15T00:00", "starter", 1000),
                subscription("2026-10-15T00:00", None, "growth", 5000),
            ],
        },
        window,
    )
    # ka from its first usage (August, before the window) on, kb from October; the plan in force
    # at each month's last instant: starter at 10-01 00:00, growth (from 10-15) at 11-01 00:00
    assert [(r["month"], r["customer_key"], r["plan_code"]) for r in spine] == [
        (day("2026-09-01"), "ka", "starter"),
        (day("2026-10-01"), "ka", "growth"),
        (day("2026-10-01"), "kb", None),
    ]
    rows = run_model(
        "fct_customer_month",
        {
            "int_customer_usage_months": usage_months,
            "int_billing_documents_resolved": documents,
            "int_customer_months": spine,
            "dim_customer": [
                {
                    "customer_key": "ka",
                    "crm_account_id": "acc_1",
                    "segment": "SMB",
                    "region": "NA",
                    "owner_name": "Ann",
                    "valid_from": ts("2026-01-01T00:00"),
                    "valid_to": ts("2026-09-20T00:00"),
                },
                {
                    "customer_key": "ka",
                    "crm_account_id": "acc_1",
                    "segment": "Mid-Market",
                    "region": "NA",
                    "owner_name": "Bob",
                    "valid_from": ts("2026-09-20T00:00"),
                    "valid_to": None,
                },
                {"customer_key": "kb", "valid_from": ts("2026-10-01T00:00")},
            ],
        },
        window,
    )

    def month(on: str, customer_key: str, **measures) -> dict:
        zero = Decimal("0.00")
        return {
            "month": day(on),
            "customer_key": customer_key,
            "crm_account_id": None,
            "segment": None,
            "region": None,
            "owner_name": None,
            "plan_code": None,
            "usage_events": 0,
            "usage_units": 0,
            "billed_usage_units": 0,
            "invoiced_usd": zero,
            "credits_usd": zero,
            "refunds_usd": zero,
            "net_revenue_usd": zero,
            "active_days": 0,
            "products_used": 0,
            **measures,
        }

    ka = {"crm_account_id": "acc_1", "segment": "Mid-Market", "region": "NA", "owner_name": "Bob"}
    assert rows == [
        # September ends 10-01 00:00: the Mid-Market version (from 09-20), the starter plan;
        # billed usage by the line's service month
        month(
            "2026-09-01",
            "ka",
            **ka,
            plan_code="starter",
            usage_events=2,
            usage_units=10,
            billed_usage_units=40,
            invoiced_usd=Decimal("100.00"),
            net_revenue_usd=Decimal("100.00"),
            active_days=1,
            products_used=1,
        ),
        # October ends 11-01 00:00: the growth plan (from 10-15); net = 0 - 20.00 - 5.50
        month(
            "2026-10-01",
            "ka",
            **ka,
            plan_code="growth",
            usage_events=2,
            usage_units=6,
            credits_usd=Decimal("20.00"),
            refunds_usd=Decimal("5.50"),
            net_revenue_usd=Decimal("-25.50"),
            active_days=1,
            products_used=2,
        ),
        # kb's first activity is October; its invoice has no FX rate: money unknown, not 0
        month(
            "2026-10-01",
            "kb",
            usage_events=3,
            usage_units=30,
            invoiced_usd=None,
            credits_usd=None,
            refunds_usd=None,
            net_revenue_usd=None,
            active_days=1,
            products_used=1,
        ),
    ]


def test_active_days_count_each_day_with_usage_once_from_the_first_to_the_last_of_the_month():
    """active_days is counted from the days' bits (day n: bit n - 1): the 1st and the 31st count,
    a day with two products or two tenants counts once, February ends on the 28th, and usage on no
    customer key keeps its own row."""

    def usage(on: str, customer_key: str | None, product: str) -> dict:
        return {
            "usage_date": day(on),
            "customer_key": customer_key,
            "product": product,
            "events": 1,
            "units": 2,
        }

    daily = [
        usage("2026-01-01", "ka", "fraud_score"),
        usage("2026-01-15", "ka", "fraud_score"),
        usage("2026-01-31", "ka", "fraud_score"),
        usage("2026-01-31", "ka", "kyc"),  # a second product on the 31st: still one day
        usage("2026-01-31", "ka", "kyc"),  # the same of a second tenant: still one day
        usage("2026-02-01", "ka", "kyc"),
        usage("2026-02-28", "ka", "kyc"),
        usage("2026-01-31", None, "kyc"),
    ]
    rows = run_model(
        "int_customer_usage_months",
        {"fct_usage_daily": daily},
        (day("2026-01-01"), day("2026-03-01")),
    )
    # (month, customer, events, units, active days, products)
    assert [tuple(r.values()) for r in rows] == [
        (day("2026-01-01"), "ka", 5, 10, 3, 2),
        (day("2026-01-01"), None, 1, 2, 1, 1),  # the grain's order: a null key last
        (day("2026-02-01"), "ka", 2, 4, 2, 1),
    ]
