-- Violations: customer keys in the fact that no dim_customer row holds (every key, including
-- the 'unknown' member, must resolve to the dimension).
with

dimension_keys as (
    select distinct customer_key from dim_customer
),

final as (
    select
        facts.customer_key,
        count(*) as fact_rows
    from model_output as facts
    left join dimension_keys
        on facts.customer_key = dimension_keys.customer_key
    where facts.customer_key is not null and dimension_keys.customer_key is null
    group by facts.customer_key
)

select * from final
