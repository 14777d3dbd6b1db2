"""Customers domain: identity, the SCD2 customer dimension and the customer-month fact.

- Identity: ``int_billing_customers_resolved`` (the crosswalk billing customer -> CRM account ->
  durable ``customer_key``, with a written precedence rule) and ``int_tenants_resolved`` (product
  tenant -> customer). Conflicts and dangling links are listed by WARN checks, never dropped.
  A tenant remap reports the usage days to rebuild (``usage.remapped_days``).
- ``marts.dim_customer``: SCD2 rebuilt from every CRM version, plus billing-only customers and
  the 'unknown' member. A build that changes any version reports the earliest month it touches,
  so the monthly facts are rebuilt from there on.
- ``core.int_customer_usage_months``: usage per customer and month (monthly partitions):
  the usage measures of the customer-month fact, and the first and latest months of usage the
  spine reads (a file a month, not a file a day).
- ``core.int_customer_months``: the rows of the monthly facts (first activity through the global
  end month) and each customer's plan at the month's last instant; monthly partitions.
- ``marts.fct_customer_month``: monthly partitions; attributes as of each month's last instant.

See docs/model.md for the entity diagram and docs/DECISIONLOG.md for the date basis of amounts.
"""

import pyarrow as pa

from c360_assets.defs.billing.assets import (
    CUSTOMER_KEYS_RESOLVE,
    DOCUMENTS,
    IDENTITY,
    SUBSCRIPTION_VERSIONS,
    warn,
)
from c360_assets.defs.usage.assets import remapped_days
from c360_assets.lib.models import Model, SqlCheck, earliest_changed_month
from c360_assets.lib.sqlmodel import Read

DOMAIN = "customers"  # its SQL: sql/customers/

BILLING_CUSTOMERS = "staging.stg_billing_customers"
CRM_ACCOUNTS = "staging.stg_crm_accounts"
DIM_CUSTOMER = "marts.dim_customer"
CUSTOMER_MONTHS = "core.int_customer_months"
CUSTOMER_USAGE_MONTHS = "core.int_customer_usage_months"
USAGE_DAILY = "marts.fct_usage_daily"
# what int_customer_usage_months reads of the daily usage fact (empty before the first usage)
USAGE_DAILY_SCHEMA = pa.schema(
    [
        ("usage_date", pa.date32()),
        ("customer_key", pa.string()),
        ("product", pa.string()),
        ("events", pa.int64()),
        ("units", pa.int64()),
    ]
)


MODELS = (
    Model(
        name="stg_billing_customers",
        layer="staging",
        domain=DOMAIN,
        reads={"raw_billing_customers": Read("raw.billing_customers")},
        grain=("billing_customer_id",),
    ),
    Model(
        name="stg_crm_accounts",
        layer="staging",
        domain=DOMAIN,
        reads={"raw_crm_accounts": Read("raw.crm_accounts")},
        grain=("crm_account_id", "updated_at"),
    ),
    Model(
        name="int_billing_customers_resolved",
        layer="core",
        domain=DOMAIN,
        reads={
            "stg_billing_customers": Read(BILLING_CUSTOMERS),
            "stg_crm_accounts": Read(CRM_ACCOUNTS),
        },
        grain=("billing_customer_id",),
        checks=(
            warn("no_identity_conflicts", "billing customers CRM and billing disagree on"),
            warn("no_identity_orphans", "identity links (billing <-> CRM) pointing at nothing"),
        ),
        # the usage-billing reconciliation takes a customer's currency from here: a billing
        # customer that changed rebuilds the months from its creation on
        after_write=earliest_changed_month(IDENTITY, ("created_at",)),
    ),
    Model(
        name="int_tenants_resolved",
        layer="core",
        domain=DOMAIN,
        reads={
            "int_billing_customers_resolved": Read(IDENTITY),
            "stg_billing_customers": Read(BILLING_CUSTOMERS),
        },
        grain=("tenant_id",),
        checks=(warn("no_tenant_conflicts", "tenants several billing customers name"),),
        after_write=remapped_days,
    ),
    Model(
        name="dim_customer",
        layer="marts",
        domain=DOMAIN,
        reads={
            "stg_crm_accounts": Read(CRM_ACCOUNTS),
            "int_billing_customers_resolved": Read(IDENTITY),
        },
        grain=("customer_key", "valid_from"),
        checks=(
            SqlCheck(
                "dim_customer_windows_do_not_overlap",
                "versions of one customer never overlap; valid_to >= valid_from",
            ),
            SqlCheck(
                "dim_customer_one_current_per_live_customer",
                "exactly one current version per customer unless deleted",
            ),
            SqlCheck(
                "dim_customer_windows_chain",
                "each version ends where the next starts, unless a deletion closed it",
            ),
        ),
        after_write=earliest_changed_month(DIM_CUSTOMER, ("valid_from",)),
    ),
    Model(
        name="int_customer_usage_months",
        layer="core",
        domain=DOMAIN,
        reads={
            "fct_usage_daily": Read(
                USAGE_DAILY,
                "usage_date",
                columns=tuple(USAGE_DAILY_SCHEMA.names),
                missing_as=USAGE_DAILY_SCHEMA,
            ),
        },
        grain=("month", "customer_key"),
        partitioning="monthly",
        partition_column="month",
        checks=(
            SqlCheck(
                "customer_usage_months_conserved",
                "usage events and units per month equal marts.fct_usage_daily",
            ),
        ),
        # int_customer_months reads every month of it: a lakehouse built before this model
        # gets all its months on the first run
        complete_on_first_build=True,
    ),
    Model(
        name="int_customer_months",
        layer="core",
        domain=DOMAIN,
        reads={
            # every month (built before it in every monthly run): each customer's first month
            # of usage and the global end month
            "int_customer_usage_months": Read(
                CUSTOMER_USAGE_MONTHS, columns=("month", "customer_key")
            ),
            "int_billing_documents_resolved": Read(DOCUMENTS),
            "int_subscription_versions": Read(SUBSCRIPTION_VERSIONS),
        },
        grain=("month", "customer_key"),
        partitioning="monthly",
        partition_column="month",
    ),
    Model(
        name="fct_customer_month",
        layer="marts",
        domain=DOMAIN,
        reads={
            "int_customer_usage_months": Read(CUSTOMER_USAGE_MONTHS, "month"),
            "int_billing_documents_resolved": Read(DOCUMENTS),
            "int_customer_months": Read(CUSTOMER_MONTHS, "month"),
            "dim_customer": Read(DIM_CUSTOMER),
        },
        grain=("month", "customer_key"),
        partitioning="monthly",
        partition_column="month",
        checks=(
            CUSTOMER_KEYS_RESOLVE,
            SqlCheck(
                "customer_month_usage_conserved",
                "usage events and units per customer and month equal "
                "core.int_customer_usage_months (marts.fct_usage_daily summed per month)",
            ),
            SqlCheck(
                "customer_month_money_conserved",
                "invoiced, credits, refunds (USD) and billed units per month equal the documents",
            ),
            SqlCheck(
                "fx_rates_available",
                "every money document of the month has an FX rate for its date",
            ),
            warn("no_unknown_customer_activity", "usage or billing mapped to no customer"),
        ),
    ),
)
