-- Violations (WARN): identity links that point at nothing: a billing customer naming a CRM
-- account that does not exist, or a live CRM account naming a billing customer that billing
-- does not have. The records are kept (the customer is billing-only / CRM-only).
with

crm_latest as (
    select
        crm_account_id,
        billing_customer_id,
        is_deleted
    from stg_crm_accounts
    qualify row_number() over (partition by crm_account_id order by updated_at desc) = 1
),

billing_orphans as (
    select
        'billing' as side,
        billing_customer_id,
        null as crm_account_id,
        orphan_link as problem
    from model_output
    where orphan_link is not null
),

crm_orphans as (
    select
        'crm' as side,
        crm_latest.billing_customer_id,
        crm_latest.crm_account_id,
        'CRM account names a billing customer that does not exist' as problem
    from crm_latest
    left join model_output as resolved
        on crm_latest.billing_customer_id = resolved.billing_customer_id
    where
        crm_latest.billing_customer_id is not null
        and not crm_latest.is_deleted
        and resolved.billing_customer_id is null
),

final as (
    select * from billing_orphans
    union all
    select * from crm_orphans
)

select * from final
