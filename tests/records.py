"""Landing records for the tests: one builder per landing source
(c360_assets/defs/ingest/sources.py).

Each builder takes its source's columns as keyword arguments and returns the record as it lands,
a dict with the columns in the source's order (a JSON line or a CSV row for `Lake.drop`). The
defaults describe one plausible customer: CRM account acc_1 (Acme, owner Ann, SMB, NA) = billing
customer cus_1 = tenant t1, on the growth plan since 2026-09-01, invoiced for September on
2026-10-01. A default of `DERIVED` is computed from the other arguments, as each docstring says.
Tests pass every value their hand-worked expectations depend on.
"""

from typing import Any


class _Derived:
    def __repr__(self) -> str:
        return "DERIVED"


DERIVED: Any = _Derived()


def _given(value: Any, derived: Any) -> Any:
    return derived if value is DERIVED else value


def event(
    *,
    event_id: str = "e1",
    tenant_id: str = "t1",
    product: str = "fraud_score",
    quantity: Any = 1,
    occurred_at: str = "2026-10-01T10:00:00Z",
) -> dict:
    """usage_events: one product call by a tenant (quantity may be any JSON value, to test)."""
    return {
        "event_id": event_id,
        "tenant_id": tenant_id,
        "product": product,
        "quantity": quantity,
        "occurred_at": occurred_at,
    }


def billing_customer(
    *,
    billing_customer_id: str = "cus_1",
    tenant_id: str | None = "t1",
    crm_account_id: str | None = None,
    currency: str = "USD",
    created_at: str = "2026-09-01T00:00:00Z",
    updated_at: str = DERIVED,
) -> dict:
    """billing/customers: a billing customer; updated_at defaults to created_at."""
    return {
        "billing_customer_id": billing_customer_id,
        "tenant_id": tenant_id,
        "crm_account_id": crm_account_id,
        "currency": currency,
        "created_at": created_at,
        "updated_at": _given(updated_at, created_at),
    }


def subscription(
    *,
    subscription_id: str = "sub_1",
    billing_customer_id: str = "cus_1",
    plan_code: str = "growth",
    status: str = "active",
    monthly_fee_minor: int = 10000,
    included_units: int = 1000,
    overage_unit_price_minor: int = 5,
    started_at: str = "2026-09-01T00:00:00Z",
    ended_at: str | None = None,
    updated_at: str = DERIVED,
) -> dict:
    """billing/subscriptions: a subscription version; updated_at defaults to started_at."""
    return {
        "subscription_id": subscription_id,
        "billing_customer_id": billing_customer_id,
        "plan_code": plan_code,
        "status": status,
        "monthly_fee_minor": monthly_fee_minor,
        "included_units": included_units,
        "overage_unit_price_minor": overage_unit_price_minor,
        "started_at": started_at,
        "ended_at": ended_at,
        "updated_at": _given(updated_at, started_at),
    }


def invoice(
    *,
    invoice_id: str = "inv_1",
    billing_customer_id: str = "cus_1",
    status: str = "open",
    currency: str = "USD",
    period_start: str = "2026-09-01T00:00:00Z",
    period_end: str = "2026-10-01T00:00:00Z",
    issued_at: str | None = "2026-10-01T00:00:00Z",
    subtotal_minor: int = 10000,
    tax_minor: int = 0,
    total_minor: int = DERIVED,
    updated_at: str = DERIVED,
) -> dict:
    """billing/invoices: an invoice header; total = subtotal + tax, updated_at = issued_at."""
    return {
        "invoice_id": invoice_id,
        "billing_customer_id": billing_customer_id,
        "status": status,
        "currency": currency,
        "period_start": period_start,
        "period_end": period_end,
        "issued_at": issued_at,
        "subtotal_minor": subtotal_minor,
        "tax_minor": tax_minor,
        "total_minor": _given(total_minor, subtotal_minor + tax_minor),
        "updated_at": _given(updated_at, issued_at if issued_at is not None else period_end),
    }


def line_item(
    *,
    line_item_id: str = "li_1",
    invoice_id: str = "inv_1",
    kind: str = "subscription",
    product: str | None = None,
    quantity: int | None = 1,
    unit_amount_minor: int | None = DERIVED,
    amount_minor: int = 10000,
    service_period_start: str | None = "2026-09-01T00:00:00Z",
    service_period_end: str | None = "2026-10-01T00:00:00Z",
) -> dict:
    """billing/invoice_line_items: an invoice line; unit amount = amount // quantity."""
    return {
        "line_item_id": line_item_id,
        "invoice_id": invoice_id,
        "kind": kind,
        "product": product,
        "quantity": quantity,
        "unit_amount_minor": _given(
            unit_amount_minor, amount_minor // quantity if quantity else None
        ),
        "amount_minor": amount_minor,
        "service_period_start": service_period_start,
        "service_period_end": service_period_end,
    }


def credit_note(
    *,
    credit_note_id: str = "cn_1",
    invoice_id: str = "inv_1",
    amount_minor: int = 2000,
    currency: str = "USD",
    reason: str | None = "goodwill",
    issued_at: str = "2026-10-15T00:00:00Z",
) -> dict:
    """billing/credit_notes: a credit note against an invoice, in the invoice's currency."""
    return {
        "credit_note_id": credit_note_id,
        "invoice_id": invoice_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "reason": reason,
        "issued_at": issued_at,
    }


def refund(
    *,
    refund_id: str = "rf_1",
    invoice_id: str = "inv_1",
    amount_minor: int = 1000,
    currency: str = "USD",
    refunded_at: str = "2026-10-20T00:00:00Z",
) -> dict:
    """billing/refunds: a refund of (part of) an invoice, in the invoice's currency."""
    return {
        "refund_id": refund_id,
        "invoice_id": invoice_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "refunded_at": refunded_at,
    }


def fx_rate(
    *,
    rate_date: str = "2026-10-01",
    currency: str = "EUR",
    usd_per_unit: str = "1.10",
) -> dict:
    """billing/fx_rates: USD per unit of a currency on a day (the decimal as text, as landed)."""
    return {"rate_date": rate_date, "currency": currency, "usd_per_unit": usd_per_unit}


def crm_account(
    *,
    crm_account_id: str = "acc_1",
    account_name: str | None = "Acme",
    owner_name: str = "Ann",
    owner_email: str | None = DERIVED,
    segment: str | None = "SMB",
    region: str | None = "NA",
    billing_customer_id: str | None = "cus_1",
    is_deleted: bool = False,
    updated_at: str = "2026-09-01T00:00:00Z",
    snapshot_at: str = DERIVED,
) -> dict:
    """crm/accounts: an account in a snapshot; e-mail from owner_name, snapshot_at = updated_at."""
    email = owner_name.lower().replace(" ", ".") + "@example.com"
    return {
        "crm_account_id": crm_account_id,
        "account_name": account_name,
        "owner_name": owner_name,
        "owner_email": _given(owner_email, email),
        "segment": segment,
        "region": region,
        "billing_customer_id": billing_customer_id,
        "is_deleted": is_deleted,
        "updated_at": updated_at,
        "snapshot_at": _given(snapshot_at, updated_at),
    }


# the builder of each landing source, by source name
BUILDERS = {
    "usage_events": event,
    "billing_customers": billing_customer,
    "billing_subscriptions": subscription,
    "billing_invoices": invoice,
    "billing_invoice_line_items": line_item,
    "billing_credit_notes": credit_note,
    "billing_refunds": refund,
    "billing_fx_rates": fx_rate,
    "crm_accounts": crm_account,
}
