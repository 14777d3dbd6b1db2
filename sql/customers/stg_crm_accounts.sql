-- stg_crm_accounts: one row per (crm_account_id, updated_at): each distinct version of a CRM
-- account as the CRM recorded it, whatever snapshot(s) carried it. Snapshots arrive out of order;
-- for one version the earliest snapshot that carried it is kept. crm_account_id is trimmed (case
-- kept); billing_customer_id is trimmed and lower-cased.
with

raw_crm_accounts as (
    select * from raw_crm_accounts
),

versions as (
    select
        trim(crm_account_id) as crm_account_id,
        updated_at,
        arg_min(
            {
                'account_name': account_name,
                'owner_name': owner_name,
                'owner_email': owner_email,
                'segment': segment,
                'region': region,
                'billing_customer_id': nullif(lower(trim(billing_customer_id)), ''),
                'is_deleted': is_deleted,
                'snapshot_at': snapshot_at
            },
            {
                'snapshot': snapshot_at,
                'at': _ingested_at,
                'file': _source_file,
                'line': _source_line
            }
        ) as first_seen,
        count(*)::bigint as snapshots_seen
    from raw_crm_accounts
    group by trim(crm_account_id), updated_at
),

final as (
    select
        crm_account_id,
        updated_at,
        first_seen.account_name as account_name,
        first_seen.owner_name as owner_name,
        first_seen.owner_email as owner_email,
        first_seen.segment as segment,
        first_seen.region as region,
        first_seen.billing_customer_id as billing_customer_id,
        first_seen.is_deleted as is_deleted,
        first_seen.snapshot_at as first_snapshot_at,
        snapshots_seen
    from versions
)

select * from final
