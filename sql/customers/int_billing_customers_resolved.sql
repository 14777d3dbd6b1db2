-- int_billing_customers_resolved: one row per billing customer, linked to its CRM account and
-- given the durable customer_key. This is the identity crosswalk of the lakehouse.
-- Natural keys are compared normalized: billing_customer_id and tenant_id trimmed and
-- lower-cased (" CUS_1" is cus_1), crm_account_id trimmed with its case kept.
-- Precedence when the systems disagree:
--   1. a CRM account whose latest version names this billing customer (the CRM is the system
--      of record for accounts); among several, a live account before a deleted one, then the
--      smallest crm_account_id;
--   2. else the crm_account_id the billing system names, if that CRM account exists;
--   3. else none: a billing-only customer.
-- Every disagreement is kept in `conflict` and every dangling link in `orphan_link`, both
-- counted by WARN checks; neither is silently dropped.
-- customer_key = first 16 hex of md5('crm:' || crm_account_id), or of
-- md5('billing:' || billing_customer_id) for a billing customer no CRM account is linked to
-- (dim_customer derives CRM-only accounts' keys with the same formula). Usage or documents that
-- map to no billing customer use the 'unknown' member.
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
            { 'billing_customer_id': billing_customer_id, 'is_deleted': is_deleted },
            updated_at
        ) as latest_version
    from stg_crm_accounts
    group by crm_account_id
),

crm_claims as (
    select
        latest_version.billing_customer_id,
        arg_min(
            crm_account_id,
            { 'deleted': latest_version.is_deleted, 'id': crm_account_id }
        ) as crm_account_id,
        count(*) as claiming_accounts
    from crm_latest
    where latest_version.billing_customer_id is not null
    group by latest_version.billing_customer_id
),

crm_known as (
    select distinct crm_account_id from stg_crm_accounts
),

linked as (
    select
        billing.billing_customer_id,
        billing.tenant_id,
        billing.currency,
        billing.created_at,
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

resolved as (
    select
        billing_customer_id,
        tenant_id,
        currency,
        created_at,
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
            when claiming_accounts > 1
                then 'several CRM accounts claim this billing customer (live, then smallest wins)'
            when
                crm_account_id_in_crm is not null
                and crm_account_id_in_billing is not null
                and crm_account_id_in_crm <> crm_account_id_in_billing
                then 'CRM and billing name different accounts (CRM wins)'
        end as conflict,
        case
            when crm_account_id_in_billing is not null and not billing_link_known
                then 'billing names a CRM account that does not exist'
        end as orphan_link
    from linked
),

final as (
    select
        billing_customer_id,
        tenant_id,
        currency,
        created_at,
        crm_account_id,
        resolved_by,
        conflict,
        orphan_link,
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
    from resolved
)

select * from final
