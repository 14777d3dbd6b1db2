"""The serving stack end to end on real servers: PostgreSQL Iceberg catalog + Trino 476, no mocks.

One pipeline for the module (the `served` fixture): on an emptied catalog (the session shares
the stack, and earlier modules leave their tables), a hand-made landing zone runs through
`run_pipeline` with the Iceberg catalog in the stack's PostgreSQL (temporary warehouse and
landing zone) and Trino in the Dagster definitions, October 2026 is closed, late data arrives
and the pipeline runs again. Then Trino must agree with pyiceberg/DuckDB on every mart, the BI
views must give the answers worked out by hand below, the bi user must be refused raw data and
see masked e-mails, and Trino must only ever see whole commits.

The world (every id as it lands; customer keys are md5 prefixes, see `key`):
- Ann (CRM acc_1 "Acme Payments", SMB, NA, owner Ann Lee) = billing cus_1 = tenant t1, plan
  growth since 09-01. Bob (acc_2 "Borealis Bank", Mid-Market, EMEA, owner Bob Stone) = cus_2 =
  t2, plan starter since 09-01. Tenant t9 belongs to nobody (the `unknown` customer).
- Usage: Ann 4 units on 09-10, 5 + 5 on 10-02; Bob 6 on 09-12, 3 on 10-03 (delivered twice);
  t9 7 on 10-04.
- Invoices (USD): inv_1 Ann issued 09-01 100.00; inv_2 Ann issued 10-01 500.00 + 14.00 tax =
  514.00; inv_3 Bob issued 10-01 subtotal 200.00, tax 0, total 220.00 (header does not add
  up); a 5.00 line on inv_404, an invoice that never arrives.
Late (after October is closed): Ann 12 units on 10-20; a 20.00 credit note on inv_2 issued
10-25; Bob turned Enterprise on 10-15 (CRM updated_at, in a snapshot of 11-02); a new
billing-only customer cus_3 (tenant t3, no CRM account, no subscription) uses 2 units on 10-21.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from trino.exceptions import TrinoUserError

from c360_assets.definitions import all_models, build_definitions
from c360_assets.defs.close.assets import CloseResult, close_month
from c360_assets.defs.serving.assets import (
    MART_KEY_SUMS,
    PARITY_CHECK,
    compare_with_trino,
    create_bi_views,
    load_bi_views,
)
from c360_assets.lib.sqlmodel import between
from c360_assets.tools import stack
from resources.lakehouse import LakehouseResource
from resources.trino import TrinoResource
from tests.lake import Lake
from tests.records import (
    billing_customer,
    credit_note,
    crm_account,
    event,
    invoice,
    line_item,
    subscription,
)
from tests.stack_fixture import StackHandle

DOCS = Path(__file__).resolve().parent.parent / "docs" / "serving.md"
SEPTEMBER, OCTOBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1)
USD = Decimal


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ANN, BOB, CUS3 = key("crm:acc_1"), key("crm:acc_2"), key("billing:cus_3")


# --------------------------------------------------------------------------- landing zone


def drop_september_october(lake: Lake) -> None:
    lake.drop(
        "crm/accounts",
        "2026-10-01.jsonl",
        [
            crm_account(
                crm_account_id="acc_1",
                account_name="Acme Payments",
                owner_name="Ann Lee",
                segment="SMB",
                region="NA",
                billing_customer_id="cus_1",
                updated_at="2026-09-01T00:00:00Z",
                snapshot_at="2026-10-01T00:00:00Z",
            ),
            crm_account(
                crm_account_id="acc_2",
                account_name="Borealis Bank",
                owner_name="Bob Stone",
                segment="Mid-Market",
                region="EMEA",
                billing_customer_id="cus_2",
                updated_at="2026-09-01T00:00:00Z",
                snapshot_at="2026-10-01T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "billing/customers",
        "2026-09-01.jsonl",
        [
            billing_customer(billing_customer_id="cus_1", tenant_id="t1", crm_account_id="acc_1"),
            billing_customer(billing_customer_id="cus_2", tenant_id="t2", crm_account_id="acc_2"),
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "2026-09-01.jsonl",
        [
            subscription(
                subscription_id="sub_1",
                billing_customer_id="cus_1",
                plan_code="growth",
                monthly_fee_minor=10000,
            ),
            subscription(
                subscription_id="sub_2",
                billing_customer_id="cus_2",
                plan_code="starter",
                monthly_fee_minor=20000,
            ),
        ],
    )
    lake.drop(
        "billing/invoices",
        "2026-10-01.jsonl",
        [
            invoice(
                invoice_id="inv_1",
                billing_customer_id="cus_1",
                period_start="2026-09-01T00:00:00Z",
                period_end="2026-10-01T00:00:00Z",
                issued_at="2026-09-01T00:00:00Z",
                subtotal_minor=10000,
                tax_minor=0,
                total_minor=10000,
            ),
            invoice(
                invoice_id="inv_2",
                billing_customer_id="cus_1",
                period_start="2026-10-01T00:00:00Z",
                period_end="2026-11-01T00:00:00Z",
                issued_at="2026-10-01T00:00:00Z",
                subtotal_minor=50000,
                tax_minor=1400,
                total_minor=51400,
            ),
            # the header does not add up: 200.00 + 0 != 220.00
            invoice(
                invoice_id="inv_3",
                billing_customer_id="cus_2",
                period_start="2026-10-01T00:00:00Z",
                period_end="2026-11-01T00:00:00Z",
                issued_at="2026-10-01T00:00:00Z",
                subtotal_minor=20000,
                tax_minor=0,
                total_minor=22000,
            ),
        ],
    )
    lake.drop(
        "billing/invoice_line_items",
        "2026-10-01.jsonl",
        [
            line_item(
                line_item_id="li_1",
                invoice_id="inv_1",
                kind="subscription",
                amount_minor=10000,
                service_period_start="2026-09-01T00:00:00Z",
                service_period_end="2026-10-01T00:00:00Z",
            ),
            line_item(
                line_item_id="li_2",
                invoice_id="inv_2",
                kind="subscription",
                amount_minor=50000,
                service_period_start="2026-10-01T00:00:00Z",
                service_period_end="2026-11-01T00:00:00Z",
            ),
            line_item(
                line_item_id="li_3",
                invoice_id="inv_3",
                kind="subscription",
                amount_minor=20000,
                service_period_start="2026-10-01T00:00:00Z",
                service_period_end="2026-11-01T00:00:00Z",
            ),
            # its invoice never arrives
            line_item(
                line_item_id="li_9",
                invoice_id="inv_404",
                kind="one_off",
                amount_minor=500,
                service_period_start="2026-10-01T00:00:00Z",
                service_period_end="2026-11-01T00:00:00Z",
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "2026-10-05.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-09-10T10:00:00Z", quantity=4),
            event(event_id="e2", tenant_id="t2", occurred_at="2026-09-12T10:00:00Z", quantity=6),
            event(event_id="e3", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z", quantity=5),
            event(event_id="e4", tenant_id="t1", occurred_at="2026-10-02T11:00:00Z", quantity=5),
            event(event_id="e5", tenant_id="t2", occurred_at="2026-10-03T10:00:00Z", quantity=3),
            # re-delivered: counted once
            event(event_id="e5", tenant_id="t2", occurred_at="2026-10-03T10:00:00Z", quantity=3),
            event(event_id="e6", tenant_id="t9", occurred_at="2026-10-04T10:00:00Z", quantity=7),
        ],
    )


def drop_late_data(lake: Lake) -> None:
    lake.drop(
        "usage_events",
        "2026-11-02.jsonl",
        [
            event(event_id="e7", tenant_id="t1", occurred_at="2026-10-20T10:00:00Z", quantity=12),
            event(event_id="e8", tenant_id="t3", occurred_at="2026-10-21T09:00:00Z", quantity=2),
        ],
    )
    lake.drop(
        "billing/customers",
        "2026-11-01.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_3",
                tenant_id="t3",
                crm_account_id=None,
                created_at="2026-10-21T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/credit_notes",
        "2026-10-25.jsonl",
        [
            credit_note(
                credit_note_id="cn_1",
                invoice_id="inv_2",
                amount_minor=2000,
                currency="USD",
                issued_at="2026-10-25T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "crm/accounts",
        "2026-11-02.jsonl",  # Ann is not in this snapshot: unchanged
        [
            crm_account(
                crm_account_id="acc_2",
                account_name="Borealis Bank",
                owner_name="Bob Stone",
                segment="Enterprise",
                region="EMEA",
                billing_customer_id="cus_2",
                updated_at="2026-10-15T00:00:00Z",
                snapshot_at="2026-11-02T00:00:00Z",
            )
        ],
    )


# --------------------------------------------------------------------------- the fixture


@dataclass
class ServedLake(Lake):
    """The test harness's lake, with the catalog in the stack's PostgreSQL and Trino in Dagster."""

    trino: TrinoResource | None = None

    def definitions(self) -> dg.Definitions:
        return build_definitions(self.lakehouse, self.trino)


@dataclass
class Served:
    lake: ServedLake
    stack: StackHandle
    close: CloseResult

    @property
    def admin(self) -> TrinoResource:
        return self.stack.trino()

    @property
    def bi(self) -> TrinoResource:
        return self.stack.trino("bi")


@contextlib.contextmanager
def served_lake(trino_stack: StackHandle, root: Path) -> Iterator[ServedLake]:
    """An emptied catalog in the stack's PostgreSQL (the session shares the stack), a warehouse,
    landing zone and Dagster instance under ``root``, Trino in the definitions."""
    trino_stack.reset_catalog()
    for folder in ("landing", "dagster_home"):
        (root / folder).mkdir()
    lakehouse = LakehouseResource(
        catalog_uri=trino_stack.catalog_uri,  # postgresql+psycopg2://... of the test stack
        catalog_name=trino_stack.config.catalog_name,
        warehouse=str(root / "warehouse"),
        landing_dir=str(root / "landing"),
    )
    with dg.DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
        yield ServedLake(root, lakehouse, instance, trino=trino_stack.trino())


@pytest.fixture(scope="module")
def served(trino_stack: StackHandle, tmp_path_factory) -> Iterator[Served]:
    with served_lake(trino_stack, tmp_path_factory.mktemp("served")) as lake:
        drop_september_october(lake)
        lake.run()
        closed = close_month(
            lake.lakehouse, lake.instance, lake.definitions(), all_models(), OCTOBER
        )
        drop_late_data(lake)
        lake.run()
        create_bi_views(trino_stack.trino())
        yield Served(lake, trino_stack, closed)


def rows_as_dicts(trino: TrinoResource, sql: str) -> list[dict]:
    conn = trino.connect()
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description]
    finally:
        conn.close()
    return [dict(zip(names, row, strict=True)) for row in rows]


# --------------------------------------------------------------------------- (a) same answers


def test_trino_reads_the_pipeline_tables_with_their_types(served: Served) -> None:
    catalog = served.lake.lakehouse.catalog
    for namespace in ("raw", "staging", "core", "marts"):
        written = {name for _, name in catalog.list_tables(namespace)}
        seen = {row[0] for row in served.admin.query(f"show tables from iceberg.{namespace}")}
        assert seen == written, namespace
    assert {"usage_events", "quarantine"} <= {
        name for _, name in catalog.list_tables("raw")
    }  # the pipeline really wrote through PostgreSQL
    types = {
        (table, column): kind
        for table, column, kind in served.admin.query(
            "select table_name, column_name, data_type from iceberg.information_schema.columns "
            "where table_schema in ('raw', 'marts')"
        )
    }
    tz = "timestamp(6) with time zone"
    assert types[("usage_events", "occurred_at")] == tz
    assert types[("fct_usage_daily", "usage_date")] == "date"
    assert types[("fct_usage_daily", "units")] == "decimal(38,0)"  # exact: never overflows
    assert types[("dim_customer", "valid_from")] == tz
    assert types[("fct_customer_month", "month")] == "date"
    for money in ("invoiced_usd", "credits_usd", "refunds_usd", "net_revenue_usd"):
        assert types[("fct_customer_month", money)] == "decimal(18,2)"
    assert types[("fct_invoice_reconciliation", "total_minor")] == "bigint"
    assert types[("fct_invoice_reconciliation", "issued_at")] == tz
    assert types[("restatements", "detected_at")] == tz
    # a timestamp and a decimal read back exactly
    (issued_at, total), *_ = served.admin.query(
        "select issued_at, total_minor from iceberg.marts.fct_invoice_reconciliation "
        "where invoice_id = 'inv_2'"
    )
    assert (issued_at, total) == (dt.datetime(2026, 10, 1, tzinfo=dt.UTC), 51400)


def test_trino_and_pyiceberg_agree_on_every_mart(served: Served) -> None:
    for key_sums in MART_KEY_SUMS:
        comparison = compare_with_trino(served.lake.lakehouse, served.admin, key_sums)
        assert comparison.ok, (key_sums.table, comparison.differences)
        assert comparison.trino["rows"] > 0, key_sums.table
    usage = compare_with_trino(served.lake.lakehouse, served.admin, MART_KEY_SUMS[0])
    # units 4 + 6 + (5 + 5) + 3 + 7 + 12 + 2 = 44 from 8 distinct events (e5 once)
    assert (usage.trino["sum_units"], usage.trino["sum_events"]) == (44, 8)
    # over a window only: the late days 10-20 (e7, 12 units) and 10-21 (e8, 2 units)
    late_days = ("usage_date", dt.date(2026, 10, 20), dt.date(2026, 10, 22))
    late = compare_with_trino(served.lake.lakehouse, served.admin, MART_KEY_SUMS[0], late_days)
    assert late.ok and (late.trino["sum_units"], late.trino["sum_events"]) == (14, 2)
    # the pipeline's own asset checks compared them too, after each build
    for key_sums in MART_KEY_SUMS:
        if key_sums.table == "marts.month_closes":  # written by `close-month`, not by a run
            continue
        asset = key_sums.table.split(".")[1]
        record = served.lake.instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey(asset), PARITY_CHECK)
        )
        assert record is not None, asset
        assert record.status.value == "SUCCEEDED", asset
        # a partitioned mart's check compares the partitions its latest build wrote
        compared = record.event.dagster_event.event_specific_data.metadata["compared"].value
        partitioned = asset in {m.name for m in all_models() if m.partitioning}
        assert compared.startswith(("usage_date in [", "month in [")) == partitioned, compared


def test_the_embedded_default_has_no_trino(served: Served) -> None:
    embedded = build_definitions(served.lake.lakehouse)
    assert "trino" not in (embedded.resources or {})
    check_names = {k.name for k in embedded.resolve_asset_graph().asset_check_keys}
    assert PARITY_CHECK not in check_names
    assert PARITY_CHECK in {
        k.name for k in served.lake.definitions().resolve_asset_graph().asset_check_keys
    }


# --------------------------------------------------------------------------- (b) the BI views


def test_revenue_by_segment_region_month_is_as_reported(served: Served) -> None:
    rows = rows_as_dicts(
        served.bi,
        "select * from iceberg.bi.revenue_by_segment_region_month order by month, segment, region",
    )
    money = ("invoiced_usd", "credits_usd", "net_revenue_usd", "net_revenue_usd_current")
    got = {
        (r["month"], r["segment"], r["region"]): (
            r["close_tag"],
            r["customers"],
            r["usage_units"],
            *(str(r[m]) for m in money),
            r["customers_current"],
            str(r["net_revenue_usd_restated_by"]),
        )
        for r in rows
    }
    tag, mm, un = "close-2026-10", "Mid-Market", "Unassigned"
    # (month, segment, region): (close tag, customers, units, invoiced, credits, net as reported,
    #                            customers now, net now, restated by)
    assert got == {
        # September is open: as reported = current. Ann: 4 units, inv_1 100.00; Bob: 6 units,
        # no invoice (his first one was issued in October). Bob was Mid-Market all September.
        (SEPTEMBER, "SMB", "NA"): (None, 1, 4, "100.00", "0.00", "100.00", "100.00", 1, "0.00"),
        (SEPTEMBER, "Mid-Market", "EMEA"): (None, 1, 6, "0.00", "0.00", "0.00", "0.00", 1, "0.00"),
        # October is closed. As closed, Ann had 5 + 5 = 10 units and inv_2 514.00 (tax
        # included), no credit; since then 12 more units and a 20.00 credit: 514.00 - 20.00 =
        # 494.00 now, restated by -20.00.
        (OCTOBER, "SMB", "NA"): (tag, 1, 10, "514.00", "0.00", "514.00", "494.00", 1, "-20.00"),
        # Bob was Mid-Market at the close (3 units, inv_3 at its total 220.00); he turned
        # Enterprise on 10-15, learnt after the close: today his 220.00 sits in Enterprise.
        (OCTOBER, mm, "EMEA"): (tag, 1, 3, "220.00", "0.00", "220.00", "0.00", 0, "-220.00"),
        (OCTOBER, "Enterprise", "EMEA"): (tag, 0, 0, "0.00", "0.00", "0.00", "220.00", 1, "220.00"),
        # t9's 7 units (the unknown customer) as closed; cus_3 (2 units on 10-21, no CRM
        # account) arrived after the close: counted today, not as reported.
        (OCTOBER, un, un): (tag, 1, 7, "0.00", "0.00", "0.00", "0.00", 2, "0.00"),
    }  # fmt: skip
    # October as reported totals what `close-month` recorded: 514.00 + 220.00 = 734.00 net,
    # 10 + 3 + 7 = 20 units ...
    reported = [r for r in rows if r["month"] == OCTOBER]
    assert sum(r["net_revenue_usd"] for r in reported) == served.close.totals["net_revenue_usd"]
    assert sum(r["usage_units"] for r in reported) == served.close.totals["usage_units"] == 20
    # ... and what the Iceberg tag still holds (time travel), segment by segment.
    tagged = served.bi.query(
        "select coalesce(segment, 'Unassigned'), coalesce(region, 'Unassigned'), count(*), "
        "sum(usage_units), sum(net_revenue_usd) from iceberg.marts.fct_customer_month "
        "for version as of 'close-2026-10' where month = date '2026-10-01' group by 1, 2"
    )
    assert {(s, r, n, u, v) for s, r, n, u, v in tagged} == {
        (r["segment"], r["region"], r["customers"], r["usage_units"], r["net_revenue_usd"])
        for r in reported
        if r["customers"]
    }


def test_customer_360_current_customers(served: Served) -> None:
    rows = {
        r["customer_key"]: r
        for r in rows_as_dicts(served.bi, "select * from iceberg.bi.customer_360")
    }
    # the current versions: Ann, Bob, the billing-only cus_3 and the unknown member
    assert set(rows) == {ANN, BOB, CUS3, "unknown"}
    ann, bob = rows[ANN], rows[BOB]
    # Ann: October 10 + 12 = 22 units on 2 days against 4 in September: up 450.0 %; net revenue
    # October 494.00, September 100.00: 594.00 over 12 months and in all.
    assert {k: ann[k] for k in ann if k not in ("customer_since", "current_version_since")} == {
        "customer_key": ANN,
        "crm_account_id": "acc_1",
        "billing_customer_id": "cus_1",
        "account_name": "Acme Payments",
        "segment": "SMB",
        "region": "NA",
        "owner_name": "Ann Lee",
        "owner_email": "***@example.com",  # masked for bi, through the view
        "latest_month": OCTOBER,
        "plan_code": "growth",
        "usage_units_latest_month": 22,
        "active_days_latest_month": 2,
        "products_used_latest_month": 1,
        "products_latest_month": "fraud_score",
        "units_trend": "up",
        "usage_units_change_pct": 450.0,
        "net_revenue_usd_latest_month": USD("494.00"),
        "net_revenue_usd_trailing_12m": USD("594.00"),
        "net_revenue_usd_lifetime": USD("594.00"),
        "invoices_not_reconciling": 0,
        "usage_anomalies_last_30_days": 0,
    }
    assert ann["customer_since"] == dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    # Bob: Enterprise since 10-15 (a new version); 3 units against 6: down 50 %; 220.00 in
    # October only; inv_3 does not reconcile.
    assert (bob["segment"], bob["current_version_since"]) == (
        "Enterprise",
        dt.datetime(2026, 10, 15, tzinfo=dt.UTC),
    )
    assert (bob["units_trend"], bob["usage_units_change_pct"]) == ("down", -50.0)
    assert (bob["net_revenue_usd_lifetime"], bob["invoices_not_reconciling"]) == (
        USD("220.00"),
        1,
    )
    # the two tenants nobody pays for show up with one anomaly each (see below)
    assert rows[CUS3]["usage_anomalies_last_30_days"] == 1
    assert rows["unknown"]["usage_anomalies_last_30_days"] == 1


def test_invoices_not_reconciling(served: Served) -> None:
    rows = rows_as_dicts(
        served.bi,
        "select invoice_id, status, customer_key, account_name, owner_name, total_minor, "
        "lines_minor, header_difference_minor, lines_difference_minor, over_credited_minor "
        "from iceberg.bi.invoices_not_reconciling order by invoice_id",
    )
    assert [tuple(r.values()) for r in rows] == [
        # inv_3: total 22000 - (subtotal 20000 + tax 0) = 2000 too much; its line matches
        ("inv_3", "header_mismatch", BOB, "Borealis Bank", "Bob Stone", 22000, 20000, 2000, 0, 0),
        # li_9's invoice never arrived: the 500 of lines stand alone, nothing to compare
        ("inv_404", "orphan_lines", None, None, None, None, 500, None, None, None),
    ]
    # inv_2 (514.00, credited 20.00) and inv_1 reconcile


def test_recent_usage_anomalies(served: Served) -> None:
    rows = served.bi.query(
        "select usage_date, latest_usage_date, days_ago, customer_key, tenant_id, units, reason "
        "from iceberg.bi.recent_usage_anomalies order by usage_date"
    )
    # the latest usage day is 10-21; both tenants without a subscription are flagged
    latest, reason = dt.date(2026, 10, 21), "no_active_subscription"
    assert rows == [
        (dt.date(2026, 10, 4), latest, 17, "unknown", "t9", 7, reason),
        (dt.date(2026, 10, 21), latest, 0, CUS3, "t3", 2, reason),
    ]


def test_adoption_by_owner_month(served: Served) -> None:
    rows = served.bi.query(
        "select owner_name, customers, active_customers, usage_units, previous_usage_units, "
        "customers_new, customers_up, customers_down, products_adopted "
        "from iceberg.bi.adoption_by_owner_month where month = date '2026-10-01' order by 1"
    )
    assert rows == [
        ("Ann Lee", 1, 1, 22, 4, 0, 1, 0, 0),  # fraud_score both months: nothing adopted
        ("Bob Stone", 1, 1, 3, 6, 0, 0, 1, 0),
        # the unknown member (t9, 7) and cus_3 (t3, 2): new in October, fraud_score adopted
        ("Unassigned", 2, 2, 9, 0, 2, 0, 0, 2),
    ]


# --------------------------------------------------------------------------- (c) access


def test_bi_user_is_denied_raw_data_and_sees_masked_emails(served: Served) -> None:
    for table in (
        "raw.usage_events",
        "raw.crm_accounts",
        "staging.stg_crm_accounts",
        "core.int_tenants_resolved",
    ):
        with pytest.raises(TrinoUserError, match="Access Denied"):
            served.bi.query(f"select count(*) from iceberg.{table}")
    for statement in (
        "create view iceberg.bi.mine security invoker as select 1 as x",
        "drop view iceberg.bi.customer_360",
        "delete from iceberg.marts.fct_usage_daily",
    ):
        with pytest.raises(TrinoUserError, match="Access Denied"):
            served.bi.query(statement)
    sql = "select owner_email from iceberg.{} where crm_account_id = 'acc_1'"
    assert served.admin.query(sql.format("raw.crm_accounts"))[0] == ("ann.lee@example.com",)
    assert set(served.bi.query(sql.format("marts.dim_customer"))) == {("***@example.com",)}
    assert served.bi.query(sql.format("bi.customer_360")) == [("***@example.com",)]
    assert served.admin.query(sql.format("bi.customer_360")) == [("ann.lee@example.com",)]
    # every view runs with its reader's rights (and masks)
    for view in load_bi_views():
        (ddl,) = served.admin.query(f"show create view iceberg.bi.{view.name}")[0]
        assert "SECURITY INVOKER" in ddl, view.name


def metadata_table(table: str, metadata: str) -> str:
    """Trino's name of a table's metadata table ("files": iceberg.marts."dim_customer$files")."""
    schema, name = table.split(".")
    return f'iceberg.{schema}."{name}${metadata}"'


# Trino 476's Iceberg metadata tables (of a table t: "t$files", ...)
METADATA_TABLES = (
    "properties",
    "history",
    "metadata_log_entries",
    "snapshots",
    "manifests",
    "all_manifests",
    "partitions",
    "files",
    "entries",
    "all_entries",
    "refs",
)


def test_bi_reads_no_metadata_table_of_a_masked_table(served: Served) -> None:
    """The mask covers owner_email in the marts; the metadata tables would show its per-file
    bounds (lower_bounds, upper_bounds, readable_metrics, "$partitions" summaries) unmasked. bi
    is denied every one of them, except "$refs" (tag and branch names, which the as-reported
    revenue view reads): it holds no column's values."""
    for table in ("dim_customer", "fct_customer_month", "fct_usage_daily"):
        for metadata in METADATA_TABLES:
            name = metadata_table(f"marts.{table}", metadata)
            assert served.admin.query(f"select count(*) from {name}")[0][0] >= 0, name
            if metadata == "refs":
                columns = [r[0] for r in served.bi.query(f"show columns from {name}")]
                assert "owner_email" not in columns and "readable_metrics" not in columns
                served.bi.query(f"select * from {name}")
                continue
            with pytest.raises(TrinoUserError, match="Access Denied"):
                served.bi.query(f"select * from {name}")
    # the table function that reads a table's row changes is no side door either
    (snapshot,) = served.admin.query(
        'select max(snapshot_id) from iceberg.marts."dim_customer$snapshots"'
    )[0]
    with pytest.raises(TrinoUserError, match="Access Denied"):
        served.bi.query(
            "select * from table(iceberg.system.table_changes("
            f"schema_name => 'marts', table_name => 'dim_customer', end_snapshot_id => {snapshot}))"
        )


def test_masked_columns_write_no_statistics_into_the_metadata(served: Served) -> None:
    """Even the admin finds no bound of owner_email in the manifests: the column's Iceberg
    metrics mode is none in every table that holds it (other columns keep theirs)."""
    catalog = served.lake.lakehouse.catalog
    for table in ("marts.dim_customer", "staging.stg_crm_accounts", "raw.crm_accounts"):
        iceberg = catalog.load_table(table)
        assert iceberg.properties["write.metadata.metrics.column.owner_email"] == "none"
        email = iceberg.schema().find_field("owner_email").field_id
        account = iceberg.schema().find_field("crm_account_id").field_id
        rows = served.admin.query(
            f"select element_at(lower_bounds, {email}), element_at(upper_bounds, {email}), "
            f"element_at(value_counts, {email}), element_at(lower_bounds, {account}), "
            "json_extract_scalar(readable_metrics, '$.owner_email.lower_bound') "
            f"from {metadata_table(table, 'files')}"
        )
        assert rows and all(r[:3] == (None, None, None) and r[4] is None for r in rows), table
        assert all(r[3] is not None for r in rows), table  # bounds exist for other columns
        # every manifest entry, of every snapshot kept (deleted files included)
        entries = served.admin.query(
            f"select count(*) from {metadata_table(table, 'all_entries')} "
            f"where element_at(data_file.lower_bounds, {email}) is not null"
        )
        assert entries == [(0,)], table


def test_metadata_tables_work_on_tables_c360_writes(served: Served) -> None:
    """ "$entries" reads every manifest entry (Trino 476 fails on a null sort_order_id, which
    pyiceberg writes; c360 states the table's order, 0 = unsorted) and "$manifests" every
    manifest."""
    for table in ("marts.fct_usage_daily", "marts.dim_customer", "raw.usage_events"):
        entries = served.admin.query(
            f"select data_file.sort_order_id, count(*) from {metadata_table(table, 'entries')} "
            "group by 1"
        )
        assert entries and all(order == 0 for order, _ in entries), (table, entries)
        manifests = served.admin.query(
            "select count(*), sum(added_data_files_count) "
            f"from {metadata_table(table, 'manifests')}"
        )
        assert manifests[0][0] > 0 and manifests[0][1] > 0, table


# --------------------------------------------------------------------------- (e) up twice


def _view_metadata(handle: StackHandle) -> dict[str, str]:
    catalog = handle.catalog()
    try:
        with catalog.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "select table_name, metadata_location from iceberg_tables "
                    "where table_namespace = 'bi' and iceberg_type = 'VIEW'"
                )
            ).all()
    finally:
        catalog.engine.dispose()
    return dict(rows)


def test_stack_up_twice_rewrites_nothing(served: Served) -> None:
    before = _view_metadata(served.stack)
    assert set(before) == {v.name for v in load_bi_views()}
    status = stack.status(served.stack.config)
    pids = (status["postgres"]["pid"], status["trino"]["pid"])

    served.stack.up()
    outcome = stack.publish_bi_views(served.stack.config, echo=lambda _: None)

    assert set(outcome.values()) == {"unchanged"}
    assert _view_metadata(served.stack) == before  # no new view version written
    status = stack.status(served.stack.config)
    assert (status["postgres"]["pid"], status["trino"]["pid"]) == pids
    assert served.bi.query("select count(*) from iceberg.bi.customer_360") == [(4,)]


# --------------------------------------------------------------------------- docs/serving.md


def test_every_example_in_the_serving_docs_runs(served: Served, monkeypatch) -> None:
    text = DOCS.read_text()
    queries = re.findall(r"```sql\n(.*?)```", text, re.DOTALL)
    programs = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(queries) >= 6 and len(programs) == 2
    for query in queries:
        assert served.bi.query(query.strip().rstrip(";")), query
    config = served.stack.config
    for name, value in {
        "C360_TRINO_HOST": "127.0.0.1",
        "C360_TRINO_PORT": str(config.trino_port),
        "C360_TRINO_CA_FILE": str(config.trino_tls_cert),
        "C360_TRINO_BI_PASSWORD": config.bi_password,
    }.items():
        monkeypatch.setenv(name, value)
    for program in programs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(program, str(DOCS), "exec"), {"__name__": "docs_example"})
        assert out.getvalue().strip(), program
    assert "***@example.com" in out.getvalue()  # the SQLAlchemy example, as bi


# --------------------------------------------------------------------------- (d) snapshots


def test_trino_sees_only_whole_commits_while_the_pipeline_writes(served: Served) -> None:
    """A writer replaces October 2-4 of fct_usage_daily (three partitions, one commit each time)
    while Trino sums the units in a loop; every total Trino reports must be a committed one.

    Other days hold 4 + 6 + 12 + 2 = 24 units, October 2-4 hold 10 + 3 + 7 = 20: 44 in all.
    Commit i (1..8) writes i, 100 i and 10000 i units on those days: total 24 + 10101 i. A
    reader that saw part of a commit (some days old, some new, some gone) would get a sum that
    is none of these (the three days are distinct base-100 digits).

    No sleeps: after each commit the writer waits until the reader has finished a query that
    started after it (that query must see exactly this commit), then commits again while the
    reader keeps querying, so reads and commits overlap on every commit but the first."""
    lakehouse = served.lake.lakehouse
    table = "marts.fct_usage_daily"
    days = between("usage_date", dt.date(2026, 10, 2), dt.date(2026, 10, 5))
    original = lakehouse.scan(table, days)
    assert sorted(original.column("units").to_pylist()) == [3, 7, 5 + 5]
    sql = "select sum(units) from iceberg.marts.fct_usage_daily"
    assert served.admin.query(sql) == [(44,)]
    commits = 8
    committed = {44} | {24 + 10101 * i for i in range(1, commits + 1)}
    scale = {dt.date(2026, 10, 2): 1, dt.date(2026, 10, 3): 100, dt.date(2026, 10, 4): 10000}
    errors: list[BaseException] = []
    latest = [0]  # the last commit the writer finished
    seen = [threading.Event() for _ in range(commits + 1)]  # seen[i]: a read after commit i
    after_commit: dict[int, int] = {}  # commit i -> the total of the first read started after it

    def write() -> None:
        try:
            for i in range(1, commits + 1):
                units = [scale[d] * i for d in original.column("usage_date").to_pylist()]
                kind = original.schema.field("units").type  # decimal(38, 0)
                data = original.set_column(
                    original.schema.get_field_index("units"), "units", pa.array(units, kind)
                )
                lakehouse.replace_where(table, data, days, ("usage_date",))
                latest[0] = i
                if not seen[i].wait(timeout=60):
                    raise TimeoutError(f"no read finished after commit {i}")
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    writer = threading.Thread(target=write, name="usage-writer")
    observed: list[int] = []
    writer.start()
    try:
        while writer.is_alive():
            started_after = latest[0]
            total = served.admin.query(sql)[0][0]
            observed.append(total)
            if started_after and not seen[started_after].is_set():
                after_commit[started_after] = total
                seen[started_after].set()
        writer.join()
        assert not errors, errors
        torn = sorted(set(observed) - committed)
        assert not torn, f"Trino saw totals no commit wrote: {torn}"
        # a read that started after commit i, before commit i + 1, sees exactly commit i
        assert after_commit == {i: 24 + 10101 * i for i in range(1, commits + 1)}
        # and no stale cache: the next query sees the last commit
        assert served.admin.query(sql) == [(24 + 10101 * commits,)]
    finally:
        for event in seen:
            event.set()  # a writer still waiting stops
        writer.join(timeout=60)
        lakehouse.replace_where(table, original, days, ("usage_date",))
    assert served.admin.query(sql) == [(44,)]
