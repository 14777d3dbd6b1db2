-- Rows in and rows quarantined over the landing files of this ingestion.
select
    coalesce(sum(rows_in), 0)::bigint as rows_in,
    coalesce(sum(rows_quarantined), 0)::bigint as rows_quarantined
from files
