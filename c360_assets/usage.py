"""Usage domain: deduplicated events per UTC day and the daily usage fact.

The identity models (tenant -> customer) live in ``customers.py``; when the tenant mapping
changes, :func:`remapped_days` (its ``after_write`` hook) reports the days holding the re-mapped
tenants' usage as touched, so exactly those days of ``fct_usage_daily`` are rebuilt.
"""

import datetime as dt

import dagster as dg
from pyiceberg.expressions import In

from c360_assets.models import Model, SqlCheck
from c360_assets.sqlmodel import Read, SqlSession
from resources.lakehouse import LakehouseResource

STG_USAGE = "staging.stg_usage_events"
TENANTS = "core.int_tenants_resolved"


def remapped_days(lakehouse: LakehouseResource, session: SqlSession, before: int | None) -> dict:
    """Days of usage whose tenant maps to a different customer than before this build."""
    if before is None:  # first build: every mapped tenant is new
        previous = session.query("select * from model_output limit 0")
    else:
        previous = lakehouse.scan(TENANTS, snapshot_id=before)
    session.register("previous_map", previous)
    changed = session.query(
        """
        select coalesce(now_map.tenant_id, before.tenant_id) as tenant_id
        from model_output as now_map
        full outer join previous_map as before on now_map.tenant_id = before.tenant_id
        where now_map.customer_key is distinct from before.customer_key
        """
    )
    days: list[dt.date] = []
    if changed.num_rows and lakehouse.table_exists(STG_USAGE):
        tenants = In("tenant_id", changed.column("tenant_id").to_pylist())
        session.register(
            "usage_tenants", lakehouse.scan(STG_USAGE, tenants, ("event_date", "tenant_id"))
        )
        days = [
            r["event_date"]
            for r in session.query(
                "select distinct event_date from usage_tenants order by 1"
            ).to_pylist()
        ]
    return {
        "remapped_tenants": changed.num_rows,
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
