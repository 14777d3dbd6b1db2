-- stg_billing_customers: one row per billing_customer_id, its latest export (max updated_at,
-- ties broken by ingestion order). IDs normalized: billing_customer_id and tenant_id trimmed and
-- lower-cased, crm_account_id trimmed (case kept), currency upper-cased.
with

raw_billing_customers as (
    select * from raw_billing_customers
),

latest as (
    select
        lower(trim(billing_customer_id)) as billing_customer_id,
        arg_max(
            {
                'tenant_id': nullif(lower(trim(tenant_id)), ''),
                'crm_account_id': nullif(trim(crm_account_id), ''),
                'currency': upper(trim(currency)),
                'created_at': created_at,
                'updated_at': updated_at
            },
            {
                'updated': updated_at,
                'at': _ingested_at,
                'file': _source_file,
                'line': _source_line
            }
        ) as latest
    from raw_billing_customers
    group by lower(trim(billing_customer_id))
),

final as (
    select
        billing_customer_id,
        latest.tenant_id as tenant_id,
        latest.crm_account_id as crm_account_id,
        latest.currency as currency,
        latest.created_at as created_at,
        latest.updated_at as updated_at
    from latest
)

select * from final
