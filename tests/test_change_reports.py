"""A partitioned model's input that cannot report the partitions it changed is refused when the
definitions are assembled (``build_jobs``), instead of never triggering a rebuild."""

import dataclasses

import pytest

from c360_assets.definitions import all_models
from c360_assets.defs.automation.jobs import build_jobs
from c360_assets.lib.models import Model, ModelDeclarationError
from c360_assets.lib.sqlmodel import Read


def replaced(name: str, **changes) -> tuple[Model, ...]:
    """Every model, with ``changes`` made to the declaration of ``name``."""
    return tuple(dataclasses.replace(m, **changes) if m.name == name else m for m in all_models())


def test_the_declared_models_all_report_their_changes():
    assert [job.name for job in build_jobs(all_models())] == [
        "ingest_job",
        "refresh_job",
        "daily_job",
        "monthly_job",
    ]


def reading(name: str, input_name: str, read: Read) -> tuple[Model, ...]:
    """Every model, with model ``name`` also reading ``read`` as ``input_name``."""
    model = next(m for m in all_models() if m.name == name)
    return replaced(name, reads={**model.reads, input_name: read})


@pytest.mark.parametrize(
    ("models", "refusal"),
    [
        # dim_customer without its hook: a new CRM version would never rebuild a customer month
        (
            lambda: replaced("dim_customer", after_write=None),
            "model fct_customer_month: input dim_customer (marts.dim_customer) cannot report the "
            "months it changed (an unpartitioned model needs an after_write ChangeReport "
            "reporting touched_dates or touched_months)",
        ),
        # dim_customer's hook names months, a daily model needs days
        (
            lambda: reading("usage_anomalies", "dim_customer", Read("marts.dim_customer")),
            "model usage_anomalies: input dim_customer (marts.dim_customer) cannot report the days "
            "it changed (an unpartitioned model needs an after_write ChangeReport reporting "
            "touched_dates)",
        ),
        # billing customers land without month columns: a monthly model reading the raw table
        # would never hear of a change
        (
            lambda: reading("fct_customer_month", "payers", Read("raw.billing_customers")),
            "model fct_customer_month: input payers (raw.billing_customers) cannot report the "
            "months it changed (a raw source declaring no month_columns reports no "
            "touched_months)",
        ),
        (
            lambda: reading("usage_anomalies", "months", Read("marts.fct_customer_month", "month")),
            "model usage_anomalies: input months (marts.fct_customer_month) cannot report the days "
            "it changed (a monthly model is built after the daily job)",
        ),
    ],
    ids=["no change report", "months for a daily model", "raw without months", "monthly input"],
)
def test_an_input_that_cannot_report_its_changes_is_refused(models, refusal):
    with pytest.raises(ModelDeclarationError) as refused:
        build_jobs(models())
    assert str(refused.value) == refusal + ": a change there would never rebuild a partition"
