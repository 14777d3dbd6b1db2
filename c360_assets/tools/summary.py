"""The short summary printed after a run: what landed, what was quarantined, what the marts hold,
and the revenue leakage the usage-billing reconciliation found."""

from c360_assets.lib.sqlmodel import run_sql, sql_text
from resources.lakehouse import LakehouseResource

SUMMARY_TABLES = (
    "raw.usage_events",
    "raw.quarantine",
    "marts.fct_usage_daily",
    "marts.dim_customer",
    "marts.fct_invoice_reconciliation",
    "marts.fct_customer_month",
    "marts.fct_usage_billing_reconciliation",
    "marts.usage_anomalies",
    "marts.restatements",
)
RECONCILIATION = "marts.fct_usage_billing_reconciliation"


def table_counts(lakehouse: LakehouseResource) -> dict[str, int]:
    counts = {}
    for identifier in SUMMARY_TABLES:
        if lakehouse.table_exists(identifier):
            counts[identifier] = lakehouse.load(identifier).scan().count()
    return counts


def leakage_by_status(lakehouse: LakehouseResource) -> list[dict]:
    """Per status of the reconciliation: customer-months, units, gaps and money at stake."""
    if not lakehouse.table_exists(RECONCILIATION):
        return []
    columns = ("month", "customer_key", "status", "metered_units", "unit_gap", "amount_gap_minor")
    table = lakehouse.scan(RECONCILIATION, columns=(*columns, "amount_gap_usd"))
    sql = sql_text("billing/revenue_leakage_by_status")
    return run_sql(sql, {"fct_usage_billing_reconciliation": table}).to_pylist()


def format_leakage(rows: list[dict]) -> list[str]:
    lines = [
        f"  {'status':<16} {'customer-months':>15} {'months':>17} {'units used':>12} "
        f"{'unit gap':>10} {'money at stake (USD)':>21}"
    ]
    for r in rows:
        months = f"{r['first_month']:%Y-%m}..{r['last_month']:%Y-%m}"
        gap = "" if r["unit_gap"] is None else f"{r['unit_gap']:,}"
        stake = "" if r["money_at_stake_usd"] is None else f"{r['money_at_stake_usd']:,.2f}"
        missing = f" ({r['usd_missing']} without a month-end rate)" if r["usd_missing"] else ""
        lines.append(
            f"  {r['status']:<16} {r['customer_months']:>15,} {months:>17} "
            f"{r['metered_units']:>12,} {gap:>10} {stake:>21}{missing}"
        )
    return lines


def print_summary(lakehouse: LakehouseResource | None = None) -> None:
    lakehouse = lakehouse or LakehouseResource.from_env()
    print("\nc360 tables (rows):")
    for identifier, rows in table_counts(lakehouse).items():
        print(f"  {identifier:<40} {rows:>12,}")
    leakage = leakage_by_status(lakehouse)
    if leakage:
        print("\nRevenue assurance: metered usage against what was billed (by status):")
        print("\n".join(format_leakage(leakage)))
        print(
            "  (pending: the month's billing run has not happened yet; the open gaps are in "
            "bi.revenue_leakage)"
        )
