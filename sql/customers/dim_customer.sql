-- dim_customer: SCD type 2, one row per version of a customer: (customer_key, valid_from).
-- Rebuilt from every CRM version each time, so a snapshot arriving out of order corrects history
-- (a late older snapshot can split a version in two).
-- - A version is a run of CRM records (ordered by the CRM's updated_at) with the same segment,
--   region and owner (owner_name, owner_email); a change of any of them starts a new version at
--   that record's updated_at (not at snapshot or load time). The first version starts at the
--   earliest updated_at seen for the account.
-- - Other changes update the version in place: account_name is the latest name within it.
-- - A deleting record (is_deleted) ends the version at its updated_at (is_deleted = true on that
--   version); a live record after a deletion starts a new version.
-- - valid_to is exclusive, null while current; versions never overlap; exactly one is current
--   unless the account is deleted.
-- Besides CRM accounts: every billing-only customer (one version from its created_at) and the
-- 'unknown' member (from 1970), so every key a fact uses resolves here.
-- customer_key: md5('crm:' || crm_account_id), the formula of int_billing_customers_resolved;
-- billing_customer_id is the account's primary billing customer (the one the CRM claims, else
-- the smallest linked one), the same on every version.
with

stg_crm_accounts as (
    select * from stg_crm_accounts
),

int_billing_customers_resolved as (
    select * from int_billing_customers_resolved
),

tracked as (
    select
        crm_account_id,
        updated_at,
        account_name,
        owner_name,
        owner_email,
        segment,
        region,
        coalesce(is_deleted, false) as is_deleted,
        {
            'segment': segment,
            'region': region,
            'owner_name': owner_name,
            'owner_email': owner_email
        } as tracked_attributes
    from stg_crm_accounts
),

with_previous as (
    select
        *,
        lag(is_deleted) over by_time as previous_deleted,
        lag(tracked_attributes) over by_time as previous_attributes
    from tracked
    window by_time as (partition by crm_account_id order by updated_at)
),

-- a record starts a version when it is the account's first, when it follows a deletion
-- (the account came back), or when a tracked attribute changed; a deleting record never does
starts as (
    select
        *,
        case
            when previous_deleted is null then 1
            when is_deleted then 0
            when previous_deleted then 1
            when (tracked_attributes is not distinct from previous_attributes) then 0
            else 1
        end as starts_version
    from with_previous
),

numbered as (
    select
        *,
        sum(starts_version) over (
            partition by crm_account_id
            order by updated_at
            rows between unbounded preceding and current row
        ) as version_number
    from starts
),

crm_versions as (
    select
        crm_account_id,
        version_number,
        min(updated_at) as valid_from,
        min(updated_at) filter (where is_deleted) as deleted_at,
        arg_min(segment, updated_at) as segment,
        arg_min(region, updated_at) as region,
        arg_min(owner_name, updated_at) as owner_name,
        arg_min(owner_email, updated_at) as owner_email,
        coalesce(
            arg_max(account_name, updated_at) filter (where not is_deleted),
            arg_min(account_name, updated_at)
        ) as account_name
    from numbered
    group by crm_account_id, version_number
),

primary_billing as (
    select
        crm_account_id,
        arg_min(
            billing_customer_id,
            {
                'claimed': resolved_by <> 'crm_claims_billing_customer',
                'id': billing_customer_id
            }
        ) as billing_customer_id
    from int_billing_customers_resolved
    where crm_account_id is not null
    group by crm_account_id
),

crm_dimension as (
    select
        substr(md5('crm:' || versions.crm_account_id), 1, 16) as customer_key,
        versions.crm_account_id,
        primary_billing.billing_customer_id,
        versions.account_name,
        versions.segment,
        versions.region,
        versions.owner_name,
        versions.owner_email,
        versions.valid_from,
        coalesce(
            versions.deleted_at,
            lead(versions.valid_from) over (
                partition by versions.crm_account_id order by versions.version_number
            )
        ) as valid_to,
        versions.deleted_at is not null as is_deleted,
        'crm' as source_system
    from crm_versions as versions
    left join primary_billing
        on versions.crm_account_id = primary_billing.crm_account_id
),

billing_only as (
    select
        resolved.customer_key,
        null::varchar as crm_account_id,
        resolved.billing_customer_id,
        null::varchar as account_name,
        null::varchar as segment,
        null::varchar as region,
        null::varchar as owner_name,
        null::varchar as owner_email,
        resolved.created_at as valid_from,
        null::timestamptz as valid_to,
        false as is_deleted,
        'billing' as source_system
    from int_billing_customers_resolved as resolved
    where resolved.crm_account_id is null
),

unknown_member as (
    select
        'unknown' as customer_key,
        null::varchar as crm_account_id,
        null::varchar as billing_customer_id,
        'Unknown customer' as account_name,
        null::varchar as segment,
        null::varchar as region,
        null::varchar as owner_name,
        null::varchar as owner_email,
        '1970-01-01 00:00:00+00'::timestamptz as valid_from,
        null::timestamptz as valid_to,
        false as is_deleted,
        'unknown' as source_system
),

all_versions as (
    select * from crm_dimension
    union all
    select * from billing_only
    union all
    select * from unknown_member
),

final as (
    select
        customer_key,
        substr(md5(customer_key || '|' || strftime(valid_from, '%Y-%m-%dT%H:%M:%S.%f')), 1, 16)
            as customer_version_key,
        crm_account_id,
        billing_customer_id,
        account_name,
        segment,
        region,
        owner_name,
        owner_email,
        valid_from,
        valid_to,
        valid_to is null as is_current,
        is_deleted,
        source_system
    from all_versions
)

select * from final
