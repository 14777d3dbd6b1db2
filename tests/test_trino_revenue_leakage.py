"""bi.revenue_leakage on the real serving stack (PostgreSQL Iceberg catalog + Trino 476): the open
gaps of marts.fct_usage_billing_reconciliation by month, segment and owner, money in the
customer's currency next to USD at the month-end rate, read as the `bi` user (masked e-mail).

The world (every customer on a plan since 2026-09-01; September's usage billed on invoices issued
2026-10-01 02:00, the only billing run, so September is judged and October pending):
- Acme Payments (CRM acc_1, SMB, NA, owner Ann Lee) = cus_1, USD, 100 units included, 7 per
  unit beyond: 120 used in September, no usage line -> unbilled: 20 x 7 = 140 (1.40 USD).
  10 more units in October: pending, not a gap yet.
- Borealis Bank (acc_2, Mid-Market, EMEA, owner Bob Stone until 10-10, then Cara Diaz) = cus_2,
  EUR, 100 included, 8 cents beyond: 125 used, 20 billed at 8 -> underbilled by 5 units, 40
  cents; at September's last-day rate (1.0850 USD per EUR) -0.434 -> -0.43 USD.
- Cobalt Capital (acc_3, Enterprise, NA, owner Ann Lee) = cus_3, USD: 150 used, 50 x 7 billed:
  ok, not a gap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from c360_assets.defs.serving.assets import MART_KEY_SUMS, compare_with_trino, create_bi_views
from resources.trino import TrinoResource
from tests.lake import Lake
from tests.records import (
    billing_customer,
    crm_account,
    event,
    fx_rate,
    invoice,
    line_item,
    subscription,
)
from tests.stack_fixture import StackHandle
from tests.test_trino_serving import ServedLake, rows_as_dicts, served_lake

SEPTEMBER = dt.date(2026, 9, 1)
ACME, BOREALIS = (hashlib.md5(f"crm:{a}".encode()).hexdigest()[:16] for a in ("acc_1", "acc_2"))
ACCOUNTS = {
    # crm account: (name, segment, region, owner, billing customer, currency)
    "acc_1": ("Acme Payments", "SMB", "NA", "Ann Lee", "cus_1", "USD"),
    "acc_2": ("Borealis Bank", "Mid-Market", "EMEA", "Bob Stone", "cus_2", "EUR"),
    "acc_3": ("Cobalt Capital", "Enterprise", "NA", "Ann Lee", "cus_3", "USD"),
}


def drop_world(lake: Lake) -> None:
    accounts = [
        crm_account(
            crm_account_id=account,
            account_name=name,
            owner_name=owner,
            segment=segment,
            region=region,
            billing_customer_id=customer,
            updated_at="2026-09-01T00:00:00Z",
            snapshot_at="2026-09-02T00:00:00Z",
        )
        for account, (name, segment, region, owner, customer, _) in ACCOUNTS.items()
    ]
    lake.drop("crm/accounts", "2026-09-02.jsonl", accounts)
    # Borealis changes owner on 10-10: September (as of its last instant) keeps Bob Stone
    lake.drop(
        "crm/accounts",
        "2026-10-11.jsonl",
        [
            crm_account(
                crm_account_id="acc_2",
                account_name="Borealis Bank",
                owner_name="Cara Diaz",
                segment="Mid-Market",
                region="EMEA",
                billing_customer_id="cus_2",
                updated_at="2026-10-10T00:00:00Z",
                snapshot_at="2026-10-11T00:00:00Z",
            )
        ],
    )
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id=customer,
                tenant_id=f"t{customer[-1]}",
                crm_account_id=account,
                currency=currency,
            )
            for account, (*_, customer, currency) in ACCOUNTS.items()
        ],
    )
    lake.drop(
        "billing/subscriptions",
        "subscriptions.jsonl",
        [
            subscription(
                subscription_id=f"sub_{customer[-1]}",
                billing_customer_id=customer,
                plan_code="growth_eur" if currency == "EUR" else "growth",
                included_units=100,
                overage_unit_price_minor=8 if currency == "EUR" else 7,
            )
            for *_, customer, currency in ACCOUNTS.values()
        ],
    )
    lake.drop(
        "usage_events",
        "usage.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-09-10T10:00:00Z", quantity=120),
            event(event_id="e2", tenant_id="t2", occurred_at="2026-09-11T10:00:00Z", quantity=125),
            event(event_id="e3", tenant_id="t3", occurred_at="2026-09-12T10:00:00Z", quantity=150),
            event(event_id="e4", tenant_id="t1", occurred_at="2026-10-02T10:00:00Z", quantity=10),
        ],
    )
    issued = {"issued_at": "2026-10-01T02:00:00Z", "tax_minor": 0}
    lake.drop(
        "billing/invoices",
        "invoices.jsonl",
        [
            invoice(invoice_id="inv_1", billing_customer_id="cus_1", subtotal_minor=1000, **issued),
            invoice(
                invoice_id="inv_2",
                billing_customer_id="cus_2",
                currency="EUR",
                subtotal_minor=160,
                **issued,
            ),
            invoice(invoice_id="inv_3", billing_customer_id="cus_3", subtotal_minor=350, **issued),
        ],
    )
    september = {
        "kind": "usage",
        "product": "fraud_score",
        "service_period_start": "2026-09-01T00:00:00Z",
        "service_period_end": "2026-10-01T00:00:00Z",
    }
    lake.drop(
        "billing/invoice_line_items",
        "lines.jsonl",
        [
            line_item(line_item_id="li_1", invoice_id="inv_1", amount_minor=1000),
            line_item(
                line_item_id="li_2", invoice_id="inv_2", quantity=20, amount_minor=160, **september
            ),
            line_item(
                line_item_id="li_3", invoice_id="inv_3", quantity=50, amount_minor=350, **september
            ),
        ],
    )
    lake.drop(
        "billing/fx_rates",
        "rates.csv",
        [
            fx_rate(rate_date="2026-09-30", currency="EUR", usd_per_unit="1.0850"),
            fx_rate(rate_date="2026-10-01", currency="EUR", usd_per_unit="1.0900"),  # inv_2
        ],
    )


@dataclass
class Leakage:
    lake: ServedLake
    stack: StackHandle

    @property
    def bi(self) -> TrinoResource:
        return self.stack.trino("bi")


@pytest.fixture(scope="module")
def leakage(trino_stack: StackHandle, tmp_path_factory) -> Iterator[Leakage]:
    with served_lake(trino_stack, tmp_path_factory.mktemp("leakage")) as lake:
        drop_world(lake)
        lake.run()  # with Trino in the definitions: the parity checks run too
        create_bi_views(trino_stack.trino())
        yield Leakage(lake, trino_stack)


VIEW_COLUMNS = (
    "account_name",
    "segment",
    "region",
    "owner_name",
    "owner_email",
    "currency",
    "metered_units",
    "expected_overage_units",
    "billed_units",
    "unit_gap",
    "expected_overage_minor",
    "billed_overage_minor",
    "amount_gap_minor",
    "month_end_usd_per_unit",
    "expected_overage_usd",
    "billed_overage_usd",
    "amount_gap_usd",
    "money_at_stake_usd",
)


def test_revenue_leakage_lists_the_open_gaps_with_usd_at_the_month_end_rate(leakage: Leakage):
    rows = rows_as_dicts(leakage.bi, "select * from iceberg.bi.revenue_leakage order by status")
    got = {(r["month"], r["status"]): tuple(r[c] for c in VIEW_COLUMNS) for r in rows}
    usd = Decimal
    assert got == {
        # 120 used, 100 included: 20 x 7 = 140 cents expected, nothing billed; USD at 1
        (SEPTEMBER, "unbilled"): (
            "Acme Payments", "SMB", "NA", "Ann Lee", "***@example.com", "USD",
            120, 20, 0, -20, 140, 0, -140,
            usd("1"), usd("1.40"), usd("0.00"), usd("-1.40"), usd("1.40"),
        ),
        # 125 used: 25 x 8 = 200 EUR cents expected, 20 x 8 = 160 billed; at 1.0850 USD per
        # EUR (09-30): 2.00 -> 2.17, 1.60 -> 1.736 -> 1.74, -0.40 -> -0.434 -> -0.43. The owner
        # as of September's end (Bob Stone), not today's (Cara Diaz).
        (SEPTEMBER, "underbilled"): (
            "Borealis Bank", "Mid-Market", "EMEA", "Bob Stone", "***@example.com", "EUR",
            125, 25, 20, -5, 200, 160, -40,
            usd("1.085"), usd("2.17"), usd("1.74"), usd("-0.43"), usd("0.43"),
        ),
    }  # fmt: skip
    # the admin sees the e-mail of the owner at the month's end
    emails = leakage.stack.trino().query(
        "select customer_key, owner_email from iceberg.bi.revenue_leakage"
    )
    assert dict(emails) == {ACME: "ann.lee@example.com", BOREALIS: "bob.stone@example.com"}
    # by segment and owner, the money at stake: 1.40 + 0.43 USD
    by_owner = leakage.bi.query(
        "select segment, owner_name, count(*), sum(money_at_stake_usd) "
        "from iceberg.bi.revenue_leakage group by segment, owner_name"
    )
    assert set(by_owner) == {
        ("SMB", "Ann Lee", 1, usd("1.40")),
        ("Mid-Market", "Bob Stone", 1, usd("0.43")),
    }


def test_the_mart_behind_the_view(leakage: Leakage):
    statuses = leakage.bi.query(
        "select month, customer_key, status from iceberg.marts.fct_usage_billing_reconciliation"
    )
    # Cobalt's September is ok; October is pending for everyone (no billing run since 10-01)
    assert sorted((m.isoformat(), s) for m, _, s in statuses) == sorted(
        [("2026-09-01", s) for s in ("unbilled", "underbilled", "ok")]
        + [("2026-10-01", "pending")] * 3
    )
    key_sums = next(k for k in MART_KEY_SUMS if k.table == "marts.fct_usage_billing_reconciliation")
    comparison = compare_with_trino(leakage.lake.lakehouse, leakage.stack.trino(), key_sums)
    assert comparison.ok, comparison.differences
    # metered 120 + 125 + 150 + 10; billed 20 + 50; gaps -140 - 40 + 0 (+ October's 0s)
    assert (
        comparison.trino["sum_metered_units"],
        comparison.trino["sum_billed_units"],
        comparison.trino["sum_amount_gap_minor"],
    ) == (405, 70, -180)


def test_the_serving_docs_example_gives_the_hand_worked_totals(leakage: Leakage):
    text = (Path(__file__).resolve().parent.parent / "docs" / "serving.md").read_text()
    (query,) = [
        q for q in re.findall(r"```sql\n(.*?)```", text, re.DOTALL) if "revenue_leakage" in q
    ]
    # 2 open gaps: Acme unbilled, Borealis underbilled; 1.40 + 0.43 USD at stake
    assert leakage.bi.query(query.strip()) == [(2, 1, 1, 0, 0, Decimal("1.83"))]
