"""Assemble the Dagster definitions from the domain modules (called lazily, never at import)."""

import dagster as dg

from c360_assets.defs.automation.jobs import build_jobs
from c360_assets.defs.automation.maintenance import build_maintenance
from c360_assets.defs.automation.sensors import build_sensors
from c360_assets.defs.domains import ownership
from c360_assets.defs.ingest.assets import ingest_landing
from c360_assets.lib.models import Model, build_model_asset
from resources.lakehouse import LakehouseResource
from resources.trino import TrinoResource


def all_models() -> tuple[Model, ...]:
    """Every SQL model, domain by domain (each domain module declares a ``MODELS`` tuple)."""
    from c360_assets.defs.billing import assets as billing
    from c360_assets.defs.close import assets as close
    from c360_assets.defs.customers import assets as customers
    from c360_assets.defs.risk import assets as risk
    from c360_assets.defs.usage import assets as usage

    return usage.MODELS + customers.MODELS + billing.MODELS + risk.MODELS + close.MODELS


def build_definitions(
    lakehouse: LakehouseResource | None = None, trino: TrinoResource | None = None
) -> dg.Definitions:
    """Everything; with Trino (``serving``: BI views, parity checks) when ``trino`` is given, or,
    for the environment's definitions (no ``lakehouse`` given), when C360_TRINO_HOST is set."""
    from c360_assets.defs.close import assets as close
    from c360_assets.defs.serving import assets as serving

    models = all_models()
    if trino is None and lakehouse is None:
        trino = serving.trino_from_env()
    maintenance_job, nightly = build_maintenance(models, with_trino=trino is not None)
    defs = dg.Definitions(
        assets=[
            ingest_landing,
            *(build_model_asset(m, ownership(m.domain)) for m in models),
            *close.assets(),
        ],
        jobs=[*build_jobs(models), maintenance_job],
        sensors=build_sensors(models),
        schedules=[nightly],
        resources={"lakehouse": lakehouse or LakehouseResource.from_env()},
        # steps run one after another in the run's process: no per-step process start-up, and
        # no two steps of a run committing to the catalog at once
        executor=dg.in_process_executor,
    )
    if trino is None:
        return defs
    return dg.Definitions.merge(defs, serving.serving_definitions(models, trino))
