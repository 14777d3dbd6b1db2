-- stg_billing_fx_rates: one row per (rate_date, currency): USD per major unit of the currency
-- on that date, from the latest export in the total order (ingested_at, source file, source
-- line), so a re-published correction wins. Exact decimal, never a float.
with

raw_billing_fx_rates as (
    select * from raw_billing_fx_rates
),

latest as (
    select
        rate_date,
        upper(trim(currency)) as currency,
        arg_max(
            {
                'usd_per_unit': usd_per_unit,
                'source_file': _source_file,
                'source_line': _source_line
            },
            { 'at': _ingested_at, 'file': _source_file, 'line': _source_line }
        ) as export_row,
        count(*)::bigint as exports
    from raw_billing_fx_rates
    group by rate_date, upper(trim(currency))
),

final as (
    select
        latest.rate_date,
        latest.currency,
        latest.export_row.usd_per_unit::decimal(38, 12) as usd_per_unit,
        latest.export_row.source_file,
        latest.export_row.source_line,
        latest.exports
    from latest
)

select * from final
