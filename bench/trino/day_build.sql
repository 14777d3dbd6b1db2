-- The trino_transform peer: the c360 day build (the raw day -> fct_usage_daily, deduplicated
-- in CTEs as c360 deduplicates in intermediates of the fact's build) as a dbt-trino incremental
-- project with an ephemeral staging model runs it: Trino SQL over the same raw Iceberg table,
-- the fact's partition replaced by delete + insert. {day} is an ISO date.
create table if not exists marts.bench_trino_fct_usage_daily (
    usage_date date,
    customer_key varchar,
    tenant_id varchar,
    product varchar,
    events bigint,
    units bigint
) with (partitioning = array['usage_date']);

delete from marts.bench_trino_fct_usage_daily where usage_date = date '{day}';

insert into marts.bench_trino_fct_usage_daily
with
raw_usage_events as (
    select * from raw.usage_events where event_date = date '{day}'
),
-- c360's plan (sql/usage/stg_usage_events.sql), as the Polars peer has it: a lean count per
-- id finds the re-delivered ids (well under 1 %); only those are reduced to their first
-- delivery, every other row passes straight through. A row_number() over all 30M rows
-- needed more than 7.2 GB of Trino query memory.
deliveries as (
    select event_date, trim(event_id) as event_id, count(*) as deliveries
    from raw_usage_events
    group by event_date, trim(event_id)
    having count(*) > 1
),
delivered_once as (
    select
        events.event_date,
        trim(events.event_id) as event_id,
        lower(trim(events.tenant_id)) as tenant_id,
        lower(trim(events.product)) as product,
        events.quantity,
        events.occurred_at,
        events._source_file as source_file,
        events._source_line as source_line,
        cast(1 as bigint) as deliveries
    from raw_usage_events as events
    where not exists (
        select 1 from deliveries
        where
            deliveries.event_date = events.event_date
            and deliveries.event_id = trim(events.event_id)
    )
),
first_of_many as (
    select
        events.event_date,
        trim(events.event_id) as event_id,
        min_by(
            row(
                lower(trim(events.tenant_id)),
                lower(trim(events.product)),
                events.quantity,
                events.occurred_at,
                events._source_file,
                events._source_line
            ),
            row(events._ingested_at, events._source_file, events._source_line)
        ) as first_row,
        count(*) as deliveries
    from raw_usage_events as events
    inner join deliveries
        on
            events.event_date = deliveries.event_date
            and trim(events.event_id) = deliveries.event_id
    group by events.event_date, trim(events.event_id)
),
stg_usage_events as (
    select event_date, event_id, tenant_id, product, quantity
    from delivered_once
    union all
    select event_date, event_id, first_row[1], first_row[2], first_row[3]
    from first_of_many
)
select
    events.event_date as usage_date,
    coalesce(tenants.customer_key, 'unknown') as customer_key,
    events.tenant_id,
    events.product,
    count(*) as events,
    sum(events.quantity) as units
from stg_usage_events as events
left join core.int_tenants_resolved as tenants
    on events.tenant_id = tenants.tenant_id
group by 1, 2, 3, 4;

