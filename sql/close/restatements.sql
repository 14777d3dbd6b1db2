-- restatements: one row per changed (month, customer_key, measure) of a closed month: a value of
-- marts.fct_customer_month as frozen by `c360 close-month` (the Iceberg tag close-YYYY-MM) that
-- differs from the month's current value. measure = the fct_customer_month column name;
-- as_closed / restated = the value as canonical text (integers `27`, decimals `514.00`, text
-- `Mid-Market`), null where the row (or the value) did not exist. A customer row that appeared
-- after the close lists its non-null measures with as_closed null; a row gone since lists
-- restated null. Only measures the closed snapshot has are compared (a column added later is
-- not a restatement). Months never closed have no rows.
-- detected_at: when this build first saw the restatement with these exact values; a rebuild
-- that finds the same (as_closed, restated) keeps the earlier time, so reruns change nothing.
-- Date basis: month = fct_customer_month.month (first day of the UTC month).
with

fct_customer_month as (
    select * from fct_customer_month
),

fct_customer_month_as_closed as (
    select * from fct_customer_month_as_closed
),

previous_restatements as (
    select * from previous_restatements
),

closed_months as (
    select distinct month from fct_customer_month_as_closed
),

-- every measure as canonical text: what `cast(... as varchar)` gives for bigint (27),
-- decimal(18, 2) (514.00) and varchar (Mid-Market)
closed_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key))::varchar
    from fct_customer_month_as_closed
),

current_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key))::varchar
    from fct_customer_month
    where month in (select closed_months.month from closed_months)
),

closed_values as (
    select * from closed_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
),

current_values as (
    select * from current_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
),

closed_measures as (
    select distinct measure from closed_values
),

compared as (
    select
        coalesce(closed.month, now_values.month) as month,
        coalesce(closed.customer_key, now_values.customer_key) as customer_key,
        coalesce(closed.measure, now_values.measure) as measure,
        closed.measure_value as as_closed,
        now_values.measure_value as restated
    from closed_values as closed
    full outer join current_values as now_values
        on
            closed.month = now_values.month
            and closed.customer_key = now_values.customer_key
            and closed.measure = now_values.measure
    where closed.measure_value is distinct from now_values.measure_value
),

final as (
    select
        compared.month,
        compared.customer_key,
        compared.measure,
        compared.as_closed,
        compared.restated,
        coalesce(previous.detected_at, now()) as detected_at,
        'close-' || strftime(compared.month, '%Y-%m') as close_tag
    from compared
    left join previous_restatements as previous
        on
            compared.month = previous.month
            and compared.customer_key = previous.customer_key
            and compared.measure = previous.measure
            and compared.as_closed is not distinct from previous.as_closed
            and compared.restated is not distinct from previous.restated
    where compared.measure in (select closed_measures.measure from closed_measures)
)

select * from final
