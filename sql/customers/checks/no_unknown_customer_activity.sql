-- Violations (WARN): months in which usage or billing mapped to no customer (the 'unknown'
-- member): tenants no billing customer names, documents of unknown billing customers or of
-- invoices that do not exist. Counted, never dropped.
with

unknown as (
    select
        month,
        usage_events,
        usage_units,
        billed_usage_units,
        invoiced_usd,
        credits_usd,
        refunds_usd
    from model_output
    where
        customer_key = 'unknown'
        and (
            usage_events <> 0
            or billed_usage_units <> 0
            or invoiced_usd <> 0
            or credits_usd <> 0
            or refunds_usd <> 0
        )
)

select * from unknown
