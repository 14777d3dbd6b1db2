"""Landing files -> raw Iceberg tables, once per file content, malformed records quarantined.

A file is identified by the SHA-256 of its bytes: the same file dropped again, under any name,
is skipped. Each record becomes a row of ``raw.<source>`` (typed, with lineage columns) or a row
of ``raw.quarantine`` (raw text + reason); per file, rows in = rows accepted + rows quarantined,
and that identity is stored in ``raw.landing_files`` where a check verifies it.
"""

import datetime as dt
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from c360_assets.sources import Column, Source
from resources.lakehouse import LakehouseResource

FORMATS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")
QUARANTINE_TABLE = "raw.quarantine"
LANDING_FILES_TABLE = "raw.landing_files"
# Rows per commit: bounds memory on a peak day while keeping commits few.
BATCH_ROWS = 4_000_000
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
    table = pacsv.read_csv(
        path,
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
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
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


def _fields_sql(source: Source) -> str:
    """Every field's text and JSON type, from one parse each of the object (not one per use):
    ``json_extract_string`` / ``json_type`` with a list of paths parse the document once."""
    paths = ", ".join(f"'$.{c.name}'" for c in source.columns)
    unpacked = ",\n        ".join(
        f'v[{i}] as "v_{c.name}", k[{i}] as "k_{c.name}"'
        for i, c in enumerate(source.columns, start=1)
    )
    return f"""
extracted as (
    select
        line,
        raw_text,
        j,
        json_type(j) as doc_type,
        case when json_type(j) = 'OBJECT' then json_extract_string(j, [{paths}]) end as v,
        case when json_type(j) = 'OBJECT' then json_type(j, [{paths}]) end as k
    from parsed
),
fields as (
    select
        line,
        raw_text,
        j,
        doc_type,
        {unpacked}
    from extracted
)"""


def _type_ok(col: Column) -> str:
    v, k = _value(col), _kind(col)
    checks = {
        "string": f"{k} = 'VARCHAR'",
        "int": f"({k} in ('BIGINT', 'UBIGINT') or ({k} = 'VARCHAR' "
        f"and regexp_full_match(trim({v}), '[+-]?[0-9]{{1,18}}')))",
        "timestamp": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '{TIMESTAMP_RE}') "
        f"and try_cast(trim({v}) as timestamptz) is not null)",
        "date": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
        f"and try_cast(trim({v}) as date) is not null)",
        "decimal": f"({k} in ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE') "
        f"and try_cast(trim({v}) as decimal(38, 12)) is not null)",
        "bool": f"({k} = 'BOOLEAN' or lower(trim({v})) in ('true', 'false', '1', '0'))",
    }
    return checks[col.type]


def _typed(col: Column) -> str:
    v = _value(col)
    casts = {
        "string": v,
        "int": f"try_cast(trim({v}) as bigint)",
        "timestamp": f"try_cast(trim({v}) as timestamptz)",
        "date": f"try_cast(trim({v}) as date)",
        "decimal": f"try_cast(trim({v}) as decimal(38, 12))",
        "bool": f"lower(trim({v})) in ('true', '1')",
    }
    expr = casts[col.type]
    if col.default is not None:
        expr = f"coalesce({expr}, {col.default})"
    return expr


def _reasons(source: Source) -> list[str]:
    reasons = []
    for col in source.columns:
        v = _value(col)
        if col.required:
            reasons.append(f"case when {v} is null then 'missing {col.name}' end")
        reasons.append(
            f"case when {v} is not null and not {_type_ok(col)} "
            f"then 'wrong type for {col.name}' end"
        )
        if col.min_value is not None:
            reasons.append(
                f"case when {_type_ok(col)} and try_cast(trim({v}) as bigint) < {col.min_value} "
                f"then '{col.name} below {col.min_value}' end"
            )
    if source.event_time:
        reasons.append(
            f"case when {_typed(source.columns_by_name[source.event_time])}::date "
            "not between $min_date and $max_date then 'event date outside the partition range' end"
        )
    return reasons


def validation_sql(source: Source) -> str:
    """SQL over ``records(line, raw)`` giving every record typed columns and a reason (or null)."""
    typed = ",\n        ".join(f"{c.name} := {_typed(c)}" for c in source.columns)
    reasons = ",\n                ".join(_reasons(source))
    return f"""
with decoded as (
    select line, try(decode(raw)) as raw_text from records
),
parsed as (
    select line, raw_text, try(json(raw_text)) as j
    from decoded
    where raw_text is null or trim(raw_text) <> ''
),{_fields_sql(source)},
checked as (
    select
        *,
        case
            when raw_text is null then 'not valid UTF-8'
            when j is null then 'invalid JSON'
            when doc_type <> 'OBJECT' then 'not a JSON object'
            else nullif(concat_ws('; ',
                {reasons}
            ), '')
        end as reason
    from fields
)
select
    line,
    -- the raw text is kept for quarantined records only (accepted ones never read it)
    case when reason is not null then coalesce(raw_text, '') end as raw_text,
    reason,
    case when reason is null then struct_pack(
        {typed}
    ) end as rec
from checked
"""


# -- one ingestion pass --------------------------------------------------------------------------
@dataclass
class _Pending:
    accepted: list[pa.Table] = field(default_factory=list)
    quarantined: list[pa.Table] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    rows: int = 0


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return con


def _known_digests(lakehouse: LakehouseResource, source: Source) -> set[str]:
    if not lakehouse.table_exists(LANDING_FILES_TABLE):
        return set()
    rows = lakehouse.scan(
        LANDING_FILES_TABLE, f"source == '{source.name}'", ("file_sha256",)
    ).column("file_sha256")
    return set(rows.to_pylist())


def _new_files(lakehouse: LakehouseResource, source: Source) -> tuple[list[tuple], int]:
    known = _known_digests(lakehouse, source)
    fresh, skipped = [], 0
    for path in landing_files(lakehouse.landing_path, source):
        digest = file_digest(path)
        if digest in known:
            skipped += 1
            continue
        known.add(digest)
        fresh.append((path, digest))
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
    checked = con.sql(sql, params=params or None).to_arrow_table()
    con.unregister("records")
    con.register("checked", checked)
    lineage = {"file": relpath, "sha": digest, "at": ingested_at}
    event_date = f", (rec.{source.event_time})::date as event_date" if source.event_time else ""
    accepted = con.sql(
        f"""select rec.*{event_date},
                $file as _source_file, line as _source_line,
                $sha as _file_sha256, $at as _ingested_at
            from checked where reason is null order by line""",
        params=lineage,
    ).to_arrow_table()
    quarantined = con.sql(
        f"""select '{source.name}' as source, $file as source_file, $sha as file_sha256,
                line as source_line, raw_text, reason, $at as ingested_at
            from checked where reason is not null order by line""",
        params=lineage,
    ).to_arrow_table()
    con.unregister("checked")
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


def _commit(lakehouse: LakehouseResource, source: Source, pending: _Pending) -> None:
    """Write one batch to the raw table, the quarantine and the file log, each exactly once."""
    batch_id = hashlib.sha256(
        "".join(sorted(f["file_sha256"] for f in pending.files)).encode()
    ).hexdigest()[:32]
    partition = ("event_date",) if source.event_time else ()
    schema = raw_schema(source)
    accepted = pa.concat_tables([t.cast(schema) for t in pending.accepted])
    quarantined = pa.concat_tables([t.cast(QUARANTINE_SCHEMA) for t in pending.quarantined])
    files = pa.Table.from_pylist(
        [{**f, "batch_id": batch_id} for f in pending.files], LANDING_FILES_SCHEMA
    )
    lakehouse.append_batch(source.table, accepted, batch_id, partition)
    lakehouse.append_batch(QUARANTINE_TABLE, quarantined, batch_id)
    # the file log is written last: a file counts as ingested only once its rows are in
    lakehouse.append_batch(LANDING_FILES_TABLE, files, batch_id)


def _touched(con: duckdb.DuckDBPyConnection, source: Source, accepted: pa.Table, summary) -> None:
    con.register("accepted", accepted)
    if source.event_time:
        rows = con.sql("select distinct event_date from accepted").fetchall()
        summary.touched_dates.update(r[0] for r in rows)
    for column in source.month_columns:
        rows = con.sql(
            f"select distinct date_trunc('month', {column})::date from accepted "
            f"where {column} is not null"
        ).fetchall()
        summary.touched_months.update(r[0] for r in rows)
    con.unregister("accepted")


def ingest_source(
    lakehouse: LakehouseResource,
    source: Source,
    date_range: tuple[dt.date, dt.date],
    ingested_at: dt.datetime | None = None,
) -> IngestSummary:
    """Ingest every landing file of ``source`` not yet ingested (by content)."""
    ensure_raw_tables(lakehouse, source)
    summary = IngestSummary(source.name)
    fresh, summary.skipped_files = _new_files(lakehouse, source)
    ingested_at = ingested_at or dt.datetime.now(dt.UTC)
    con = _connect()
    pending = _Pending()
    for path, digest in fresh:
        relpath = str(path.relative_to(lakehouse.landing_path))
        accepted, quarantined, record = _validate_file(
            con, source, path, digest, relpath, ingested_at, date_range
        )
        _touched(con, source, accepted, summary)
        pending.accepted.append(accepted)
        pending.quarantined.append(quarantined)
        pending.files.append(record)
        pending.rows += record["rows_in"]
        summary.digests.append(digest)
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
