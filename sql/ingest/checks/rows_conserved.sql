-- Landing files of this ingestion whose rows in differ from the rows in raw + in quarantine.
-- Reads files (raw.landing_files), accepted (the raw table) and quarantined (raw.quarantine).
with
accepted as (
    select
        _file_sha256 as sha,
        count(*) as n
    from accepted
    group by all
),

quarantined as (
    select
        file_sha256 as sha,
        count(*) as n
    from quarantined
    group by all
)

select
    files.source_file,
    files.rows_in,
    coalesce(accepted.n, 0) as in_raw,
    coalesce(quarantined.n, 0) as in_quarantine
from files
left join accepted on files.file_sha256 = accepted.sha
left join quarantined on files.file_sha256 = quarantined.sha
where
    files.rows_in <> coalesce(accepted.n, 0) + coalesce(quarantined.n, 0)
    or files.rows_accepted <> coalesce(accepted.n, 0)
