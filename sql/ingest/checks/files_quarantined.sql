-- Landing files of this ingestion quarantined whole (no record could be read), with the reason.
-- Reads files (raw.landing_files).
select
    source_file,
    quarantine_reason
from files
where quarantine_reason is not null
order by source_file
