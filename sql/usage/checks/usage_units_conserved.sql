-- Violations: days where the fact's events or units differ from the deduplicated events
-- (int_tenant_usage_daily: mapping tenants to customers neither drops nor repeats usage).
with

staged as (
    select
        event_date as usage_date,
        sum(events) as events,
        sum(units) as units
    from int_tenant_usage_daily
    group by event_date
),

facts as (
    select
        usage_date,
        sum(events) as events,
        sum(units) as units
    from model_output
    group by usage_date
),

final as (
    select
        coalesce(staged.usage_date, facts.usage_date) as usage_date,
        staged.events as staged_events,
        facts.events as fact_events,
        staged.units as staged_units,
        facts.units as fact_units
    from staged
    full outer join facts on staged.usage_date = facts.usage_date
    where
        staged.events is distinct from facts.events
        or staged.units is distinct from facts.units
)

select * from final
