"""Billing domain: latest-version staging of each billing export, subscription history, the
dated and converted billing documents, and the invoice reconciliation.

Staging is one model per export, no joins, deduplicated by natural key in a total order
(updated_at where the export has one, then ingested_at, source file, source line).
``int_subscription_versions`` and ``int_billing_documents_resolved`` feed the monthly customer
fact; a build that changes any of their rows reports the earliest month a changed row touches
(old and new dates), so a plan change, a re-dated or voided invoice, a remapped customer or a
corrected FX rate rebuilds the months from there on (``plan.month_span``).
"""

from c360_assets.lib.models import Model, SqlCheck, earliest_changed_month
from c360_assets.lib.sqlmodel import Read

DOMAIN = "billing"  # its SQL: sql/billing/

SUBSCRIPTION_VERSIONS = "core.int_subscription_versions"
DOCUMENTS = "core.int_billing_documents_resolved"
IDENTITY = "core.int_billing_customers_resolved"


def warn(name: str, description: str) -> SqlCheck:
    """A non-blocking check: its violations are reported, the pipeline goes on."""
    return SqlCheck(name, description, blocking=False, severity="WARN")


CUSTOMER_KEYS_RESOLVE = SqlCheck(
    "customer_keys_resolve", "every customer_key resolves to marts.dim_customer", domain=DOMAIN
)


def _staging(name: str, grain: tuple[str, ...]) -> Model:
    """``stg_billing_<name>`` from ``raw.billing_<name>``."""
    return Model(
        name=f"stg_billing_{name}",
        layer="staging",
        domain=DOMAIN,
        reads={f"raw_billing_{name}": Read(f"raw.billing_{name}")},
        grain=grain,
    )


def _stg(name: str) -> Read:
    return Read(f"staging.stg_billing_{name}")


MODELS = (
    _staging("subscriptions", ("subscription_id", "updated_at")),
    _staging("invoices", ("invoice_id",)),
    _staging("invoice_line_items", ("line_item_id",)),
    _staging("credit_notes", ("credit_note_id",)),
    _staging("refunds", ("refund_id",)),
    _staging("fx_rates", ("rate_date", "currency")),
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
        },
        grain=("document_type", "document_id"),
        checks=(
            SqlCheck(
                "billing_documents_conserved",
                "documents, minor units and billed units per type, month and currency equal "
                "the deduplicated staging exports",
            ),
        ),
        after_write=earliest_changed_month(DOCUMENTS, ("report_month",)),
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
)
