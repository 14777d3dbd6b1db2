"""Landing files -> raw Iceberg tables, once per file content, malformed records quarantined.

A file is identified by the SHA-256 of its bytes: the same file dropped again, under any name,
is skipped. Each record becomes a row of ``raw.<source>`` (typed, with lineage columns) or a row
of ``raw.quarantine`` (raw text + reason); per file, rows in = rows accepted + rows quarantined,
and that identity is stored in ``raw.landing_files`` where a check verifies it.
"""

import datetime as dt
import gzip
import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from c360_assets.lib.sources import Column, Source
from c360_assets.lib.sqlmodel import connect
from resources.lakehouse import LakehouseResource

FORMATS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")
QUARANTINE_TABLE = "raw.quarantine"
LANDING_FILES_TABLE = "raw.landing_files"
# Rows per commit: bounds memory on a peak day while keeping commits few.
BATCH_ROWS = 4_000_000
# Files validated at once: DuckDB and Arrow release the GIL, so two files (and a commit) overlap.
WORKERS = 2
TIMESTAMP_RE = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}(:?\d{2})?)"


@dataclass
class IngestSummary:
    source: str
    files: int = 0
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    skipped_files: int = 0
    touched_dates: set[dt.date] = field(default_factory=set)
    touched_months: set[dt.date] = field(default_factory=set)
    digests: list[str] = field(default_factory=list)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def landing_files(landing_dir: Path, source: Source) -> list[Path]:
    folder = landing_dir / source.folder
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(FORMATS))


# -- reading any format as (line, raw_text) ------------------------------------------------------
def _read_lines(path: Path) -> pa.Table:
    """One row per physical line (1-based ``line``), as bytes; blank lines are dropped later."""
    source = path
    if path.name.lower().endswith(".gz"):
        # inflated in one call (zlib releases the GIL), then split: pyarrow's gzip stream costs
        # more CPU for the same bytes and overlaps nothing of its inflating with the splitting
        source = pa.BufferReader(gzip.decompress(path.read_bytes()))
    table = pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=["raw"], block_size=64 << 20),
        parse_options=pacsv.ParseOptions(
            delimiter="\x1e",  # a control character that never appears in JSON text
            quote_char=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={"raw": pa.binary()}, quoted_strings_can_be_null=False
        ),
    )
    lines = pa.array(range(1, table.num_rows + 1), pa.int64())
    return pa.table({"line": lines, "raw": table.column("raw")})


def _read_tabular(path: Path, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """CSV (header on line 1) or Parquet rows rendered as JSON objects, keeping their order."""
    if path.name.lower().endswith(".parquet"):
        data, first_line = pq.read_table(path), 1
    else:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            header = handle.readline()
        names = [n.strip().strip('"') for n in header.rstrip("\r\n").split(",")]
        data = pacsv.read_csv(
            path,
            # only an empty field is null: pyarrow's default null markers would also turn
            # values such as "NA" (North America), "N/A" or "null" into nulls
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        first_line = 2
    con.register("tabular", data)
    rendered = con.sql("select to_json(t)::varchar as raw from tabular as t").to_arrow_table()
    con.unregister("tabular")
    lines = pa.array(range(first_line, first_line + data.num_rows), pa.int64())
    raw = rendered.column("raw").cast(pa.binary())
    return pa.table({"line": lines, "raw": raw})


def read_records(path: Path, con: duckdb.DuckDBPyConnection) -> pa.Table:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return _read_lines(path)
    return _read_tabular(path, con)


# -- validation SQL, generated from the source declaration ---------------------------------------
def _value(col: Column) -> str:
    """The field as text: a column of ``fields``, extracted once per record."""
    return f'"v_{col.name}"'


def _kind(col: Column) -> str:
    """The field's JSON type: a column of ``fields``, extracted once per record."""
    return f'"k_{col.name}"'


# A record in its producer's canonical form -- the declared fields in declaration order (an optional
# field may be absent), no whitespace, ASCII strings without escapes, plain numbers, timestamps and
# dates of the checked shape -- matches this regular expression and is parsed by ONE ``from_json``
# into a typed struct: no JSON type probe, no per-field text extraction, no shape regex per value.
# Any other record (reordered keys, nulls, escapes, spaces, bad text) takes the general path.
# Both paths give every record the same casts, verdicts and reasons (tests prove it line by line).
_TEXT = r'"[ !#-\[\]-~]*"'  # a JSON string of printable ASCII without quotes or escapes
_SHAPE = {  # column type -> (canonical JSON value, its type in the parsed struct)
    "string": (_TEXT, "VARCHAR"),
    "timestamp": (f'"{TIMESTAMP_RE}"', "VARCHAR"),
    "date": (r'"\d{4}-\d{2}-\d{2}"', "VARCHAR"),
    "int": (r"-?(0|[1-9][0-9]{0,17})", "BIGINT"),
    "bool": ("(true|false)", "BOOLEAN"),
}


def has_canonical_path(source: Source) -> bool:
    """Whether the source's records can take the canonical path (every column type in
    ``_SHAPE``; a decimal's text must keep going through the general path's extraction)."""
    return all(c.type in _SHAPE for c in source.columns)


def canonical_shape(source: Source) -> str:
    """The regular expression of a record in canonical form (see ``_SHAPE``)."""
    shape = r"\{"
    for i, col in enumerate(source.columns):
        member = f'"{col.name}":{_SHAPE[col.type][0]}'
        if i == 0:
            shape += member
        elif col.required:
            shape += "," + member
        else:  # an optional field may be absent
            shape += f"(,{member})?"
    return shape + r"\}"


def _canonical_struct(source: Source) -> str:
    """The ``from_json`` structure of a canonical record."""
    return "{" + ", ".join(f'"{c.name}": "{_SHAPE[c.type][1]}"' for c in source.columns) + "}"


def _fields_sql(source: Source, canonical_path: bool) -> str:
    """Every field's text and JSON type for a record off the canonical path (parsed once:
    ``json_extract_string`` / ``json_type`` with a list of paths parse the document once, not
    once per field), and the parsed struct ``c`` of a canonical record."""
    paths = ", ".join(f"'$.{c.name}'" for c in source.columns)
    values = ", ".join(f'v[{i}] as "v_{c.name}"' for i, c in enumerate(source.columns, start=1))
    kinds = ", ".join(f'k[{i}] as "k_{c.name}"' for i, c in enumerate(source.columns, start=1))
    shape = (
        f"regexp_full_match(raw_text, '{canonical_shape(source)}')" if canonical_path else "false"
    )
    struct = (
        f"case when canonical then from_json(raw_text, '{_canonical_struct(source)}') end"
        if canonical_path
        else "null"
    )
    return f"""
shaped as (
    select * from (select line, raw_text, coalesce({shape}, false) as canonical from decoded)
    -- blank lines are no records. A line starting with "{{" is none: the test does not read the
    -- shape (DuckDB would evaluate its regex twice) and trims no other line (an "or" would)
    where case when raw_text like '{{%' then true else raw_text is null or trim(raw_text) <> '' end
),
parsed as (
    select
        line,
        raw_text,
        canonical,
        {struct} as c,
        case when not canonical then try(json(raw_text)) end as j
    from shaped
),
probed as (
    select
        line,
        raw_text,
        canonical,
        c,
        case when canonical then 'OBJECT' else json_type(j) end as doc_type,
        case when not canonical and json_type(j) = 'OBJECT' then json_extract_string(j, [{paths}])
        end as v,
        case when not canonical and json_type(j) = 'OBJECT' then json_type(j, [{paths}]) end as k
    from parsed
),
fields as (
    select line, raw_text, canonical, c, doc_type, {values}, {kinds} from probed
)"""


def _cast(col: Column) -> str:
    """The field's typed value (null when absent or not castable)."""
    v = _value(col)
    casts = {
        "string": v,
        "int": f"try_cast(trim({v}) as bigint)",
        "timestamp": f"try_cast(trim({v}) as timestamptz)",
        "date": f"try_cast(trim({v}) as date)",
        "decimal": f"try_cast(trim({v}) as decimal(38, 12))",
        "bool": f"lower(trim({v})) in ('true', '1')",
    }
    return casts[col.type]


def _type_ok(col: Column) -> str:
    """Whether a present field has the declared type (``t_<name>`` holds its cast)."""
    v, k, t = _value(col), _kind(col), f'"t_{col.name}"'
    checks = {
        "string": f"{k} = 'VARCHAR'",
        "int": f"({k} in ('BIGINT', 'UBIGINT') or ({k} = 'VARCHAR' "
        f"and regexp_full_match(trim({v}), '[+-]?[0-9]{{1,18}}')))",
        "timestamp": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '{TIMESTAMP_RE}') "
        f"and {t} is not null)",
        "date": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
        f"and {t} is not null)",
        "decimal": f"({k} in ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE') and {t} is not null)",
        "bool": f"({k} = 'BOOLEAN' or lower(trim({v})) in ('true', 'false', '1', '0'))",
    }
    return checks[col.type]


def _canonical_cast(col: Column) -> str:
    """The typed value of a canonical record's field: ``from_json`` gave strings, integers and
    booleans their type; a timestamp or date is cast from its text as on the general path (the
    text has no surrounding whitespace to trim)."""
    field = f'c."{col.name}"'
    if col.type == "timestamp":
        return f"try_cast({field} as timestamptz)"
    if col.type == "date":
        return f"try_cast({field} as date)"
    return field


def _canonical_bad(col: Column) -> str:
    """A canonical record's field has the declared type unless its timestamp or date text (of the
    checked shape already) does not cast."""
    if col.type in ("timestamp", "date"):
        return f'c."{col.name}" is not null and "t_{col.name}" is null'
    return "false"


def _typed_sql(source: Source, canonical_path: bool) -> str:
    """Each field cast once (``t_<name>``), whether it is present with a wrong type
    (``bad_<name>``) and whether it is absent (``m_<name>``)."""

    def either(canonical: str, general: str) -> str:
        return (
            f"case when canonical then {canonical} else {general} end"
            if canonical_path
            else general
        )

    casts = ",\n        ".join(
        f'{either(_canonical_cast(c), _cast(c))} as "t_{c.name}"' for c in source.columns
    )
    verdicts = []
    for c in source.columns:
        bad = either(_canonical_bad(c), f"{_value(c)} is not null and not {_type_ok(c)}")
        absent = either(f'c."{c.name}" is null', f"{_value(c)} is null")
        verdicts += [f'{bad} as "bad_{c.name}"', f'{absent} as "m_{c.name}"']
    verdicts = ",\n        ".join(verdicts)
    return f"""
cast_fields as (
    select *, {casts}
    from fields
),
typed as (
    select *, {verdicts}
    from cast_fields
)"""


def _reasons(source: Source) -> list[str]:
    reasons = []
    for col in source.columns:
        t, bad, absent = f'"t_{col.name}"', f'"bad_{col.name}"', f'"m_{col.name}"'
        if col.required:
            reasons.append(f"case when {absent} then 'missing {col.name}' end")
        reasons.append(f"case when {bad} then 'wrong type for {col.name}' end")
        if col.min_value is not None:
            reasons.append(
                f"case when not {bad} and {t} < {col.min_value} "
                f"then '{col.name} below {col.min_value}' end"
            )
    if source.event_time:
        reasons.append(
            f'case when "t_{source.event_time}"::date '
            "not between $min_date and $max_date then 'event date outside the partition range' end"
        )
    return reasons


def _final(col: Column) -> str:
    expr = f'"t_{col.name}"'
    return f"coalesce({expr}, {col.default})" if col.default is not None else expr


def validation_sql(source: Source, canonical_path: bool = True) -> str:
    """SQL over ``records(line, raw)`` giving every record typed columns and a reason (or null).

    ``canonical_path=False`` sends every record through the general path (tests compare both).
    """
    canonical_path = canonical_path and has_canonical_path(source)
    typed = ",\n        ".join(f"{c.name} := {_final(c)}" for c in source.columns)
    reasons = ",\n                ".join(_reasons(source))
    event_date = (
        f',\n    case when reason is null then "t_{source.event_time}"::date end as event_date'
        if source.event_time
        else ""
    )
    return f"""
with decoded as (
    select line, try(decode(raw)) as raw_text from records
),{_fields_sql(source, canonical_path)},{_typed_sql(source, canonical_path)},
checked as (
    select
        line,
        raw_text,
        {", ".join(f'"t_{c.name}"' for c in source.columns)},
        case
            when raw_text is null then 'not valid UTF-8'
            when doc_type is null then 'invalid JSON'
            when doc_type <> 'OBJECT' then 'not a JSON object'
            else nullif(concat_ws('; ',
                {reasons}
            ), '')
        end as reason
    from typed
)
select
    line,
    -- the raw text is kept for quarantined records only (accepted ones never read it)
    case when reason is not null then coalesce(raw_text, '') end as raw_text,
    reason,
    case when reason is null then struct_pack(
        {typed}
    ) end as rec{event_date}
from checked
"""


# -- one ingestion pass --------------------------------------------------------------------------
@dataclass
class _Pending:
    accepted: list[pa.Table] = field(default_factory=list)
    quarantined: list[pa.Table] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    rows: int = 0


def _stat_key(relpath: str, path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return relpath, stat.st_size, stat.st_mtime_ns


def _known_files(lakehouse: LakehouseResource, source: Source) -> tuple[set[str], set[tuple]]:
    """Digests of the files already ingested, and their (path, size, mtime) as ingested."""
    if not lakehouse.table_exists(LANDING_FILES_TABLE):
        return set(), set()
    rows = lakehouse.scan(
        LANDING_FILES_TABLE,
        f"source == '{source.name}'",
        ("file_sha256", "source_file", "file_size", "file_mtime_ns"),
    ).to_pylist()
    stats = {(r["source_file"], r["file_size"], r["file_mtime_ns"]) for r in rows}
    return {r["file_sha256"] for r in rows}, stats


def _new_files(lakehouse: LakehouseResource, source: Source) -> tuple[list[tuple], int]:
    """The landing files whose content was never ingested, with their digest and stat key.

    Landing files are never edited in place (CONTRACT §2), so a file still at the path, size and
    modification time it was ingested with is skipped without reading it; any other file is
    hashed, and skipped when its content was ingested under another name.
    """
    known, ingested_stats = _known_files(lakehouse, source)
    fresh, skipped = [], 0
    for path in landing_files(lakehouse.landing_path, source):
        stat_key = _stat_key(str(path.relative_to(lakehouse.landing_path)), path)
        if stat_key in ingested_stats:
            skipped += 1
            continue
        digest = file_digest(path)
        if digest in known:
            skipped += 1
            continue
        known.add(digest)
        fresh.append((path, digest, stat_key))
    return fresh, skipped


def _validate_file(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    digest: str,
    relpath: str,
    ingested_at: dt.datetime,
    date_range: tuple[dt.date, dt.date],
) -> tuple[pa.Table, pa.Table, dict]:
    con.register("records", read_records(path, con))
    params = {"min_date": date_range[0], "max_date": date_range[1]}
    sql = validation_sql(source)
    if "$min_date" not in sql:
        params = {}
    # one pass, results in input (line) order: the accepted and the quarantined rows are selected
    # from it in Arrow, with no second pass through DuckDB and no sort
    con.execute("set preserve_insertion_order = true")
    try:
        checked = con.sql(sql, params=params or None).to_arrow_table()
    finally:
        con.execute("set preserve_insertion_order = false")
        con.unregister("records")
    lines = checked.column("line")
    if len(lines) > 1 and not pc.all(pc.greater(lines[1:], lines[:-1])).as_py():
        checked = checked.sort_by("line")  # not expected: keeps every output in line order
    rejected = pc.is_valid(checked.column("reason"))
    kept, dropped = checked.filter(pc.invert(rejected)), checked.filter(rejected)
    rec_type = checked.schema.field("rec").type
    parts = [chunk.flatten() for chunk in kept.column("rec").chunks]
    columns = {
        f.name: pa.chunked_array([part[i] for part in parts], f.type)
        for i, f in enumerate(rec_type)
    }
    if source.event_time:
        columns["event_date"] = kept.column("event_date")

    def repeat(value, kind: pa.DataType, rows: int) -> pa.Array:
        return pa.repeat(pa.scalar(value, kind), rows)

    at_type = pa.timestamp("us", tz="UTC")
    accepted = pa.table(
        {
            **columns,
            "_source_file": repeat(relpath, pa.string(), kept.num_rows),
            "_source_line": kept.column("line"),
            "_file_sha256": repeat(digest, pa.string(), kept.num_rows),
            "_ingested_at": repeat(ingested_at, at_type, kept.num_rows),
        }
    )
    quarantined = pa.table(
        {
            "source": repeat(source.name, pa.string(), dropped.num_rows),
            "source_file": repeat(relpath, pa.string(), dropped.num_rows),
            "file_sha256": repeat(digest, pa.string(), dropped.num_rows),
            "source_line": dropped.column("line"),
            "raw_text": dropped.column("raw_text"),
            "reason": dropped.column("reason"),
            "ingested_at": repeat(ingested_at, at_type, dropped.num_rows),
        }
    )
    record = {
        "source": source.name,
        "source_file": relpath,
        "file_sha256": digest,
        "rows_in": checked.num_rows,
        "rows_accepted": accepted.num_rows,
        "rows_quarantined": quarantined.num_rows,
        "ingested_at": ingested_at,
    }
    return accepted, quarantined, record


QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("file_sha256", pa.string()),
        ("source_line", pa.int64()),
        ("raw_text", pa.string()),
        ("reason", pa.string()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)
LANDING_FILES_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("file_sha256", pa.string()),
        ("rows_in", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("batch_id", pa.string()),
        ("file_size", pa.int64()),
        ("file_mtime_ns", pa.int64()),
    ]
)


def raw_schema(source: Source) -> pa.Schema:
    arrow_types = {
        "string": pa.string(),
        "int": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "decimal": pa.decimal128(38, 12),
        "bool": pa.bool_(),
    }
    fields = [(c.name, arrow_types[c.type]) for c in source.columns]
    if source.event_time:
        fields.append(("event_date", pa.date32()))
    fields += [
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_file_sha256", pa.string()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


def ensure_raw_tables(lakehouse: LakehouseResource, source: Source) -> None:
    partition = ("event_date",) if source.event_time else ()
    lakehouse.ensure_table(source.table, raw_schema(source), partition)
    lakehouse.ensure_table(QUARANTINE_TABLE, QUARANTINE_SCHEMA)
    lakehouse.ensure_table(LANDING_FILES_TABLE, LANDING_FILES_SCHEMA)


def ledger_key(source: Source) -> str:
    """The snapshot-summary key under which a table's appends list the landing files (their
    digests) whose rows of ``source`` they hold: the table's exactly-once ledger."""
    return f"c360.files.{source.name}"


def _commit(lakehouse: LakehouseResource, source: Source, pending: _Pending) -> None:
    """Write one batch to the raw table, the quarantine and the file log: each table gets the
    rows of exactly the batch's files that its ledger does not list yet.

    The file log is written last: a file counts as ingested only once its rows are in. A run
    that stopped between two of these commits (a crash, a SIGKILL) leaves files that the next
    run validates again; the ledgers then keep the tables that already hold their rows from
    getting them twice, and the others are completed.
    """
    batch_id = hashlib.sha256(
        "".join(sorted(f["file_sha256"] for f in pending.files)).encode()
    ).hexdigest()[:32]
    partition = ("event_date",) if source.event_time else ()
    schema = raw_schema(source)
    log = [
        pa.Table.from_pylist([{**f, "batch_id": batch_id}], LANDING_FILES_SCHEMA)
        for f in pending.files
    ]
    batches = {
        source.table: ([t.cast(schema) for t in pending.accepted], partition),
        QUARANTINE_TABLE: ([t.cast(QUARANTINE_SCHEMA) for t in pending.quarantined], ()),
        LANDING_FILES_TABLE: (log, ()),
    }
    digests = [f["file_sha256"] for f in pending.files]
    key = ledger_key(source)
    con = connect()
    try:
        for table, (per_file, partition_by) in batches.items():
            done = lakehouse.ledger(table, key)
            todo = [i for i, digest in enumerate(digests) if digest not in done]
            if not todo:
                continue
            con.register("batch", pa.concat_tables([per_file[i] for i in todo]))
            lakehouse.write_query(
                con,
                table,
                "select * from batch",
                partition_by=partition_by,
                properties={key: ",".join(digests[i] for i in todo)},
            )
            con.unregister("batch")
    finally:
        con.close()


def _touched(
    con: duckdb.DuckDBPyConnection, source: Source, accepted: pa.Table
) -> tuple[set[dt.date], set[dt.date]]:
    """The UTC days and months the accepted rows fall in."""
    days, months = set(), set()
    if source.event_time:
        days.update(pc.unique(accepted.column("event_date")).to_pylist())
    if not source.month_columns:
        return days, months
    con.register("accepted", accepted)
    for column in source.month_columns:
        rows = con.sql(
            f"select distinct date_trunc('month', {column})::date from accepted "
            f"where {column} is not null"
        ).fetchall()
        months.update(r[0] for r in rows)
    con.unregister("accepted")
    return days, months


@dataclass
class _FileResult:
    accepted: pa.Table
    quarantined: pa.Table
    record: dict
    days: set[dt.date]
    months: set[dt.date]


def _ingest_file(source: Source, path: Path, digest: str, relpath: str, ingested_at, date_range):
    """Validate one file on its own DuckDB connection (files run in parallel threads)."""
    con = connect()
    try:
        accepted, quarantined, record = _validate_file(
            con, source, path, digest, relpath, ingested_at, date_range
        )
        days, months = _touched(con, source, accepted)
    finally:
        con.close()
    return _FileResult(accepted, quarantined, record, days, months)


def _in_order(fn: Callable, jobs: list[tuple], workers: int) -> Iterator:
    """``fn(*job)`` for every job, ``workers`` at a time, results in job order; at most one
    result waits beyond the running ones, which bounds memory while the caller commits."""
    with ThreadPoolExecutor(workers) as pool:
        running: deque[Future] = deque()
        for job in jobs:
            running.append(pool.submit(fn, *job))
            if len(running) > workers:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def ingest_source(
    lakehouse: LakehouseResource,
    source: Source,
    date_range: tuple[dt.date, dt.date],
    ingested_at: dt.datetime | None = None,
) -> IngestSummary:
    """Ingest every landing file of ``source`` not yet ingested (by content).

    One ingestion of a source at a time, wherever it runs: the source's lease in the catalog's
    database is held from listing the new files to logging them, so a second run waits and then
    finds them ingested.
    """
    with lakehouse.lease(f"ingest/{source.name}"):
        return _ingest_source(lakehouse, source, date_range, ingested_at)


def _ingest_source(
    lakehouse: LakehouseResource,
    source: Source,
    date_range: tuple[dt.date, dt.date],
    ingested_at: dt.datetime | None,
) -> IngestSummary:
    ensure_raw_tables(lakehouse, source)
    summary = IngestSummary(source.name)
    fresh, summary.skipped_files = _new_files(lakehouse, source)
    ingested_at = ingested_at or dt.datetime.now(dt.UTC)
    jobs = [
        (source, path, digest, relpath, ingested_at, date_range)
        for path, digest, (relpath, *_) in fresh
    ]
    stats = {digest: stat_key for _, digest, stat_key in fresh}
    pending = _Pending()
    for result in _in_order(_ingest_file, jobs, WORKERS):
        record = result.record
        _, record["file_size"], record["file_mtime_ns"] = stats[record["file_sha256"]]
        summary.touched_dates |= result.days
        summary.touched_months |= result.months
        pending.accepted.append(result.accepted)
        pending.quarantined.append(result.quarantined)
        pending.files.append(record)
        pending.rows += record["rows_in"]
        summary.digests.append(record["file_sha256"])
        summary.files += 1
        summary.rows_in += record["rows_in"]
        summary.rows_accepted += record["rows_accepted"]
        summary.rows_quarantined += record["rows_quarantined"]
        if pending.rows >= BATCH_ROWS:
            _commit(lakehouse, source, pending)
            pending = _Pending()
    if pending.files:
        _commit(lakehouse, source, pending)
    return summary


def iter_sources_summary(summaries: list[IngestSummary]) -> Iterator[str]:
    for s in summaries:
        yield (
            f"{s.source}: {s.files} new files ({s.skipped_files} already ingested), "
            f"{s.rows_in} rows = {s.rows_accepted} accepted + {s.rows_quarantined} quarantined"
        )
