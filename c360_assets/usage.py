"""Usage domain: deduplicated events per UTC day and the daily usage fact.

Identity (tenant -> customer) lives here too because the daily fact needs it; when the mapping
changes, the days holding the re-mapped tenants' usage are reported as touched, so exactly
those days of ``fct_usage_daily`` are rebuilt.
"""

import datetime as dt

import dagster as dg
import pyarrow as pa

from c360_assets.models import Model, SqlCheck
from c360_assets.sqlmodel import Read, SqlSession
from resources.lakehouse import LakehouseResource

STG_USAGE = "staging.stg_usage_events"
TENANTS = "core.int_tenants_resolved"


def _remapped_days(
    lakehouse: LakehouseResource, session: SqlSession, result: pa.Table, before: int | None
) -> dict:
    """Days of usage whose tenant now maps to a different customer than before this build."""
    if before is None or not lakehouse.table_exists(STG_USAGE):
        changed: list[str] | None = None  # first build: every day is new anyway
    else:
        previous = lakehouse.scan(TENANTS, snapshot_id=before)
        session.register("previous_map", previous)
        changed = [
            r["tenant_id"]
            for r in session.query(
                """
                select coalesce(now_map.tenant_id, before.tenant_id) as tenant_id
                from model_output as now_map
                full outer join previous_map as before on now_map.tenant_id = before.tenant_id
                where now_map.customer_key is distinct from before.customer_key
                """
            ).to_pylist()
        ]
    days: list[dt.date] = []
    if changed:
        session.register(
            "usage_tenants",
            lakehouse.scan(STG_USAGE, columns=("event_date", "tenant_id")),
        )
        session.register("changed", pa.table({"tenant_id": pa.array(changed, pa.string())}))
        days = [
            r["event_date"]
            for r in session.query(
                "select distinct event_date from usage_tenants "
                "where tenant_id in (select tenant_id from changed) order by 1"
            ).to_pylist()
        ]
    return {
        "remapped_tenants": len(changed or []),
        "touched_dates": dg.MetadataValue.json([d.isoformat() for d in days]),
    }


MODELS = (
    Model(
        name="stg_usage_events",
        layer="staging",
        reads={"raw_usage_events": Read("raw.usage_events", "event_date")},
        grain=("event_date", "event_id"),
        partitioning="daily",
        partition_column="event_date",
    ),
    Model(
        name="stg_billing_customers",
        layer="staging",
        reads={"raw_billing_customers": Read("raw.billing_customers")},
        grain=("billing_customer_id",),
    ),
    Model(
        name="stg_crm_accounts",
        layer="staging",
        reads={"raw_crm_accounts": Read("raw.crm_accounts")},
        grain=("crm_account_id", "updated_at"),
    ),
    Model(
        name="int_billing_customers_resolved",
        layer="core",
        reads={
            "stg_billing_customers": Read("staging.stg_billing_customers"),
            "stg_crm_accounts": Read("staging.stg_crm_accounts"),
        },
        grain=("billing_customer_id",),
    ),
    Model(
        name="int_tenants_resolved",
        layer="core",
        reads={
            "int_billing_customers_resolved": Read("core.int_billing_customers_resolved"),
            "stg_billing_customers": Read("staging.stg_billing_customers"),
        },
        grain=("tenant_id",),
        after_write=_remapped_days,
    ),
    Model(
        name="fct_usage_daily",
        layer="marts",
        reads={
            "stg_usage_events": Read(STG_USAGE, "event_date"),
            "int_tenants_resolved": Read(TENANTS),
        },
        grain=("usage_date", "customer_key", "tenant_id", "product"),
        partitioning="daily",
        partition_column="usage_date",
        checks=(
            SqlCheck(
                "usage_units_conserved",
                "events and units per day equal the deduplicated staging events",
            ),
        ),
    ),
)
