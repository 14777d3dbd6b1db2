"""The short summary printed after a run: what landed, what was quarantined, what the marts hold."""

from resources.lakehouse import LakehouseResource

SUMMARY_TABLES = (
    "raw.usage_events",
    "raw.quarantine",
    "staging.stg_usage_events",
    "marts.fct_usage_daily",
    "marts.dim_customer",
    "marts.fct_invoice_reconciliation",
    "marts.fct_customer_month",
    "marts.usage_anomalies",
    "marts.restatements",
)


def table_counts(lakehouse: LakehouseResource) -> dict[str, int]:
    counts = {}
    for identifier in SUMMARY_TABLES:
        if lakehouse.table_exists(identifier):
            counts[identifier] = lakehouse.load(identifier).scan().count()
    return counts


def print_summary(lakehouse: LakehouseResource | None = None) -> None:
    lakehouse = lakehouse or LakehouseResource.from_env()
    print("\nc360 tables (rows):")
    for identifier, rows in table_counts(lakehouse).items():
        print(f"  {identifier:<36} {rows:>12,}")
