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
    models = all_models()
    return dg.Definitions(
        assets=[ingest_landing, *(build_model_asset(m) for m in models)],
        jobs=build_jobs(models),
        sensors=build_sensors(models),
        resources={"lakehouse": lakehouse or LakehouseResource.from_env()},
    )
