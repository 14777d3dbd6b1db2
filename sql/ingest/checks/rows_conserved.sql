-- Landing files of this ingestion that are not conserved. A file read: rows in = rows in raw +
-- rows in quarantine (records, with their line), and its counts match those tables. A file
-- quarantined whole: no rows, and exactly one quarantine row without a line, with its reason.
-- Every file of the ingestion (run_files) is logged exactly once.
-- Reads run_files (file_sha256 of this ingestion), files (raw.landing_files), accepted (the raw
-- table) and quarantined (raw.quarantine).
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
        count(source_line) as records,
        count(*) filter (where source_line is null) as whole,
        any_value(reason) filter (where source_line is null) as whole_reason
    from quarantined
    group by all
),

logged as (
    select
        file_sha256,
        count(*) as times
    from files
    group by all
),

-- named by digest: a file never logged has no name in the tables
unlogged as (
    select
        run_files.file_sha256 as source_file,
        null::bigint as rows_in,
        null::bigint as in_raw,
        null::bigint as in_quarantine,
        coalesce(logged.times, 0) as times_logged
    from run_files
    left join logged on run_files.file_sha256 = logged.file_sha256
    where coalesce(logged.times, 0) <> 1
),

counted as (
    select
        files.source_file,
        files.rows_in,
        coalesce(accepted.n, 0) as in_raw,
        coalesce(quarantined.records, 0) as in_quarantine,
        1::bigint as times_logged
    from files
    left join accepted on files.file_sha256 = accepted.sha
    left join quarantined on files.file_sha256 = quarantined.sha
    where
        files.rows_in <> coalesce(accepted.n, 0) + coalesce(quarantined.records, 0)
        or files.rows_accepted <> coalesce(accepted.n, 0)
        or files.rows_quarantined <> coalesce(quarantined.records, 0)
        or coalesce(quarantined.whole, 0) <> (files.quarantine_reason is not null)::int
        or (
            files.quarantine_reason is not null
            and (
                files.rows_in <> 0
                or quarantined.whole_reason is distinct from files.quarantine_reason
            )
        )
),

final as (
    select * from counted
    union all
    select * from unlogged
)

select * from final
