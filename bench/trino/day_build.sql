-- The trino_transform peer: the c360 day build (stg_usage_events -> fct_usage_daily for one
-- day) as a dbt-trino incremental project runs it: Trino SQL over the same raw Iceberg table,
-- each partition replaced by delete + insert. {day} is an ISO date.
create table if not exists staging.bench_trino_stg_usage_events (
    event_date date,
    event_id varchar,
    tenant_id varchar,
    product varchar,
    quantity bigint,
    occurred_at timestamp(6) with time zone,
    source_file varchar,
    source_line bigint,
    deliveries bigint
) with (partitioning = array['event_date']);

delete from staging.bench_trino_stg_usage_events where event_date = date '{day}';

insert into staging.bench_trino_stg_usage_events
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
)
select
    event_date, event_id, tenant_id, product, quantity, occurred_at, source_file, source_line,
    deliveries
from delivered_once
union all
select
    event_date,
    event_id,
    first_row[1],
    first_row[2],
    first_row[3],
    first_row[4],
    first_row[5],
    first_row[6],
    deliveries
from first_of_many;

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
select
    events.event_date as usage_date,
    coalesce(tenants.customer_key, 'unknown') as customer_key,
    events.tenant_id,
    events.product,
    count(*) as events,
    sum(events.quantity) as units
from staging.bench_trino_stg_usage_events as events
left join core.int_tenants_resolved as tenants
    on events.tenant_id = tenants.tenant_id
where events.event_date = date '{day}'
group by 1, 2, 3, 4;
