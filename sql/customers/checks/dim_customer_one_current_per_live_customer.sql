-- Violations: customers with more than one current version, or a customer that is not deleted
-- (its last version was not closed by a deletion) without a current version.
with

per_customer as (
    select
        customer_key,
        count(*) filter (where is_current) as current_versions,
        arg_max(is_deleted, valid_from) as last_version_deleted
    from model_output
    group by customer_key
),

final as (
    select
        customer_key,
        current_versions,
        last_version_deleted
    from per_customer
    where current_versions > 1 or (current_versions = 0 and not last_version_deleted)
)

select * from final
