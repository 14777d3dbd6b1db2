"""Risk and Sales adoption: usage anomalies (daily) and adoption trends (monthly).

``usage_anomalies`` flags usage days that spike against the key's own trailing baseline and usage
no subscription covers. Its inputs change in two ways that re-derive past days:
- a late event on day D: D is rebuilt by the daily job, and D+1..D+28, whose baselines include
  D, are rewritten too, for exactly the series (customer_key, tenant_id, product) whose daily
  units changed (``series``; see ``c360_assets/incremental.py``): a late batch touching 60K of
  300K series re-judges those only;
- a subscription change (a late cancellation, a corrected end date): ``int_subscription_coverage``
  reports the usage days whose coverage changed as ``touched_dates``, so the daily job rebuilds
  exactly those days.
Dagster's partition status shows only the partitions a run targeted; the 28 days rewritten
ahead are current in Iceberg even where the UI shows an older materialization.

``fct_customer_adoption_monthly`` compares each customer's month with the month before; a
rebuilt month also rewrites the month after it (whose "previous month" it is).
"""

import dagster as dg

from c360_assets.defs.customers.assets import USAGE_DAILY_SCHEMA
from c360_assets.lib.models import ChangeReport, Model
from c360_assets.lib.sqlmodel import Read, SqlSession, sql_text
from resources.lakehouse import LakehouseResource

DOMAIN = "risk"  # its SQL: sql/risk/

COVERAGE = "core.int_subscription_coverage"
TENANTS = "core.int_tenants_resolved"
USAGE_DAILY = "marts.fct_usage_daily"
BASELINE_DAYS = 28  # = settings.baseline_days in sql/marts/usage_anomalies.sql


def _coverage_changed_days(
    lakehouse: LakehouseResource, session: SqlSession, before: int | None
) -> dict:
    """Usage days whose subscription coverage differs from the previous build's."""
    days = []
    if before is not None and lakehouse.table_exists(USAGE_DAILY):
        session.register("previous_coverage", lakehouse.scan(COVERAGE, snapshot_id=before))
        session.register(
            "usage_tenants",
            lakehouse.scan(USAGE_DAILY, columns=("usage_date", "tenant_id")),
        )
        session.register(
            "tenants",
            lakehouse.scan(TENANTS, columns=("tenant_id", "billing_customer_id")),
        )
        sql = sql_text(f"{DOMAIN}/coverage_changed_days")
        days = [r["usage_date"] for r in session.query(sql).to_pylist()]
    return {"touched_dates": dg.MetadataValue.json([d.isoformat() for d in days])}


MODELS = (
    Model(
        name="int_subscription_coverage",
        layer="core",
        domain=DOMAIN,
        reads={"int_subscription_versions": Read("core.int_subscription_versions")},
        grain=("subscription_id",),
        after_write=ChangeReport(_coverage_changed_days, frozenset({"touched_dates"})),
    ),
    Model(
        name="usage_anomalies",
        layer="marts",
        domain=DOMAIN,
        reads={
            "fct_usage_daily": Read(USAGE_DAILY, "usage_date", lookback_days=BASELINE_DAYS),
            "int_tenants_resolved": Read(TENANTS),
            "int_subscription_coverage": Read(COVERAGE),
        },
        grain=("usage_date", "customer_key", "tenant_id", "product"),
        partitioning="daily",
        partition_column="usage_date",
        rebuild_ahead=BASELINE_DAYS,
        series=("customer_key", "tenant_id", "product"),
    ),
    Model(
        name="fct_customer_adoption_monthly",
        layer="marts",
        domain=DOMAIN,
        reads={  # the month and the month before (31 days back reach its first day)
            "fct_customer_month": Read("marts.fct_customer_month", "month", lookback_days=31),
            # absent until the first usage lands (billing alone builds the months)
            "fct_usage_daily": Read(
                USAGE_DAILY, "usage_date", lookback_days=31, missing_as=USAGE_DAILY_SCHEMA
            ),
        },
        grain=("month", "customer_key"),
        partitioning="monthly",
        partition_column="month",
        rebuild_ahead=1,  # the month after compares against this one
    ),
)
