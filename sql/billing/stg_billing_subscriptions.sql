-- stg_billing_subscriptions: one row per (subscription_id, updated_at): every version of a
-- subscription the billing system exported (a plan change is a new version with a later
-- updated_at). A version exported more than once keeps its latest export in the total order
-- (ingested_at, source file, source line). IDs normalized: subscription_id trimmed,
-- billing_customer_id trimmed and lower-cased; plan_code and status trimmed and lower-cased.
with

raw_billing_subscriptions as (
    select * from raw_billing_subscriptions
),

versions as (
    select
        trim(subscription_id) as subscription_id,
        updated_at,
        arg_max(
            {
                'billing_customer_id': lower(trim(billing_customer_id)),
                'plan_code': lower(trim(plan_code)),
                'status': lower(trim(status)),
                'monthly_fee_minor': monthly_fee_minor,
                'included_units': included_units,
                'overage_unit_price_minor': overage_unit_price_minor,
                'started_at': started_at,
                'ended_at': ended_at,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_subscriptions
    group by trim(subscription_id), updated_at
),

final as (
    select
        versions.subscription_id,
        versions.updated_at,
        versions.export_row.billing_customer_id,
        versions.export_row.plan_code,
        versions.export_row.status,
        versions.export_row.monthly_fee_minor,
        versions.export_row.included_units,
        versions.export_row.overage_unit_price_minor,
        versions.export_row.started_at,
        versions.export_row.ended_at,
        versions.export_row.source_file,
        versions.export_row.source_line,
        versions.exports
    from versions
)

select * from final
