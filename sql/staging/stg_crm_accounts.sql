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
            {'snapshot': snapshot_at, 'at': _ingested_at, 'file': _source_file, 'line': _source_line}
        ) as row,
        count(*)::bigint as snapshots_seen
    from raw_crm_accounts
    group by trim(crm_account_id), updated_at
),

final as (
    select
        crm_account_id,
        updated_at,
        row.account_name as account_name,
        row.owner_name as owner_name,
        row.owner_email as owner_email,
        row.segment as segment,
        row.region as region,
        row.billing_customer_id as billing_customer_id,
        row.is_deleted as is_deleted,
        row.snapshot_at as first_snapshot_at,
        snapshots_seen
    from versions
)

select * from final
