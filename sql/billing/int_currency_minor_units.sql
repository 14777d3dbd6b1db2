-- int_currency_minor_units: one row per currency whose minor unit is not a hundredth of its major
-- unit (ISO 4217): the size of one minor unit in major units. A currency not listed has 2
-- decimals (0.01). Reference data, no input: every conversion of `*_minor` amounts to USD
-- (int_billing_documents_resolved, fct_usage_billing_reconciliation) reads it from here.
with

final as (
    select
        listed.currency,
        listed.minor_unit::decimal(4, 3) as minor_unit
    from (
        values
        ('JPY', 1), ('KRW', 1), ('CLP', 1), ('ISK', 1), ('VND', 1),
        ('BHD', 0.001), ('KWD', 0.001), ('OMR', 0.001), ('JOD', 0.001), ('TND', 0.001)
    ) as listed (currency, minor_unit)
)

select * from final
