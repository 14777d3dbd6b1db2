-- fct_customer_month: one row per (month, customer_key) of int_customer_months: every month from
-- the customer's first activity (usage, a subscription start, a counted invoice, a credit note, a
-- refund, billed usage) through the latest month holding a usage event, an invoice's issued_at, a
-- credit note or a refund anywhere in the data (the same end month for every customer; FX rates
-- and the wall clock do not count). A build writes only the months of its partition window.
-- Date basis (see docs/DECISIONLOG.md): usage by UTC month of occurred_at; invoices by issued_at
-- at total_minor (tax included, not draft/void); credit notes by their own issued_at; refunds by
-- refunded_at; billed_usage_units by the line's service_period_start, whatever month the invoice
-- was issued in. Money is converted per document at its own date's rate (exact decimal USD,
-- rounded to the cent per document); net_revenue_usd = invoiced - credits - refunds.
-- segment, region, owner_name and plan_code are as of the month's last instant (an
-- effective-dated interval join on the customer versions; the plan from int_customer_months),
-- never today's values.
-- Usage measures come from int_customer_usage_months (the daily fact summed per customer and
-- month). usage_units and billed_usage_units are exact sums in decimal(38, 0) (never a 64-bit
-- overflow).
-- A month with nothing has measures 0; a month holding a document without an FX rate has null
-- money measures (and fails the fx_rates_available check) rather than a wrong number.
with

int_customer_usage_months as (
    select * from int_customer_usage_months
),

int_billing_documents_resolved as (
    select * from int_billing_documents_resolved
),

int_customer_months as (
    select * from int_customer_months
),

dim_customer as (
    select * from dim_customer
),

-- the rows (every month from the customer's first activity through the global end month) and
-- the plan at the month's last instant
spine as (
    select
        *,
        (month + interval 1 month)::timestamptz as month_end
    from int_customer_months
    where month >= $window_start and month < $window_end
),

usage_per_month as (
    select * from int_customer_usage_months
    where month >= $window_start and month < $window_end
),

billing_per_month as (
    select
        report_month as month,
        customer_key,
        sum(units) filter (where document_type = 'usage_line')::decimal(38, 0)
            as billed_usage_units,
        sum(amount_usd) filter (where document_type = 'invoice') as invoiced_usd,
        sum(amount_usd) filter (where document_type = 'credit_note') as credits_usd,
        sum(amount_usd) filter (where document_type = 'refund') as refunds_usd,
        bool_or(amount_usd is null and document_type <> 'usage_line') as has_unconverted
    from int_billing_documents_resolved
    where report_month >= $window_start and report_month < $window_end
    group by all
),

-- the customer version in effect at the month's last instant: valid_from <= t < valid_to
customer_at_month_end as (
    select
        spine.month,
        spine.customer_key,
        versions.segment,
        versions.region,
        versions.owner_name
    from spine
    inner join dim_customer as versions
        on
            spine.customer_key = versions.customer_key
            and spine.month_end > versions.valid_from
            and (versions.valid_to is null or spine.month_end <= versions.valid_to)
),

crm_accounts as (
    select
        customer_key,
        max(crm_account_id) as crm_account_id
    from dim_customer
    group by customer_key
),

final as (
    select
        spine.month,
        spine.customer_key,
        crm_accounts.crm_account_id,
        customer_at_month_end.segment,
        customer_at_month_end.region,
        customer_at_month_end.owner_name,
        spine.plan_code,
        coalesce(usage_per_month.usage_events, 0)::bigint as usage_events,
        coalesce(usage_per_month.usage_units, 0)::decimal(38, 0) as usage_units,
        coalesce(billing_per_month.billed_usage_units, 0)::decimal(38, 0) as billed_usage_units,
        case
            when not coalesce(billing_per_month.has_unconverted, false)
                then coalesce(billing_per_month.invoiced_usd, 0)::decimal(18, 2)
        end as invoiced_usd,
        case
            when not coalesce(billing_per_month.has_unconverted, false)
                then coalesce(billing_per_month.credits_usd, 0)::decimal(18, 2)
        end as credits_usd,
        case
            when not coalesce(billing_per_month.has_unconverted, false)
                then coalesce(billing_per_month.refunds_usd, 0)::decimal(18, 2)
        end as refunds_usd,
        case
            when not coalesce(billing_per_month.has_unconverted, false)
                then (
                    coalesce(billing_per_month.invoiced_usd, 0)
                    - coalesce(billing_per_month.credits_usd, 0)
                    - coalesce(billing_per_month.refunds_usd, 0)
                )::decimal(18, 2)
        end as net_revenue_usd,
        coalesce(usage_per_month.active_days, 0)::bigint as active_days,
        coalesce(usage_per_month.products_used, 0)::bigint as products_used
    from spine
    left join crm_accounts
        on spine.customer_key = crm_accounts.customer_key
    left join customer_at_month_end
        on
            spine.month = customer_at_month_end.month
            and spine.customer_key = customer_at_month_end.customer_key
    left join usage_per_month
        on
            spine.month = usage_per_month.month
            and spine.customer_key = usage_per_month.customer_key
    left join billing_per_month
        on
            spine.month = billing_per_month.month
            and spine.customer_key = billing_per_month.customer_key
)

select * from final
