-- Violations: two versions of one customer whose [valid_from, valid_to) windows overlap, or a
-- version whose window ends before it starts. An open window (valid_to null) ends at infinity;
-- the violations show valid_to as stored (null), which any client can read.
with

versions as (
    select
        customer_key,
        valid_from,
        valid_to,
        coalesce(valid_to, 'infinity'::timestamptz) as ends_at
    from model_output
),

inverted as (
    select
        customer_key,
        valid_from,
        valid_to,
        null::timestamptz as other_valid_from
    from versions
    where ends_at < valid_from
),

overlapping as (
    select
        earlier.customer_key,
        earlier.valid_from,
        earlier.valid_to,
        later.valid_from as other_valid_from
    from versions as earlier
    inner join versions as later
        on
            earlier.customer_key = later.customer_key
            and earlier.valid_from < later.valid_from
            and earlier.ends_at > later.valid_from
),

final as (
    select * from inverted
    union all
    select * from overlapping
)

select * from final
