-- usage_anomalies: one row per flagged (usage_date, customer_key, tenant_id, product) of
-- fct_usage_daily, for Risk. Date basis: usage_date (UTC day of the usage).
-- Reasons, strongest first (`reason` holds the strongest, `reasons` all of them):
--   usage_after_subscription_ended — no subscription of the tenant's billing customer covers
--     the day, and one of them ended before it (see int_subscription_coverage);
--   no_active_subscription — no subscription covers the day and none has ended before it
--     (never subscribed, not yet started, or a tenant that maps to no customer);
--   spike — units far above the key's own trailing baseline (below).
-- Usage nobody pays for ranks above a spike: it is revenue at risk whatever its size.
-- Baseline of a day D, per (customer_key, tenant_id, product): the days from the key's first
-- usage day within D-28..D-1 through D-1, a day without usage counting as 0. It needs at least
-- 14 such days (a new key, or one back after 2+ weeks of silence, is not judged yet).
-- baseline_units = median; score = (units - median) / scale, where scale is the larger of
-- 1.4826 * MAD (a robust standard deviation), (p90 - median) / 1.2816 (the same for baselines
-- that are mostly zero, where the MAD is 0) and 1 unit. A spike needs score >= 6, units at
-- least twice the larger of the median and the median of the days with usage (so an occasional
-- user's ordinary usage day is not a spike against its many zero days), and at least 25 units
-- above the median (a tiny key going from 2 to 9 calls is noise, not risk). A steady customer's
-- ordinary days stay far below all three.
-- score and baseline_units are null while the key has less than 14 days of history.
-- Late data: a late event on day D changes the baselines of D+1..D+28, so the asset rebuilds
-- its partitions plus the 28 days after them (Model.rebuild_ahead).
with

fct_usage_daily as (
    select * from fct_usage_daily
),

int_tenants_resolved as (
    select * from int_tenants_resolved
),

int_subscription_coverage as (
    select * from int_subscription_coverage
),

settings as (
    select
        28 as baseline_days,  -- = the asset's lookback_days and rebuild_ahead
        14 as min_history_days,
        6.0 as min_score,
        2.0 as min_ratio,
        25 as min_excess_units
),

usage as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        units
    from fct_usage_daily
),

scored_days as (
    select * from usage
    where usage_date >= $window_start and usage_date < $window_end
),

history_starts as (
    select
        scored.usage_date,
        scored.customer_key,
        scored.tenant_id,
        scored.product,
        min(history.usage_date) as first_day
    from scored_days as scored
    cross join settings
    inner join usage as history
        on
            scored.customer_key = history.customer_key
            and scored.tenant_id = history.tenant_id
            and scored.product = history.product
            and scored.usage_date - settings.baseline_days <= history.usage_date
            and scored.usage_date > history.usage_date
    group by all
),

baseline_days as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        unnest(
            generate_series(first_day, usage_date - 1, interval 1 day)
        )::date as baseline_date
    from history_starts
),

baseline_values as (
    select
        baseline_days.usage_date,
        baseline_days.customer_key,
        baseline_days.tenant_id,
        baseline_days.product,
        coalesce(usage.units, 0)::double as units
    from baseline_days
    left join usage
        on
            baseline_days.customer_key = usage.customer_key
            and baseline_days.tenant_id = usage.tenant_id
            and baseline_days.product = usage.product
            and baseline_days.baseline_date = usage.usage_date
),

baselines as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        count(*)::bigint as history_days,
        median(units) as median_units,
        mad(units) as mad_units,
        quantile_cont(units, 0.9) as p90_units,
        coalesce(median(units) filter (where units > 0), 0) as active_median_units
    from baseline_values
    group by all
),

scored as (
    select
        scored_days.usage_date,
        scored_days.customer_key,
        scored_days.tenant_id,
        scored_days.product,
        scored_days.units,
        coalesce(baselines.history_days, 0) as history_days,
        case
            when baselines.history_days >= settings.min_history_days
                then baselines.median_units
        end as baseline_units,
        baselines.active_median_units,
        case
            when baselines.history_days >= settings.min_history_days
                then
                    (scored_days.units - baselines.median_units)
                    / greatest(
                        1.4826 * baselines.mad_units,
                        (baselines.p90_units - baselines.median_units) / 1.2816,
                        1.0
                    )
        end as score
    from scored_days
    cross join settings
    left join baselines
        on
            scored_days.usage_date = baselines.usage_date
            and scored_days.customer_key = baselines.customer_key
            and scored_days.tenant_id = baselines.tenant_id
            and scored_days.product = baselines.product
),

-- the subscription reason of each scored day: null when a subscription of the tenant's billing
-- customer covers the day, else whether one of them ended before it
subscription_reasons as (
    select
        scored_days.usage_date,
        scored_days.customer_key,
        scored_days.tenant_id,
        scored_days.product,
        case
            when
                bool_or(
                    subscriptions.covered_from <= scored_days.usage_date
                    and (
                        subscriptions.covered_until is null
                        or scored_days.usage_date < subscriptions.covered_until
                    )
                )
                then null
            when bool_or(subscriptions.covered_until <= scored_days.usage_date)
                then 'usage_after_subscription_ended'
            else 'no_active_subscription'
        end as subscription_reason
    from scored_days
    left join int_tenants_resolved as tenants
        on scored_days.tenant_id = tenants.tenant_id
    left join int_subscription_coverage as subscriptions
        on tenants.billing_customer_id = subscriptions.billing_customer_id
    group by all
),

flagged as (
    select
        scored.*,
        subscription_reasons.subscription_reason,
        case
            when
                scored.score >= settings.min_score
                and scored.units
                >= settings.min_ratio * greatest(scored.baseline_units, scored.active_median_units)
                and scored.units - scored.baseline_units >= settings.min_excess_units
                then 'spike'
        end as spike_reason
    from scored
    cross join settings
    inner join subscription_reasons
        on
            scored.usage_date = subscription_reasons.usage_date
            and scored.customer_key = subscription_reasons.customer_key
            and scored.tenant_id = subscription_reasons.tenant_id
            and scored.product = subscription_reasons.product
),

final as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        units,
        baseline_units,
        round(score, 2) as score,
        coalesce(subscription_reason, spike_reason) as reason,
        concat_ws(',', subscription_reason, spike_reason) as reasons,
        history_days
    from flagged
    where subscription_reason is not null or spike_reason is not null
)

select * from final
