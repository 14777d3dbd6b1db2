-- bi.customers: one row per customer (customer_key) of marts.dim_customer, as its latest version
-- reads: the current version, or for a deleted account its last one (is_current false, valid_to
-- when it was deleted). The 'unknown' member (usage and billing that map to no customer) is
-- included. The other views take the customer from here: customer_360 its current customers,
-- invoices_not_reconciling and recent_usage_anomalies the customer to contact.
-- customer_since: the start of the customer's first version; valid_from: of the latest.
-- owner_email is masked for the bi user. Security invoker: the reader's rights and column masks
-- apply to the mart it reads.
with

dim_customer as (
    select * from iceberg.marts.dim_customer
),

ranked_versions as (
    select
        *,
        min(valid_from) over (partition by customer_key) as customer_since,
        row_number() over (
            partition by customer_key order by valid_from desc
        ) as version_rank
    from dim_customer
),

final as (
    select
        customer_key,
        crm_account_id,
        billing_customer_id,
        account_name,
        segment,
        region,
        owner_name,
        owner_email,
        customer_since,
        valid_from,
        valid_to,
        is_current,
        is_deleted
    from ranked_versions
    where version_rank = 1
)

select * from final
