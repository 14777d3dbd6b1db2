-- int_billing_customers_resolved: one row per billing customer, linked to its CRM account and
-- given the durable customer_key.
-- Precedence when the systems disagree: the CRM is the system of record for accounts, so a CRM
-- account naming this billing customer wins over the billing system's crm_account_id; among
-- several CRM accounts naming the same billing customer the smallest crm_account_id wins. Every
-- such disagreement is kept in `conflict` for the identity check, never silently dropped.
-- customer_key = first 16 hex of md5('crm:' || crm_account_id), or of
-- md5('billing:' || billing_customer_id) for a billing customer no CRM account claims.
with

stg_billing_customers as (
    select * from stg_billing_customers
),

stg_crm_accounts as (
    select * from stg_crm_accounts
),

crm_latest as (
    select
        crm_account_id,
        arg_max(
            {'billing_customer_id': billing_customer_id, 'is_deleted': is_deleted},
            updated_at
        ) as row
    from stg_crm_accounts
    group by crm_account_id
),

crm_claims as (
    select
        row.billing_customer_id as billing_customer_id,
        min(crm_account_id) as crm_account_id,
        count(*) as claiming_accounts
    from crm_latest
    where row.billing_customer_id is not null
    group by row.billing_customer_id
),

crm_known as (
    select distinct crm_account_id from stg_crm_accounts
),

linked as (
    select
        billing.billing_customer_id,
        billing.tenant_id,
        billing.currency,
        billing.crm_account_id as crm_account_id_in_billing,
        claims.crm_account_id as crm_account_id_in_crm,
        coalesce(claims.claiming_accounts, 0) as claiming_accounts,
        known.crm_account_id is not null as billing_link_known
    from stg_billing_customers as billing
    left join crm_claims as claims
        on billing.billing_customer_id = claims.billing_customer_id
    left join crm_known as known
        on billing.crm_account_id = known.crm_account_id
),

final as (
    select
        billing_customer_id,
        tenant_id,
        currency,
        coalesce(
            crm_account_id_in_crm,
            case when billing_link_known then crm_account_id_in_billing end
        ) as crm_account_id,
        case
            when crm_account_id_in_crm is not null then 'crm_claims_billing_customer'
            when billing_link_known then 'billing_names_crm_account'
            else 'billing_only'
        end as resolved_by,
        case
            when claiming_accounts > 1 then 'several CRM accounts claim this billing customer'
            when
                crm_account_id_in_crm is not null
                and crm_account_id_in_billing is not null
                and crm_account_id_in_crm <> crm_account_id_in_billing
                then 'CRM and billing name different accounts (CRM wins)'
            when
                crm_account_id_in_billing is not null and not billing_link_known
                then 'billing names a CRM account that does not exist'
        end as conflict
    from linked
)

select
    *,
    substr(
        md5(
            case
                when crm_account_id is not null then 'crm:' || crm_account_id
                else 'billing:' || billing_customer_id
            end
        ),
        1,
        16
    ) as customer_key
from final
