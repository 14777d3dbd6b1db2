-- BI 5: Finance's reconciliation overview: invoices and money by status and currency.
select
    status,
    currency,
    count(*) as invoices,
    sum(total_minor) as total_minor,
    sum(net_minor) as net_minor
from marts.fct_invoice_reconciliation
group by status, currency
order by invoices desc
