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
-- Rows with a null customer_key, tenant_id or product are never flagged.
-- Late data: a late event on day D changes the baselines of D+1..D+28, so the asset rewrites
-- those days too, for the keys whose daily units changed (Model.series, rebuild_ahead).
-- How: each key's usage days of the read range are gathered once into one list (fct_usage_daily
-- has one row per day and key); a scored day's baseline is the part of that list within
-- D-28..D-1, padded with zeros to D - its first day (the days without usage), and median / MAD /
-- p90 are the same aggregates run over that list. MAD, p90 and the median of the days with usage
-- are computed only for days that can be flagged.
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
    where customer_key is not null and tenant_id is not null and product is not null
),

scored_days as (
    select * from usage
    where usage_date >= $window_start and usage_date < $window_end
),

-- per key, its usage days up to the window's last day but one (the baselines' days), unordered
histories as (
    select
        customer_key,
        tenant_id,
        product,
        list({ 'usage_date': usage_date, 'units': coalesce(units, 0)::double }) as usage_days
    from usage
    where
        usage_date >= $window_start - (select settings.baseline_days from settings)
        and usage_date < $window_end - 1
    group by all
),

windows as (
    select
        scored_days.usage_date,
        scored_days.customer_key,
        scored_days.tenant_id,
        scored_days.product,
        scored_days.units,
        histories.usage_days,
        settings.baseline_days
    from scored_days
    cross join settings
    left join histories
        on
            scored_days.customer_key = histories.customer_key
            and scored_days.tenant_id = histories.tenant_id
            and scored_days.product = histories.product
),

-- the usage days of each scored day's trailing window D-28..D-1
window_days as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        units,
        list_filter(
            usage_days,
            lambda day: day['usage_date'] >= usage_date - baseline_days
            and day['usage_date'] < usage_date
        ) as usage_days
    from windows
),

-- history_days = D - the window's first usage day; the baseline is the window's units, then a
-- 0 for each of its days without usage
baseline_values as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        units,
        coalesce(
            usage_date - list_min(list_transform(usage_days, lambda day: day['usage_date'])), 0
        ) as history_days,
        list_resize(list_transform(usage_days, lambda day: day['units']), history_days, 0.0)
            as baseline
    from window_days
),

tenant_days as (
    select distinct
        usage_date,
        tenant_id
    from scored_days
),

-- the subscription reason of each scored tenant and day: null when a subscription of the
-- tenant's billing customer covers the day, else whether one of them ended before it
subscription_reasons as (
    select
        tenant_days.usage_date,
        tenant_days.tenant_id,
        case
            when
                bool_or(
                    subscriptions.covered_from <= tenant_days.usage_date
                    and (
                        subscriptions.covered_until is null
                        or tenant_days.usage_date < subscriptions.covered_until
                    )
                )
                then null
            when bool_or(subscriptions.covered_until <= tenant_days.usage_date)
                then 'usage_after_subscription_ended'
            else 'no_active_subscription'
        end as subscription_reason
    from tenant_days
    left join int_tenants_resolved as tenants
        on tenant_days.tenant_id = tenants.tenant_id
    left join int_subscription_coverage as subscriptions
        on tenants.billing_customer_id = subscriptions.billing_customer_id
    group by all
),

medians as (
    select
        baseline_values.*,
        subscription_reasons.subscription_reason,
        case
            when baseline_values.history_days >= settings.min_history_days
                then list_aggregate(baseline_values.baseline, 'median')
        end as median_units
    from baseline_values
    cross join settings
    inner join subscription_reasons
        on
            baseline_values.usage_date = subscription_reasons.usage_date
            and baseline_values.tenant_id = subscription_reasons.tenant_id
),

-- the rows that can be flagged: usage nobody pays for, and days whose units pass the two spike
-- thresholds that need only the median (the greatest() of the spike test is >= the median);
-- only these need the rest of the baseline
candidates as (
    select medians.*
    from medians
    cross join settings
    where
        medians.subscription_reason is not null
        or (
            medians.units - medians.median_units >= settings.min_excess_units
            and medians.units >= settings.min_ratio * medians.median_units
        )
),

-- MAD, p90 and the median of the days with usage (null, like the median, under 14 days)
baselines as (
    select
        *,
        list_aggregate(baseline, 'mad') as mad_units,
        list_aggregate(baseline, 'quantile_cont', 0.9) as p90_units,
        coalesce(
            list_aggregate(
                list_filter(baseline, lambda baseline_units: baseline_units > 0), 'median'
            ),
            0
        ) as active_median_units
    from candidates
),

scored as (
    select
        usage_date,
        customer_key,
        tenant_id,
        product,
        units,
        history_days,
        subscription_reason,
        median_units as baseline_units,
        active_median_units,
        (units - median_units)
        / greatest(1.4826 * mad_units, (p90_units - median_units) / 1.2816, 1.0) as score
    from baselines
),

flagged as (
    select
        scored.*,
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
