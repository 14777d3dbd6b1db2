"""The retry guard of ingestion: a step that fails between the raw append and the file log is
retried, and nothing is doubled (each append lists the landing files whose rows it holds in its
Iceberg snapshot summary: the table's ledger; a retry appends a file's rows only to the tables
whose ledger lacks it, whatever other files the retry finds). The failure is injected by making
the file-log write raise once; every table is the real one."""

from c360_assets.defs.ingest.assets import ingestion_checks
from c360_assets.defs.ingest.sources import USAGE
from c360_assets.lib.ingest import LANDING_FILES_TABLE, ingest_source
from tests.lake import ingest_interrupted_before_the_file_log
from tests.records import event


def counts(lake) -> tuple[int, int, int]:
    """Rows in raw.usage_events, raw.quarantine, raw.landing_files."""
    return tuple(
        len(lake.rows(t)) for t in ("raw.usage_events", "raw.quarantine", LANDING_FILES_TABLE)
    )


def drop_a(lake) -> None:
    """a.jsonl: 3 lines, 2 accepted + 1 quarantined."""
    lake.drop("usage_events", "a.jsonl", [event(event_id="e1"), event(event_id="e2"), "{bad"])


def test_a_retry_after_a_failure_before_the_file_log_doubles_nothing(lake, monkeypatch):
    drop_a(lake)
    ingest_interrupted_before_the_file_log(lake, USAGE, monkeypatch)
    assert counts(lake) == (2, 1, 0)  # the rows are in, the file is not logged as ingested

    summary = ingest_source(lake.lakehouse, USAGE)
    assert (summary.files, summary.rows_in, summary.rows_accepted) == (1, 3, 2)
    assert counts(lake) == (2, 1, 1)  # appends skipped (the ledgers list a.jsonl), file logged
    conserved, *_ = ingestion_checks(lake.lakehouse, USAGE, summary)
    assert conserved.passed
    # and the next ingestion finds nothing new
    again = ingest_source(lake.lakehouse, USAGE)
    assert (again.files, again.skipped_files) == (0, 1)
    assert counts(lake) == (2, 1, 1)


def test_a_retry_that_also_finds_a_new_file_doubles_nothing(lake, monkeypatch):
    drop_a(lake)
    ingest_interrupted_before_the_file_log(lake, USAGE, monkeypatch)
    lake.drop("usage_events", "b.jsonl", [event(event_id="e3")])

    summary = ingest_source(lake.lakehouse, USAGE)
    # a.jsonl's 2 + 1 rows once, b.jsonl's 1 row; both files logged
    assert counts(lake) == (3, 1, 2)
    conserved, *_ = ingestion_checks(lake.lakehouse, USAGE, summary)
    assert conserved.passed
