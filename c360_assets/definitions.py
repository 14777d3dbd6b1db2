"""Assemble the Dagster definitions from the domain modules (called lazily, never at import)."""

import dagster as dg

from c360_assets.models import Model, build_model_asset
from c360_assets.pipeline import build_jobs
from c360_assets.raw import ingest_landing
from c360_assets.sensors import build_sensors
from resources.lakehouse import LakehouseResource


def all_models() -> tuple[Model, ...]:
    """Every SQL model, domain by domain (each domain module declares a ``MODELS`` tuple)."""
    from c360_assets import billing, close, customers, risk, usage

    return usage.MODELS + customers.MODELS + billing.MODELS + risk.MODELS + close.MODELS


def build_definitions(lakehouse: LakehouseResource | None = None) -> dg.Definitions:
    from c360_assets import close

    models = all_models()
    return dg.Definitions(
        assets=[ingest_landing, *(build_model_asset(m) for m in models), *close.ASSETS],
        jobs=build_jobs(models),
        sensors=build_sensors(models),
        resources={"lakehouse": lakehouse or LakehouseResource.from_env()},
        # steps run one after another in the run's process: no per-step process start-up, and
        # no two steps of a run committing to the catalog at once
        executor=dg.in_process_executor,
    )
