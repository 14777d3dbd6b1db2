-- Violations: (month, customer_key) rows of the window that marts.fct_customer_month has and
-- the reconciliation lacks (`missing`), or the reverse (`extra`): both must hold exactly the
-- same rows.
with

customer_month_rows as (
    select
        month,
        customer_key
    from fct_customer_month
    where month >= $window_start and month < $window_end
),

reconciliation_rows as (
    select
        month,
        customer_key
    from model_output
),

missing as (
    select * from customer_month_rows
    except
    select * from reconciliation_rows
),

extra as (
    select * from reconciliation_rows
    except
    select * from customer_month_rows
),

final as (
    select
        'missing' as problem,
        missing.month,
        missing.customer_key
    from missing
    union all
    select
        'extra' as problem,
        extra.month,
        extra.customer_key
    from extra
)

select * from final
