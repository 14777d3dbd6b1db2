-- Landing files of this ingestion whose header or schema has columns the source does not
-- declare (they land nowhere): schema drift a data engineer should see.
-- Reads files (raw.landing_files).
select
    source_file,
    undeclared_columns
from files
where undeclared_columns is not null
order by source_file
