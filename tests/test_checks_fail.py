"""Every blocking check is shown to fail: the test breaks exactly the input a check guards,
materializes only the asset under test (real Dagster, real Iceberg, real DuckDB), and asserts
that the run fails with exactly the expected checks named; and `c360 run` exits non-zero.

The inputs are built once for the module by one real run on a small landing zone; each case
then rewrites one input table (the break), materializes one asset, and puts both tables back on
their previous Iceberg snapshot. A model whose SQL groups by its own grain cannot be made to
produce a duplicate by any input: for those, a duplicate in the stored table is shown to fail
the grain check as `c360 close-month` and an unchanged build re-run it.
"""

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue

from c360_assets.definitions import all_models
from c360_assets.defs.ingest.assets import ingestion_checks
from c360_assets.defs.ingest.sources import USAGE
from c360_assets.lib.ingest import ingest_source
from c360_assets.lib.models import build_model_asset, check_stored_partition
from c360_assets.tools.cli import main
from c360_assets.tools.runner import QUIET
from resources.lakehouse import LakehouseResource
from tests.lake import ingest_interrupted_before_the_file_log
from tests.records import (
    billing_customer,
    credit_note,
    crm_account,
    event,
    fx_rate,
    invoice,
    line_item,
    refund,
    subscription,
)

MODELS = {m.name: m for m in all_models()}
FACTS = "marts.fct_customer_month"
OCTOBER = dt.date(2026, 10, 1)


def key(natural: str) -> str:
    return hashlib.md5(natural.encode()).hexdigest()[:16]


ANN = key("crm:acc_1")  # CRM account acc_1 -> billing customer cus_1 -> tenant t1
BOB = key("crm:acc_2")  # CRM account acc_2 -> billing customer cus_2 -> tenant t2
CARL = key("billing:cus_3")  # billing-only customer cus_3 -> tenant t3, no subscription


def drop_base(lake) -> None:
    """Three customers whose September and October pass every check, WARN ones included."""
    lake.drop(
        "crm/accounts",
        "2026-10-01.jsonl",
        [
            crm_account(crm_account_id="acc_1", owner_name="Ann", billing_customer_id="cus_1"),
            crm_account(crm_account_id="acc_2", owner_name="Bob", billing_customer_id="cus_2"),
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(billing_customer_id="cus_1", tenant_id="t1", crm_account_id="acc_1"),
            billing_customer(billing_customer_id="cus_2", tenant_id="t2", crm_account_id="acc_2"),
            billing_customer(billing_customer_id="cus_3", tenant_id="t3"),
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(subscription_id="sub_1", billing_customer_id="cus_1"),
            subscription(subscription_id="sub_2", billing_customer_id="cus_2"),
        ],
    )
    lake.drop(
        "billing/invoices",
        "invoices.jsonl",
        [
            invoice(invoice_id="inv_1", billing_customer_id="cus_1", subtotal_minor=51400),
            invoice(invoice_id="inv_2", billing_customer_id="cus_2", subtotal_minor=20000),
        ],
    )
    lake.drop(
        "billing/invoice_line_items",
        "lines.jsonl",
        [
            line_item(line_item_id="li_1", invoice_id="inv_1", amount_minor=51400),
            line_item(line_item_id="li_2", invoice_id="inv_2", amount_minor=20000),
        ],
    )
    lake.drop("billing/credit_notes", "credits.jsonl", [credit_note(invoice_id="inv_1")])
    lake.drop("billing/refunds", "refunds.jsonl", [refund(invoice_id="inv_1")])
    lake.drop("billing/fx_rates", "rates.jsonl", [fx_rate(rate_date="2026-10-05")])
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z", quantity=5),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-10-02T11:00:00Z", quantity=5),
            event(event_id="e3", tenant_id="t2", occurred_at="2026-10-03T10:00:00Z", quantity=2),
            event(event_id="e4", tenant_id="t3", occurred_at="2026-10-03T10:00:00Z", quantity=1),
        ],
    )


@pytest.fixture(scope="module")
def base(module_lake):
    drop_base(module_lake)
    report = module_lake.run()
    assert report.rebuilt == {
        "daily": ["2026-10-02", "2026-10-03"],
        "monthly": ["2026-09-01", "2026-10-01"],  # subscriptions start in September
    }
    lakehouse = module_lake.lakehouse
    lakehouse.create_tag(FACTS, "close-2026-10", lakehouse.current_snapshot_id(FACTS))
    return module_lake


# -- breaking one input ------------------------------------------------------------------------
Edit = Callable[[list[dict]], list[dict]]


def where(**match) -> Callable[[dict], bool]:
    return lambda row: all(row[k] == v for k, v in match.items())


def copy(match: Callable[[dict], bool], times: int = 1, **changes) -> Edit:
    """Add ``times`` copies of the matching rows, with ``changes``."""
    return lambda rows: (
        rows + [{**row, **changes} for row in rows if match(row) for _ in range(times)]
    )


def change(match: Callable[[dict], bool], **changes) -> Edit:
    return lambda rows: [{**row, **changes} if match(row) else row for row in rows]


def drop(match: Callable[[dict], bool]) -> Edit:
    return lambda rows: [row for row in rows if not match(row)]


def add(**row) -> Edit:
    return lambda rows: rows + [{**rows[0], **row}]


@dataclass(frozen=True)
class Break:
    """Materialize ``asset`` (its ``partition``) after ``edit`` rewrote the input ``table``:
    exactly ``failing`` checks fail."""

    asset: str
    partition: str | None
    table: str
    edit: Edit
    failing: frozenset[str]


GRAIN = "grain_is_unique"
DUPLICATE_CUS_1 = copy(where(billing_customer_id="cus_1"))
CASES = {
    # a tenant mapped to two customers: each key once, but its units counted twice
    "fct_usage_daily:usage_units_conserved": Break(
        "fct_usage_daily",
        "2026-10-02",
        "core.int_tenants_resolved",
        copy(where(tenant_id="t1"), customer_key=BOB),
        frozenset({"usage_units_conserved"}),
    ),
    "int_billing_customers_resolved:grain": Break(
        "int_billing_customers_resolved",
        None,
        "staging.stg_billing_customers",
        DUPLICATE_CUS_1,
        frozenset({GRAIN}),
    ),
    "int_subscription_versions:grain": Break(
        "int_subscription_versions",
        None,
        "core.int_billing_customers_resolved",
        DUPLICATE_CUS_1,
        frozenset({GRAIN}),
    ),
    "int_billing_documents_resolved:grain": Break(
        "int_billing_documents_resolved",
        None,
        "core.int_billing_customers_resolved",
        DUPLICATE_CUS_1,
        frozenset({GRAIN, "billing_documents_conserved"}),
    ),
    "fct_invoice_reconciliation:grain": Break(
        "fct_invoice_reconciliation",
        None,
        "core.int_billing_customers_resolved",
        DUPLICATE_CUS_1,
        frozenset({GRAIN}),
    ),
    # cus_1 resolved twice: the plan's billing customer (its currency) joins twice, so Ann's
    # reconciliation rows come twice (the same set of rows as the facts: the rows check holds)
    "fct_usage_billing_reconciliation:grain": Break(
        "fct_usage_billing_reconciliation",
        "2026-10-01",
        "core.int_billing_customers_resolved",
        DUPLICATE_CUS_1,
        frozenset({GRAIN}),
    ),
    "fct_invoice_reconciliation:customer_keys_resolve": Break(
        "fct_invoice_reconciliation",
        None,
        "marts.dim_customer",
        drop(where(customer_key=BOB)),
        frozenset({"customer_keys_resolve"}),
    ),
    # two records of acc_1 at one updated_at that disagree: two versions starting together
    "dim_customer:grain": Break(
        "dim_customer",
        None,
        "staging.stg_crm_accounts",
        copy(where(crm_account_id="acc_1"), segment="Enterprise"),
        frozenset({GRAIN}),
    ),
    # a billing-only customer carrying acc_1's key: a second open version from 09-15
    "dim_customer:windows": Break(
        "dim_customer",
        None,
        "core.int_billing_customers_resolved",
        add(
            billing_customer_id="cus_x",
            tenant_id=None,
            crm_account_id=None,
            customer_key=ANN,
            created_at=dt.datetime(2026, 9, 15, tzinfo=dt.UTC),
        ),
        frozenset(
            {
                "dim_customer_windows_do_not_overlap",
                "dim_customer_one_current_per_live_customer",
                "dim_customer_windows_chain",
            }
        ),
    ),
    # two versions of Bob in force at September's last instant; his September is all zeros
    "fct_customer_month:grain": Break(
        "fct_customer_month",
        "2026-09-01",
        "marts.dim_customer",
        copy(where(customer_key=BOB), valid_from=dt.datetime(2026, 9, 15, tzinfo=dt.UTC)),
        frozenset({GRAIN}),
    ),
    "fct_customer_month:customer_keys_resolve": Break(
        "fct_customer_month",
        "2026-10-01",
        "marts.dim_customer",
        drop(where(customer_key=BOB)),
        frozenset({"customer_keys_resolve"}),
    ),
    # usage on no key at all never joins the month's spine: it is lost from the month
    "fct_customer_month:customer_month_usage_conserved": Break(
        "fct_customer_month",
        "2026-10-01",
        "core.int_customer_usage_months",
        copy(where(customer_key=CARL, month=OCTOBER), customer_key=None, usage_units=7),
        frozenset({"customer_month_usage_conserved"}),
    ),
    # Bob's invoice on no key: its 200.00 never joins the month's spine
    "fct_customer_month:customer_month_money_conserved": Break(
        "fct_customer_month",
        "2026-10-01",
        "core.int_billing_documents_resolved",
        change(where(document_id="inv_2"), customer_key=None),
        frozenset({"customer_month_money_conserved"}),
    ),
    # Bob's only money document of October unconverted: his USD measures are null, not 0
    "fct_customer_month:fx_rates_available": Break(
        "fct_customer_month",
        "2026-10-01",
        "core.int_billing_documents_resolved",
        change(where(document_id="inv_2"), amount_usd=None),
        frozenset({"fx_rates_available"}),
    ),
    # Carl's usage (no subscription: flagged) twice in the daily fact: flagged twice
    "usage_anomalies:grain": Break(
        "usage_anomalies",
        "2026-10-03",
        "marts.fct_usage_daily",
        copy(where(tenant_id="t3")),
        frozenset({GRAIN}),
    ),
    "fct_customer_adoption_monthly:grain": Break(
        "fct_customer_adoption_monthly",
        "2026-10-01",
        FACTS,
        copy(where(customer_key=ANN, month=OCTOBER)),
        frozenset({GRAIN}),
    ),
    # October is closed (the fixture's tag); Ann's current row, twice, restated the same way
    "restatements:grain": Break(
        "restatements",
        "2026-10-01",
        FACTS,
        lambda rows: change(where(customer_key=ANN, month=OCTOBER), usage_units=99)(
            copy(where(customer_key=ANN, month=OCTOBER))(rows)
        ),
        frozenset({GRAIN}),
    ),
}


def rewrite(lakehouse: LakehouseResource, table: str, edit: Edit) -> None:
    current = lakehouse.scan(table)
    rows = edit(current.to_pylist())
    lakehouse.replace_where(table, pa.Table.from_pylist(rows, schema=current.schema), AlwaysTrue())


def rollback(lakehouse: LakehouseResource, table: str, snapshot_id: int | None) -> None:
    """Put the table back on its snapshot (back to no rows when it had none)."""
    if snapshot_id is None:
        lakehouse.load(table).delete(AlwaysTrue())
    else:
        lakehouse.load(table).manage_snapshots().set_current_snapshot(snapshot_id).commit()


def failing_checks(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_input_fails_the_run_with_the_check_named(base, case: Break):
    lakehouse = base.lakehouse
    model = MODELS[case.asset]
    snapshots = {t: lakehouse.current_snapshot_id(t) for t in (case.table, model.table)}
    rewrite(lakehouse, case.table, case.edit)
    try:
        result = dg.materialize(
            [build_model_asset(model)],
            instance=base.instance,
            resources={"lakehouse": lakehouse},
            partition_key=case.partition,
            run_config=QUIET,
            raise_on_error=False,
        )
    finally:
        for table, snapshot_id in snapshots.items():
            rollback(lakehouse, table, snapshot_id)
    assert not result.success
    assert failing_checks(result) == case.failing


# models whose SQL groups by exactly their grain: no input makes them produce a duplicate
GROUPED_BY_GRAIN = (
    "fct_usage_daily",
    "stg_billing_customers",
    "stg_crm_accounts",
    "int_tenants_resolved",
    "stg_billing_subscriptions",
    "stg_billing_invoices",
    "stg_billing_invoice_line_items",
    "stg_billing_credit_notes",
    "stg_billing_refunds",
    "stg_billing_fx_rates",
    "int_subscription_coverage",
    "int_currency_minor_units",  # constants: no input at all
    "int_customer_months",  # one spine row per month and customer, the top-ranked plan joined
    "int_customer_usage_months",
)


def test_every_model_has_a_case_for_its_grain():
    broken = {c.asset for c in CASES.values() if GRAIN in c.failing}
    assert broken | set(GROUPED_BY_GRAIN) == set(MODELS)
    assert not broken & set(GROUPED_BY_GRAIN)


@pytest.mark.parametrize("name", GROUPED_BY_GRAIN)
def test_a_stored_duplicate_fails_the_grain_check(base, name: str):
    lakehouse, model = base.lakehouse, MODELS[name]
    before = lakehouse.current_snapshot_id(model.table)
    rewrite(lakehouse, model.table, lambda rows: rows + rows[:1])
    try:
        results = {r.check_name: r for r in check_stored_partition(lakehouse, model, None)}
    finally:
        rollback(lakehouse, model.table, before)
    assert not results[GRAIN].passed
    assert results[GRAIN].metadata["violations"].value == 1
    # the daily fact's duplicate also adds units that staging does not hold, the usage months'
    # units that the daily fact does not
    also = {
        "fct_usage_daily": {"usage_units_conserved"},
        "int_customer_usage_months": {"customer_usage_months_conserved"},
    }.get(name, set())
    assert {r.check_name for r in results.values() if not r.passed} == {GRAIN} | also


def test_a_stored_usage_month_that_differs_from_the_daily_fact_fails_its_check(base):
    """The summary sums the daily fact by a group by of its grain, so no input breaks it; a
    stored month that no longer matches the fact (edited, or written by a wrong SQL) fails its
    check when it is re-run on the table (as `c360 close-month` and an unchanged build do)."""
    lakehouse, model = base.lakehouse, MODELS["int_customer_usage_months"]
    before = lakehouse.current_snapshot_id(model.table)
    rewrite(lakehouse, model.table, change(where(customer_key=CARL, month=OCTOBER), usage_units=99))
    try:
        october = (OCTOBER, dt.date(2026, 11, 1))
        results = {r.check_name: r for r in check_stored_partition(lakehouse, model, october)}
    finally:
        rollback(lakehouse, model.table, before)
    failing = {name for name, result in results.items() if not result.passed}
    assert failing == {"customer_usage_months_conserved"}
    assert results["customer_usage_months_conserved"].metadata["violations"].value == 1


def test_c360_run_exits_non_zero_when_rows_conserved_fails(lake, monkeypatch, capsys):
    """An ingestion interrupted between the raw append and the file log, whose landed rows were
    then removed by hand: the retry skips the append (its batch id is in the table's history)
    and logs the file, so rows in (3) != rows landed (0) + quarantined (1). The blocking check
    stops the run before anything is built on the missing rows."""
    lake.drop(
        "usage_events",
        "a.jsonl",
        [event(event_id="e1"), event(event_id="e2"), "{not json"],
    )
    ingest_interrupted_before_the_file_log(lake, USAGE, monkeypatch)
    assert len(lake.rows("raw.usage_events")) == 2
    assert lake.rows("raw.landing_files") == []
    lake.lakehouse.load("raw.usage_events").delete(AlwaysTrue())

    assert main(["run", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED blocking check: raw_usage_events:rows_conserved" in err
    assert "FAILED run: ingest_job" in err
    assert not lake.lakehouse.table_exists("marts.fct_usage_daily")
    (logged,) = lake.rows("raw.landing_files")
    assert (logged["rows_in"], logged["rows_accepted"], logged["rows_quarantined"]) == (3, 2, 1)
    assert lake.rows("raw.usage_events") == []


def test_quarantine_rate_warns_above_five_percent_and_never_blocks(lake):
    """1 bad line in 20 is 5 %: the WARN check passes; 2 in 20 fail it (rows still conserved)."""

    def ingest(name: str, bad: int) -> tuple:
        lines = [event(event_id=f"{name}{i}") for i in range(20 - bad)] + ["{bad"] * bad
        lake.drop("usage_events", f"{name}.jsonl", lines)
        summary = ingest_source(lake.lakehouse, USAGE)
        return ingestion_checks(lake.lakehouse, USAGE, summary)[:2]

    conserved, rate = ingest("a", bad=1)
    assert (conserved.passed, rate.passed, rate.metadata["quarantine_rate"].value) == (
        True,
        True,
        0.05,
    )
    conserved, rate = ingest("b", bad=2)
    assert (conserved.passed, rate.passed, rate.metadata["quarantine_rate"].value) == (
        True,
        False,
        0.1,
    )
    assert rate.severity == dg.AssetCheckSeverity.WARN


def test_a_reconciliation_missing_a_customer_month_fails_its_rows_check(base):
    """Its rows are taken from fct_customer_month, so no input can make them differ: the stored
    October partition without Bob's row must fail the check (1 row missing)."""
    lakehouse, model = base.lakehouse, MODELS["fct_usage_billing_reconciliation"]
    before = lakehouse.current_snapshot_id(model.table)
    rewrite(lakehouse, model.table, drop(where(customer_key=BOB, month=OCTOBER)))
    try:
        window = (OCTOBER, dt.date(2026, 11, 1))
        results = {r.check_name: r for r in check_stored_partition(lakehouse, model, window)}
    finally:
        rollback(lakehouse, model.table, before)
    check = results["reconciliation_rows_match_customer_month"]
    assert not check.passed
    assert check.metadata["violations"].value == 1
    assert {r.check_name for r in results.values() if not r.passed} == {check.check_name}
