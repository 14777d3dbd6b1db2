-- restatements: one row per changed (month, customer_key, measure) of a closed month: a value of
-- marts.fct_customer_month or marts.fct_usage_billing_reconciliation as frozen by
-- `c360 close-month` (the Iceberg tag close-YYYY-MM on each table) that differs from the month's
-- current value. measure = the column name, table_name = the table holding it (the
-- reconciliation's crm_account_id and plan_code are fct_customer_month's own, restated once,
-- from fct_customer_month); as_closed / restated = the value as canonical text (integers `27`,
-- decimals `514.00`, text `Mid-Market`), null where the row (or the value) did not exist. A
-- customer row that appeared after the close lists its non-null measures with as_closed null; a
-- row gone since lists restated null. Only measures and months the table's closed snapshot has
-- are compared (a column added later is not a restatement; a table tagged by no close has none).
-- Months never closed have no rows.
-- detected_at: when this build first saw the restatement with these exact values; a rebuild
-- that finds the same (as_closed, restated) keeps the earlier time, so reruns change nothing.
-- Date basis: month = the facts' month (first day of the UTC month).
with

fct_customer_month as (
    select * from fct_customer_month
),

fct_customer_month_as_closed as (
    select * from fct_customer_month_as_closed
),

fct_usage_billing_reconciliation as (
    select * from fct_usage_billing_reconciliation
),

fct_usage_billing_reconciliation_as_closed as (
    select * from fct_usage_billing_reconciliation_as_closed
),

previous_restatements as (
    select * from previous_restatements
),

-- every measure as canonical text: what `cast(... as varchar)` gives for bigint (27),
-- decimal(18, 2) (514.00) and varchar (Mid-Market)
facts_closed_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key))::varchar
    from fct_customer_month_as_closed
),

facts_current_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key))::varchar
    from fct_customer_month
),

reconciliation_closed_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key, crm_account_id, plan_code))::varchar
    from fct_usage_billing_reconciliation_as_closed
),

reconciliation_current_text as (
    select
        month,
        customer_key,
        columns(* exclude (month, customer_key, crm_account_id, plan_code))::varchar
    from fct_usage_billing_reconciliation
),

closed_values as (
    select
        'marts.fct_customer_month' as table_name,
        *
    from facts_closed_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
    union all
    select
        'marts.fct_usage_billing_reconciliation' as table_name,
        *
    from reconciliation_closed_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
),

current_values as (
    select
        'marts.fct_customer_month' as table_name,
        *
    from facts_current_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
    union all
    select
        'marts.fct_usage_billing_reconciliation' as table_name,
        *
    from reconciliation_current_text
    unpivot include nulls (measure_value for measure in (columns(* exclude (month, customer_key))))
),

-- per table: the months its tag holds, and the measures it had then
closed_months as (
    select distinct
        table_name,
        month
    from closed_values
),

closed_measures as (
    select distinct
        table_name,
        measure
    from closed_values
),

current_of_closed_months as (
    select current_values.* from current_values
    semi join closed_months
        on
            current_values.table_name = closed_months.table_name
            and current_values.month = closed_months.month
),

compared as (
    select
        coalesce(closed.table_name, now_values.table_name) as table_name,
        coalesce(closed.month, now_values.month) as month,
        coalesce(closed.customer_key, now_values.customer_key) as customer_key,
        coalesce(closed.measure, now_values.measure) as measure,
        closed.measure_value as as_closed,
        now_values.measure_value as restated
    from closed_values as closed
    full outer join current_of_closed_months as now_values
        on
            closed.table_name = now_values.table_name
            and closed.month = now_values.month
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
        'close-' || strftime(compared.month, '%Y-%m') as close_tag,
        compared.table_name
    from compared
    semi join closed_measures
        on
            compared.table_name = closed_measures.table_name
            and compared.measure = closed_measures.measure
    left join previous_restatements as previous
        on
            compared.month = previous.month
            and compared.customer_key = previous.customer_key
            and compared.measure = previous.measure
            and compared.as_closed is not distinct from previous.as_closed
            and compared.restated is not distinct from previous.restated
)

select * from final
