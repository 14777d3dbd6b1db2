-- Violations: consecutive versions of a customer that do not chain: a version must end exactly
-- where the next one starts, unless a deletion closed it (the account may come back later).
with

ordered as (
    select
        customer_key,
        valid_from,
        valid_to,
        is_deleted,
        lead(valid_from) over (partition by customer_key order by valid_from) as next_valid_from
    from model_output
),

final as (
    select
        customer_key,
        valid_from,
        valid_to,
        next_valid_from
    from ordered
    where
        next_valid_from is not null
        and not is_deleted
        and valid_to is distinct from next_valid_from
)

select * from final
