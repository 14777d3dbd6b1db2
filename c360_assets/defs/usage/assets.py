"""Usage domain: the daily usage fact, built from the raw day in one pass.

Deduplication (``stg_usage_events``) and the tenant-level daily totals
(``int_tenant_usage_daily``) are intermediates of the fact's build: a view and a session table
in its DuckDB session, never written to Iceberg, so a 30M-event day is read once and only the
fact's rows are written.

The identity models (tenant -> customer) live in ``defs/customers/assets.py``; when the tenant
mapping changes, :func:`remapped_days` (its ``after_write`` hook) reports the built days holding
the re-mapped tenants' usage as touched, so exactly those days of ``fct_usage_daily`` are
rebuilt.
"""

import datetime as dt

import dagster as dg
from pyiceberg.expressions import In

from c360_assets.lib.models import ChangeReport, Model, SqlCheck
from c360_assets.lib.sqlmodel import Intermediate, Read, SqlSession, sql_text
from resources.lakehouse import LakehouseResource

DOMAIN = "usage"  # its SQL: sql/usage/

FCT_USAGE = "marts.fct_usage_daily"
TENANTS = "core.int_tenants_resolved"


def _remapped_days(lakehouse: LakehouseResource, session: SqlSession, before: int | None) -> dict:
    """Days of usage whose tenant maps to a different customer than before this build."""
    if before is None:  # first build: every mapped tenant is new
        previous = session.query("select * from model_output limit 0")
    else:
        previous = lakehouse.scan(TENANTS, snapshot_id=before)
    session.register("previous_map", previous)
    changed = session.query(sql_text(f"{DOMAIN}/remapped_tenants"))
    days: list[dt.date] = []
    # the built days holding those tenants' usage (a day not built yet is built with the new map)
    if changed.num_rows and lakehouse.table_exists(FCT_USAGE):
        tenants = In("tenant_id", changed.column("tenant_id").to_pylist())
        session.register(
            "usage_tenants", lakehouse.scan(FCT_USAGE, tenants, ("usage_date", "tenant_id"))
        )
        days = [
            r["usage_date"]
            for r in session.query(
                "select distinct usage_date from usage_tenants order by 1"
            ).to_pylist()
        ]
    return {
        "remapped_tenants": changed.num_rows,
        "touched_dates": dg.MetadataValue.json([d.isoformat() for d in days]),
    }


remapped_days = ChangeReport(_remapped_days, frozenset({"touched_dates"}))

MODELS = (
    Model(
        name="fct_usage_daily",
        layer="marts",
        domain=DOMAIN,
        reads={
            "raw_usage_events": Read("raw.usage_events", "event_date"),
            "int_tenants_resolved": Read(TENANTS),
        },
        intermediates=(
            Intermediate("stg_usage_events"),
            Intermediate("int_tenant_usage_daily", "temp_table"),
        ),
        grain=("usage_date", "customer_key", "tenant_id", "product"),
        partitioning="daily",
        partition_column="usage_date",
        checks=(
            SqlCheck(
                "usage_units_conserved",
                "events and units per day equal the day's deduplicated events per tenant",
            ),
        ),
    ),
)
