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
ranked as (
    select
        event_date,
        trim(event_id) as event_id,
        lower(trim(tenant_id)) as tenant_id,
        lower(trim(product)) as product,
        quantity,
        occurred_at,
        _source_file as source_file,
        _source_line as source_line,
        row_number() over (
            partition by event_date, trim(event_id)
            order by _ingested_at, _source_file, _source_line
        ) as delivery,
        count(*) over (partition by event_date, trim(event_id)) as deliveries
    from raw_usage_events
)
select
    event_date, event_id, tenant_id, product, quantity, occurred_at, source_file, source_line,
    deliveries
from ranked
where delivery = 1;

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
