"""Billing domain: latest-version staging of each billing export, subscription history, the
dated and converted billing documents, the invoice reconciliation and revenue assurance (usage
against billing).

Staging is one model per export, no joins, deduplicated by natural key in a total order
(updated_at where the export has one, then ingested_at, source file, source line).
``int_subscription_versions`` and ``int_billing_documents_resolved`` feed the monthly customer
fact; a build that changes any of their rows reports the earliest month a changed row touches
(old and new dates), so a plan change, a re-dated or voided invoice, a remapped customer or a
corrected FX rate rebuilds the months from there on (``plan.month_span``). When the latest
billing run (the latest issued invoice) moves into another month, the documents' report also
names the month it judges: the first invoice issued in December turns November's
``fct_usage_billing_reconciliation`` from ``pending`` into judged.

``fct_usage_billing_reconciliation`` lives here because what it judges is billing (usage line
items, invoices, plan prices, FX); it takes its rows and metered units from
``marts.fct_customer_month`` and is partitioned like it, so the same planner rebuilds the same
months of both.
"""

import dagster as dg

from c360_assets.lib.models import ChangeReport, Model, SqlCheck, earliest_changed_month
from c360_assets.lib.sqlmodel import Read, SqlSession, sql_text
from resources.lakehouse import LakehouseResource

DOMAIN = "billing"  # its SQL: sql/billing/

SUBSCRIPTION_VERSIONS = "core.int_subscription_versions"
DOCUMENTS = "core.int_billing_documents_resolved"
IDENTITY = "core.int_billing_customers_resolved"
MINOR_UNITS = "core.int_currency_minor_units"
CUSTOMER_MONTHS = "core.int_customer_months"  # rows and month-end plans (customers domain)
CUSTOMER_MONTH = "marts.fct_customer_month"


def warn(name: str, description: str) -> SqlCheck:
    """A non-blocking check: its violations are reported, the pipeline goes on."""
    return SqlCheck(name, description, blocking=False, severity="WARN")


_documents_earliest_change = earliest_changed_month(DOCUMENTS, ("report_month",))


def _documents_changed(
    lakehouse: LakehouseResource, session: SqlSession, before: int | None
) -> dict:
    """The earliest month a changed document touches, and the month whose billing a move of the
    latest billing run judges (``billing_run_judged_months``): an invoice issued in December
    turns November from ``pending`` into judged, though no November document changed."""
    report = dict(_documents_earliest_change(lakehouse, session, before))
    if before is None:  # the first build reports nothing (the ingestion touched its months)
        return report
    months = set(report["touched_months"].data)
    judged = session.query(sql_text(f"{DOMAIN}/billing_run_judged_months")).to_pylist()
    months |= {row["month"].isoformat() for row in judged if row["month"]}
    report["touched_months"] = dg.MetadataValue.json(sorted(months))
    return report


documents_changed = ChangeReport(_documents_changed, frozenset({"touched_months"}))

CUSTOMER_KEYS_RESOLVE = SqlCheck(
    "customer_keys_resolve", "every customer_key resolves to marts.dim_customer", domain=DOMAIN
)


def _staging(name: str, grain: tuple[str, ...], after_write: ChangeReport | None = None) -> Model:
    """``stg_billing_<name>`` from ``raw.billing_<name>``."""
    return Model(
        name=f"stg_billing_{name}",
        layer="staging",
        domain=DOMAIN,
        reads={f"raw_billing_{name}": Read(f"raw.billing_{name}")},
        grain=grain,
        after_write=after_write,
    )


def _stg(name: str) -> Read:
    return Read(f"staging.stg_billing_{name}")


MODELS = (
    Model(
        name="int_currency_minor_units",
        layer="core",
        domain=DOMAIN,
        reads={},
        grain=("currency",),
        # constants: a change (of the code) re-judges every month of the reconciliation
        after_write=earliest_changed_month(MINOR_UNITS, ()),
    ),
    _staging("subscriptions", ("subscription_id", "updated_at")),
    _staging("invoices", ("invoice_id",)),
    _staging("invoice_line_items", ("line_item_id",)),
    _staging("credit_notes", ("credit_note_id",)),
    _staging("refunds", ("refund_id",)),
    # the reconciliation converts a month's gaps at its last day's rate: a changed rate
    # rebuilds the months from its date on
    _staging(
        "fx_rates",
        ("rate_date", "currency"),
        earliest_changed_month("staging.stg_billing_fx_rates", ("rate_date",)),
    ),
    Model(
        name="int_subscription_versions",
        layer="core",
        domain=DOMAIN,
        reads={
            "stg_billing_subscriptions": _stg("subscriptions"),
            "int_billing_customers_resolved": Read(IDENTITY),
        },
        grain=("subscription_id", "valid_from"),
        after_write=earliest_changed_month(
            SUBSCRIPTION_VERSIONS, ("started_at", "ended_at", "valid_from")
        ),
    ),
    Model(
        name="int_billing_documents_resolved",
        layer="core",
        domain=DOMAIN,
        reads={
            "stg_billing_invoices": _stg("invoices"),
            "stg_billing_invoice_line_items": _stg("invoice_line_items"),
            "stg_billing_credit_notes": _stg("credit_notes"),
            "stg_billing_refunds": _stg("refunds"),
            "stg_billing_fx_rates": _stg("fx_rates"),
            "int_billing_customers_resolved": Read(IDENTITY),
            "int_currency_minor_units": Read(MINOR_UNITS),
        },
        grain=("document_type", "document_id"),
        checks=(
            SqlCheck(
                "billing_documents_conserved",
                "documents, minor units and billed units per type, month and currency equal "
                "the deduplicated staging exports",
            ),
        ),
        after_write=documents_changed,
    ),
    Model(
        name="fct_invoice_reconciliation",
        layer="marts",
        domain=DOMAIN,
        reads={
            "stg_billing_invoices": _stg("invoices"),
            "stg_billing_invoice_line_items": _stg("invoice_line_items"),
            "stg_billing_credit_notes": _stg("credit_notes"),
            "stg_billing_refunds": _stg("refunds"),
            "int_billing_customers_resolved": Read(IDENTITY),
            "dim_customer": Read("marts.dim_customer"),  # for customer_keys_resolve
        },
        grain=("invoice_id",),
        checks=(
            CUSTOMER_KEYS_RESOLVE,
            warn(
                "no_orphan_lines",
                "invoice ids referenced by lines, credits or refunds but never exported",
            ),
            warn(
                "invoices_reconcile",
                "header = subtotal + tax, lines = subtotal, credits + refunds <= total",
            ),
        ),
    ),
    Model(
        name="fct_usage_billing_reconciliation",
        layer="marts",
        domain=DOMAIN,
        reads={
            "fct_customer_month": Read(CUSTOMER_MONTH, "month"),
            "int_customer_months": Read(CUSTOMER_MONTHS, "month"),
            "int_billing_documents_resolved": Read(DOCUMENTS),
            "int_billing_customers_resolved": Read(IDENTITY),
            "stg_billing_fx_rates": _stg("fx_rates"),
            "int_currency_minor_units": Read(MINOR_UNITS),
        },
        grain=("month", "customer_key"),
        partitioning="monthly",
        partition_column="month",
        checks=(
            SqlCheck(
                "reconciliation_rows_match_customer_month",
                "exactly the (month, customer_key) rows of marts.fct_customer_month",
            ),
            SqlCheck(
                "revenue_leakage",
                "usage billed as the plan says: customer-months no_subscription, unbilled, "
                "underbilled or overbilled (largest gaps first); the summary counts customers "
                "and money per month, currency and status",
                blocking=False,
                severity="WARN",
                summary="revenue_leakage_summary",
            ),
            warn(
                "reconciliation_currencies_agree",
                "billed usage lines in the currency of the customer's plan",
            ),
        ),
    ),
)
