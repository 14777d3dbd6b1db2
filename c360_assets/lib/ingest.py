"""Landing files -> raw Iceberg tables, once per file content, malformed records quarantined.

A file is identified by the SHA-256 of its bytes: the same file dropped again, under any name,
is skipped. Each record becomes a row of ``raw.<source>`` (typed, with lineage columns) or a row
of ``raw.quarantine`` (raw text + reason); per file, rows in = rows accepted + rows quarantined,
and that identity is stored in ``raw.landing_files`` where a check verifies it.

Every file is judged on its own. A record that can be delimited (a JSON line, a CSV row) is
quarantined alone; a file that cannot be read at all (empty, truncated, corrupt, a header lacking
a declared column) is quarantined whole: one ``raw.quarantine`` row with no line and the reason,
and a ``raw.landing_files`` row with that ``quarantine_reason`` and no rows. Either way the file
is recorded, so it is never read again, and every other file still lands.
"""

import csv
import datetime as dt
import gzip
import hashlib
import io
import re
import zlib
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
from c360_assets.lib.sqlquote import literal
from resources.lakehouse import LakehouseResource

JSON_LINES = (".jsonl", ".jsonl.gz")
FORMATS = (*JSON_LINES, ".csv", ".csv.gz", ".parquet")
QUARANTINE_TABLE = "raw.quarantine"
LANDING_FILES_TABLE = "raw.landing_files"
# Rows per commit: bounds memory on a peak day while keeping commits few.
BATCH_ROWS = 4_000_000
# Bytes Arrow's readers parse at once; a line longer than this is split by the exact reader.
BLOCK_BYTES = 64 << 20
# Files validated at once: DuckDB and Arrow release the GIL, so two files (and a commit) overlap.
WORKERS = 2
# RFC 3339 (and the space ISO 8601 allows): hours 00-23, minutes and seconds 00-59, an offset of
# at most 23:59; a lower-case t or z is RFC 3339 too (the cast sees the text upper-cased)
_TIMESTAMP = (
    r"\d{{4}}-\d{{2}}-\d{{2}}{t}([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{{1,9}})?"
    r"({z}|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)"
)
TIMESTAMP_RE = _TIMESTAMP.format(t="[Tt ]", z="[Zz]")
# the same in upper case, which DuckDB casts as it is (the general path upper-cases the text)
UPPER_TIMESTAMP_RE = _TIMESTAMP.format(t="[T ]", z="Z")
DATE_RE = r"\d{4}-\d{2}-\d{2}"
# A quarantined record's text is kept up to this many characters, with its length in bytes and
# its SHA-256 (a 70 MB line keeps its evidence without being stored whole).
RAW_TEXT_CAP = 65_536
# The event dates a row may carry: Python's dates (a raw row is read back into Python), whatever
# the partitions are (a row whose day has no partition yet waits in raw, DECISIONLOG §17). A
# timestamp of year 0000, or of 9999-12-31 with a negative offset, falls outside: quarantined.
ANY_DATE = (dt.date.min, dt.date.max)
# Characters an identifier never holds: C0 and C1 controls (NUL, ...), DEL, and the Unicode
# bidirectional marks, embeddings, overrides and isolates (text that displays reordered).
CONTROL_RE = r"[\x00-\x1f\x7f-\x9f]"
BIDI_RE = r"[\x{061c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]"


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
    quarantined_files: dict[str, str] = field(default_factory=dict)  # file -> why, whole
    undeclared_columns: dict[str, str] = field(default_factory=dict)  # file -> its extra columns


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


# -- reading any format as (line, raw) --------------------------------------------------------
class UnreadableFile(Exception):
    """A landing file holding no readable record at all (empty, truncated, corrupt, a header or
    schema that breaks the source's contract): it is quarantined whole with this reason."""


DEFECTS_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.binary()), ("reason", pa.string())])


@dataclass
class Records:
    """A landing file's records as ``(line, raw)`` (raw: the bytes of a JSON document), the
    records it delimits but cannot render (``DEFECTS_SCHEMA``: e.g. a CSV row with too many
    fields), and the columns it has that its source does not declare."""

    records: pa.Table
    defects: pa.Table = field(default_factory=DEFECTS_SCHEMA.empty_table)
    undeclared: tuple[str, ...] = ()


_LINE_END = re.compile(rb"\r\n|\r|\n")  # what every reader here ends a line at


def _content(path: Path) -> bytes:
    """The file's bytes, inflated when it is gzip-compressed (in one call: zlib releases the
    GIL); a stream that does not inflate, or inflates to nothing, is no file."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise UnreadableFile(f"not a complete gzip stream: {exc}") from exc
    if not data:
        raise UnreadableFile("empty file")
    return data


def _split_lines(data: bytes) -> pa.Array:
    """Every physical line, exactly (the slow path of ``_read_lines``, same lines)."""
    lines = _LINE_END.split(data)
    if data.endswith((b"\n", b"\r")):
        lines.pop()  # the terminator of the last line starts no line
    return pa.array(lines, pa.large_binary())


def _read_lines(path: Path) -> Records:
    """One record per physical line (1-based ``line``), as bytes; blank lines are dropped later."""
    if path.name.lower().endswith(".gz"):
        data = _content(path)
        source = pa.BufferReader(data)
    else:
        if path.stat().st_size == 0:
            raise UnreadableFile("empty file")
        data, source = None, path
    try:
        raw = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=["raw"], block_size=BLOCK_BYTES),
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
        ).column("raw")
    except pa.ArrowInvalid:  # a line holding the delimiter, or longer than a block
        raw = _split_lines(data if data is not None else path.read_bytes())
    lines = pa.array(range(1, len(raw) + 1), pa.int64())
    return Records(pa.table({"line": lines, "raw": raw}))


def _contract(source: Source, names: list[str]) -> tuple[str, ...]:
    """A header's (or schema's) columns against the declaration: the undeclared ones, or the
    reason the file cannot be read as the source's."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UnreadableFile(f"duplicate columns: {', '.join(duplicates)}")
    missing = [c.name for c in source.columns if c.name not in names]
    if missing:
        raise UnreadableFile(f"missing declared columns: {', '.join(missing)}")
    declared = source.columns_by_name
    return tuple(n for n in names if n not in declared)


def _csv_header(data: bytes) -> list[str]:
    """The column names on the first line (UTF-8, a byte-order mark allowed), trimmed."""
    end = _LINE_END.search(data)
    try:
        text = data[: end.start() if end else len(data)].decode("utf-8-sig")
        names = next(csv.reader([text], strict=True), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"unreadable CSV header: {exc}") from exc
    return [name.strip() for name in names]


def _physical_lines(data: bytes) -> int:
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (0 if data.endswith((b"\n", b"\r")) else 1)


def _csv_rows_fast(data: bytes, names: list[str], declared: list[str]) -> pa.Table | None:
    """The declared columns of every row (as text), with Arrow's multithreaded reader; None when
    the file needs the exact reader: a row of the wrong width, a blank line, a value spanning
    lines (each would move the rows off their line numbers) or text that is not UTF-8."""
    invalid = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            # only an empty field is null: pyarrow's default null markers would also turn
            # values such as "NA" (North America), "N/A" or "null" into nulls
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in names},
                include_columns=declared,
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        if invalid or table.num_rows + 1 != _physical_lines(data):
            return None
        columns = {n: table.column(n).cast(pa.string()) for n in declared}  # checks UTF-8
    except pa.ArrowInvalid:
        return None
    lines = pa.array(range(2, table.num_rows + 2), pa.int64())
    return pa.table({"line": lines, **columns})


def _csv_rows_exact(data: bytes, names: list[str], declared: list[str]) -> tuple[pa.Table, list]:
    """Row by row with the exact line each starts on: blank lines are no records; a row of the
    wrong width or with bytes that are not UTF-8 is a defect (its own text kept as evidence)."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long value is a value
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    consumed: list[str] = []

    def physical() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    positions = [names.index(n) for n in declared]
    rows: dict[str, list] = {"line": [], **{n: [] for n in declared}}
    defects: list[tuple[int, bytes, str]] = []
    reader = csv.reader(physical())
    next(reader)  # the header
    line = len(consumed) + 1
    consumed.clear()
    try:
        for row in reader:
            first, evidence = line, "".join(consumed).rstrip("\r\n")
            line += len(consumed)
            consumed.clear()
            if not row:
                continue  # a blank line
            raw = evidence.encode("utf-8", "surrogateescape")
            if len(row) != len(names):
                defects.append((first, raw, f"expected {len(names)} fields, found {len(row)}"))
                continue
            values = [row[i] for i in positions]
            try:
                "".join(values).encode("utf-8")
            except UnicodeEncodeError:
                defects.append((first, raw, "not valid UTF-8"))
                continue
            rows["line"].append(first)
            for name, value in zip(declared, values, strict=True):
                rows[name].append(value if value != "" else None)
    except csv.Error as exc:  # nothing after it can be delimited
        raise UnreadableFile(f"unreadable CSV from line {line}: {exc}") from exc
    table = pa.table(
        {k: pa.array(v, pa.int64() if k == "line" else pa.string()) for k, v in rows.items()}
    )
    return table, defects


def _read_csv(path: Path, source: Source) -> tuple[pa.Table, pa.Table, tuple[str, ...]]:
    data = _content(path)
    names = _csv_header(data)
    undeclared = _contract(source, names)
    declared = [c.name for c in source.columns]
    rows = _csv_rows_fast(data, names, declared)
    defects: list[tuple[int, bytes, str]] = []
    if rows is None:
        rows, defects = _csv_rows_exact(data, names, declared)
    found = [{"line": n, "raw": r, "reason": why} for n, r, why in defects]
    return rows, pa.Table.from_pylist(found, DEFECTS_SCHEMA), undeclared


def _read_parquet(path: Path, source: Source) -> tuple[pa.Table, tuple[str, ...]]:
    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(f"unreadable Parquet: {exc}") from exc
    undeclared = _contract(source, data.column_names)
    columns = [data.column(c.name) for c in source.columns]
    for col, values in zip(source.columns, columns, strict=True):
        try:  # a Parquet string is UTF-8 by the format's definition: one that is not is corrupt
            values.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise UnreadableFile(f"unreadable Parquet: column {col.name}: {exc}") from exc
    lines = pa.array(range(1, data.num_rows + 1), pa.int64())
    rows = pa.table([lines, *columns], names=["line", *(c.name for c in source.columns)])
    return rows, undeclared


def _render(con: duckdb.DuckDBPyConnection, rows: pa.Table, source: Source) -> pa.Table:
    """The declared columns of each tabular row as one JSON object (in declaration order), so
    every format is validated by the same SQL; undeclared columns land nowhere."""
    fields = ", ".join(f'"{c.name}" := t."{c.name}"' for c in source.columns)
    con.register("tabular", rows)
    try:
        rendered = con.sql(
            f"select line, to_json(struct_pack({fields}))::blob as raw from tabular as t"
        ).to_arrow_table()
    finally:
        con.unregister("tabular")
    return rendered.sort_by("line")


def read_records(path: Path, con: duckdb.DuckDBPyConnection, source: Source) -> Records:
    """A landing file's records; raises ``UnreadableFile`` for a file with none readable."""
    name = path.name.lower()
    if name.endswith(JSON_LINES):
        return _read_lines(path)
    if name.endswith(".parquet"):
        rows, undeclared = _read_parquet(path, source)
        try:
            return Records(_render(con, rows, source), undeclared=undeclared)
        except duckdb.InvalidInputException as exc:  # e.g. a string column that is not UTF-8
            raise UnreadableFile(f"unreadable Parquet: {exc}") from exc
    rows, defects, undeclared = _read_csv(path, source)
    return Records(_render(con, rows, source), defects, undeclared)


# -- validation SQL, generated from the source declaration ---------------------------------------
def _value(col: Column) -> str:
    """The field as text: a column of ``fields``, extracted once per record."""
    return f'"v_{col.name}"'


def _kind(col: Column) -> str:
    """The field's JSON type: a column of ``fields``, extracted once per record."""
    return f'"k_{col.name}"'


# A record in its producer's canonical form -- the declared fields in declaration order (an
# optional field but the first may be absent), no whitespace, ASCII strings without escapes, plain
# numbers, timestamps and dates of the checked shape -- is parsed by ONE ``from_json`` into a typed
# struct and judged by a query of its own (``canonical_sql``): no JSON type probe, no per-field
# text extraction, and only the verdicts such a record can get. Every other record (reordered
# keys, nulls, escapes, spaces, bad text) goes through the general query (``general_sql``). Both
# give every record the same casts, verdicts and reasons (tests prove it line by line).
#
# A record is proved canonical by rebuilding its text from the parsed values (``_canonical_text``):
# the line is valid JSON (``json_valid``, which rejects a control character inside a string) with
# no backslash (so no escape: every string's value is its text between the quotes, and holds no
# quote), no DEL and only ASCII, and it equals the canonical text of its parsed values.
# ``from_json`` takes a key's first occurrence. The line starts with '{"<first key>":', so its first
# member's value is the token up to the next separator, which is the parsed value; the next member
# starts right after it, and so on: every member, in order, is the declared key with exactly the
# parsed value, and nothing else is in the line. A timestamp's or date's text is then checked for
# its shape, as the general path does (a timestamp's in upper case: one with a lower-case "t" or
# "z" takes the general path, which upper-cases it for the cast). A regular expression of the
# whole line proved the same at about twice the cost of the rebuilt text and the timestamp's own.
_SHAPE = {  # column type -> (the expression its text must match, its type in the parsed struct)
    "string": (None, "VARCHAR"),
    "timestamp": (UPPER_TIMESTAMP_RE, "VARCHAR"),
    "date": (DATE_RE, "VARCHAR"),
    "int": (None, "BIGINT"),
    "bool": (None, "BOOLEAN"),
}


def has_canonical_path(source: Source) -> bool:
    """Whether the source's records can take the canonical path (every column type in
    ``_SHAPE``; a decimal's text must keep going through the general path's extraction)."""
    return all(c.type in _SHAPE for c in source.columns)


def _always_present(source: Source, col: Column) -> bool:
    """A required field, or the first (a canonical record starts with it)."""
    return col.required or col is source.columns[0]


def _canonical_text(source: Source) -> str:
    """SQL: the canonical text of the parsed struct ``c``. ``concat`` leaves a null argument
    out: an absent optional field (its name with its value, null together) is left out; a null
    required field is caught apart (``_canonical_test``)."""
    parts = ["'{'"]
    for i, col in enumerate(source.columns):
        quote = '"' if _SHAPE[col.type][1] == "VARCHAR" else ""
        value = f'c."{col.name}"' + ("" if quote else "::varchar")
        member = [f"""'{"," if i else ""}"{col.name}":{quote}'""", value]
        member += [f"'{quote}'"] if quote else []
        parts += member if _always_present(source, col) else [" || ".join(member)]
    parts.append("'}'")
    return f"concat({', '.join(parts)})"


def _canonical_test(source: Source) -> str:
    """SQL over ``raw_text`` and its parsed struct ``c``: whether the record is in canonical
    form (its text rebuilt, its timestamps' and dates' text of their shape)."""
    tests = [
        f'c."{col.name}" is not null' for col in source.columns if _always_present(source, col)
    ]
    tests.append(f"{_canonical_text(source)} = raw_text")
    for col in source.columns:
        shape = _SHAPE[col.type][0]
        if shape is not None:
            match = f"""regexp_full_match(c."{col.name}", '{shape}')"""
            tests.append(match if col.required else f'(c."{col.name}" is null or {match})')
    return f"coalesce({' and '.join(tests)}, false)"


# Whether a line may be canonical, and can be parsed by ``from_json`` (which raises on text that is
# not JSON): ASCII, no backslash, no DEL, valid JSON (the cheapest tests first).
_PARSEABLE = (
    "strlen(raw_text) = length(raw_text) and not contains(raw_text, '\\') "
    "and not contains(raw_text, chr(127)) and json_valid(raw_text)"
)


def _canonical_struct(source: Source) -> str:
    """The ``from_json`` structure of a canonical record."""
    return "{" + ", ".join(f'"{c.name}": "{_SHAPE[c.type][1]}"' for c in source.columns) + "}"


# The records of ``records(line, raw)`` as text; blank lines are no records (a line starting
# with "{" is not blank: only the other lines are trimmed to find out)
_DECODED_SQL = """
decoded as (
    select line, raw, try(decode(raw)) as raw_text from {relation}
),
shaped as (
    select line, raw, raw_text from decoded
    where case when raw_text like '{{%' then true else raw_text is null or trim(raw_text) <> '' end
)"""


def _general_fields_sql(source: Source) -> str:
    """Every field's text and JSON type (parsed once: ``json_extract_string`` / ``json_type``
    with a list of paths parse the document once, not once per field)."""
    paths = ", ".join(f"'$.{c.name}'" for c in source.columns)
    declared = ", ".join(f"'{c.name}'" for c in source.columns)
    values = ", ".join(f'v[{i}] as "v_{c.name}"' for i, c in enumerate(source.columns, start=1))
    kinds = ", ".join(f'k[{i}] as "k_{c.name}"' for i, c in enumerate(source.columns, start=1))
    return f"""
parsed as (
    select line, raw, raw_text, try(json(raw_text)) as j from shaped
),
probed as (
    select
        line,
        raw,
        raw_text,
        json_type(j) as doc_type,
        case when json_type(j) = 'OBJECT' then json_extract_string(j, [{paths}]) end as v,
        case when json_type(j) = 'OBJECT' then json_type(j, [{paths}]) end as k,
        -- the keys no column declares: schema drift, reported
        case when json_type(j) = 'OBJECT' then nullif(list_filter(
            json_keys(j), lambda key: not list_contains([{declared}], key)
        ), []) end as undeclared
    from parsed
),
fields as (
    select line, raw, raw_text, doc_type, {values}, {kinds}, undeclared from probed
)"""


def _cast(col: Column) -> str:
    """The field's typed value (null when absent or not castable)."""
    v = _value(col)
    casts = {
        "string": v,
        "int": f"try_cast(trim({v}) as bigint)",
        "timestamp": f"try_cast(upper(trim({v})) as timestamptz)",
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
        # an integer literal of any length (a JSON number DuckDB holds as UBIGINT or DOUBLE
        # keeps its digits in the text); whether it is in range is judged apart
        "int": f"({k} = 'BIGINT' or ({k} in ('UBIGINT', 'DOUBLE', 'VARCHAR') "
        f"and regexp_full_match(trim({v}), '[+-]?[0-9]+')))",
        "timestamp": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '{TIMESTAMP_RE}') "
        f"and {t} is not null)",
        "date": f"({k} = 'VARCHAR' and regexp_full_match(trim({v}), '{DATE_RE}') "
        f"and {t} is not null)",
        "decimal": f"({k} in ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE') and {t} is not null)",
        "bool": f"({k} = 'BOOLEAN' or lower(trim({v})) in ('true', 'false', '1', '0'))",
    }
    return checks[col.type]


def _canonical_cast(col: Column) -> str:
    """The typed value of a canonical record's field: ``from_json`` gave strings, integers and
    booleans their type; a timestamp or date is cast from its text as on the general path (the
    text has no surrounding whitespace to trim, and a timestamp's is in upper case already)."""
    field = f'c."{col.name}"'
    if col.type == "timestamp":
        return f"try_cast({field} as timestamptz)"
    if col.type == "date":
        return f"try_cast({field} as date)"
    return field


def _overflow(col: Column) -> str:
    """The sign of an integer literal outside the 64-bit range (its cast is null), else null."""
    v, t = _value(col), f'"t_{col.name}"'
    return (
        f"case when {v} is not null and {t} is null "
        f"then case when starts_with(trim({v}), '-') then -1 else 1 end end"
    )


def _typed_sql(source: Source, canonical: bool) -> str:
    """Each field cast once (``t_<name>``) and whether it is present with a wrong type
    (``bad_<name>``); on the general path also whether it is absent (``m_<name>``) and, for an
    integer, the sign of a literal outside the 64-bit range (``o_<name>``). A canonical record
    has every required field and each field of its type but a timestamp's or date's text that
    does not cast; its integers are within the range (``from_json`` gives one outside null, and
    its text is then not rebuilt)."""
    if canonical:
        casts = [f'{_canonical_cast(c)} as "t_{c.name}"' for c in source.columns]
        verdicts = [
            f'c."{c.name}" is not null and "t_{c.name}" is null as "bad_{c.name}"'
            for c in source.columns
            if c.type in ("timestamp", "date")
        ]
    else:
        casts = [f'{_cast(c)} as "t_{c.name}"' for c in source.columns]
        verdicts = []
        for c in source.columns:
            bad = f"{_value(c)} is not null and not {_type_ok(c)}"
            verdicts += [f'{bad} as "bad_{c.name}"', f'{_value(c)} is null as "m_{c.name}"']
            verdicts += [f'{_overflow(c)} as "o_{c.name}"'] if c.type == "int" else []
    return f"""
cast_fields as (
    select *, {", ".join(casts)}
    from fields
),
typed as (
    select *{"".join(f", {v}" for v in verdicts)}
    from cast_fields
)"""


# A reason: the condition under which a record gets it, and its text
Reason = tuple[str, str]


def _range_reasons(col: Column, canonical: bool) -> list[Reason]:
    """An integer below its minimum or above its maximum (declared, or the 64-bit range, which a
    canonical record's integer is within)."""
    t, bad, sign = f'"t_{col.name}"', f'"bad_{col.name}"', f'"o_{col.name}"'
    below, above = ([], []) if canonical else ([f"{sign} = -1"], [f"{sign} = 1"])
    if col.min_value is not None:
        below.append(f"{t} < {col.min_value}")
    if col.max_value is not None:
        above.append(f"{t} > {col.max_value}")
    guard = "" if canonical else f"not {bad} and "
    return [
        (f"{guard}({' or '.join(tests)})", f"{col.name} {side} {bound}")
        for tests, side, bound in ((below, "below", col.lowest), (above, "above", col.highest))
        if tests
    ]


def _identifier_reasons(source: Source) -> list[Reason]:
    """Identifiers holding a control or bidirectional character (a canonical record, printable
    ASCII only, holds none)."""
    return [
        (f"regexp_matches({_value(col)}, '{pattern}')", f"{what} character in {col.name}")
        for col in source.columns
        if col.identifier
        for pattern, what in ((CONTROL_RE, "control"), (BIDI_RE, "bidirectional control"))
    ]


def _reasons(source: Source, canonical: bool) -> list[Reason]:
    """Every reason a record can get, in the order its text lists them; a canonical record's
    query leaves out those it cannot get (see ``_typed_sql``)."""
    reasons = []
    for col in source.columns:
        if col.required and not canonical:
            reasons.append((f'"m_{col.name}"', f"missing {col.name}"))
        if not canonical or col.type in ("timestamp", "date"):
            reasons.append((f'"bad_{col.name}"', f"wrong type for {col.name}"))
        if col.type == "int":
            reasons += _range_reasons(col, canonical)
    if not canonical:
        reasons += _identifier_reasons(source)
    if source.event_time:
        # the UTC day (sessions are in UTC) outside the range: before its first or after its last
        first, last = (d.isoformat() for d in ANY_DATE)
        reasons.append(
            (
                f'"t_{source.event_time}" not between '
                f"timestamptz '{first} 00:00:00+00' and timestamptz '{last} 23:59:59.999999+00'",
                f"event date outside {first}..{last}",
            )
        )
    return reasons


def _reason(reasons: list[Reason]) -> str:
    """SQL: the texts of the reasons that hold, joined by "; ", or null. The join is built only
    for a record with one (most records have none)."""
    if not reasons:  # e.g. a canonical record of a source of strings only
        return "null::varchar"
    texts = ",\n        ".join(f"case when {cond} then '{text}' end" for cond, text in reasons)
    any_holds = " or ".join(f"({cond})" for cond, _ in reasons)
    return f"case when {any_holds} then concat_ws('; ',\n        {texts}\n    ) end"


def _final(col: Column) -> str:
    expr = f'"t_{col.name}"'
    return f"coalesce({expr}, {col.default})" if col.default is not None else expr


def _verdict_sql(source: Source, canonical: bool) -> str:
    """The reason of each record of ``typed`` (or null) and its typed values: the columns both
    queries give (``canonical_sql`` adds ``canonical``)."""
    typed = ",\n        ".join(f"{c.name} := {_final(c)}" for c in source.columns)
    reason = _reason(_reasons(source, canonical))
    if not canonical:
        reason = f"""case
        when raw_text is null then 'not valid UTF-8'
        when doc_type is null then 'invalid JSON'
        when doc_type <> 'OBJECT' then 'not a JSON object'
        else {reason}
    end"""
    event_date = (
        f',\n    case when reason is null then "t_{source.event_time}"::date end as event_date'
        if source.event_time
        else ""
    )
    flag = "canonical, " if canonical else ""
    undeclared = "null::varchar[] as undeclared" if canonical else "undeclared"
    # the raw bytes are kept for quarantined records only (accepted ones never read them); the
    # canonical query keeps those of the records it leaves to the general one too
    keep = "not canonical or reason is not null" if canonical else "reason is not null"
    return f"""
checked as (
    select *, {reason} as reason
    from typed
)
select
    line,
    {flag}case when {keep} then raw end as raw,
    reason,
    {undeclared},
    case when reason is null then struct_pack(
        {typed}
    ) end as rec{event_date}
from checked
"""


def general_sql(source: Source, relation: str = "records") -> str:
    """SQL over ``relation(line, raw)`` giving every record typed columns and a reason (or
    null); a quarantined record keeps its ``raw`` bytes (``_evidence`` renders them);
    ``undeclared`` lists the keys of a JSON object that no column declares."""
    return f"""
with {_DECODED_SQL.format(relation=relation)},{_general_fields_sql(source)},
{_typed_sql(source, canonical=False)},{_verdict_sql(source, canonical=False)}"""


def canonical_sql(source: Source) -> str:
    """SQL over ``records(line, raw)``: whether each record is canonical (``canonical``) and,
    for a canonical one, what ``general_sql`` gives it; a record that is not keeps its ``raw``
    bytes for the general query."""
    return f"""
with {_DECODED_SQL.format(relation="records")},
parsed as (
    select
        line,
        raw,
        raw_text,
        case when {_PARSEABLE} then from_json(raw_text, '{_canonical_struct(source)}') end as c
    from shaped
),
fields as (
    select line, raw, c, {_canonical_test(source)} as canonical from parsed
),{_typed_sql(source, canonical=True)},{_verdict_sql(source, canonical=True)}"""


@dataclass
class Verdicts:
    """Every record's verdict in two tables of ``general_sql``'s columns: the accepted records
    (reason null) and the quarantined ones, each in no useful order (the quarantine is put in
    line order when it is written; the raw table keeps no order)."""

    accepted: pa.Table
    rejected: pa.Table

    @classmethod
    def split(cls, rows: pa.Table, among: pa.ChunkedArray | None = None) -> "Verdicts":
        """The rows (those ``among`` selects, when given) by their reason."""
        accepted = pc.is_null(rows.column("reason"))
        rejected = pc.invert(accepted)
        if among is not None:
            accepted, rejected = pc.and_(among, accepted), pc.and_(among, rejected)
        return cls(rows.filter(accepted), rows.filter(rejected))

    def __add__(self, other: "Verdicts") -> "Verdicts":
        schema = self.accepted.schema
        return Verdicts(
            pa.concat_tables([self.accepted, other.accepted.cast(schema)]),
            pa.concat_tables([self.rejected, other.rejected.cast(schema)]),
        )

    @property
    def records(self) -> int:
        return self.accepted.num_rows + self.rejected.num_rows

    def rows(self) -> pa.Table:
        """Every record in line order."""
        return pa.concat_tables([self.accepted, self.rejected]).sort_by("line")


def validate(
    con: duckdb.DuckDBPyConnection, source: Source, canonical_path: bool = True
) -> Verdicts:
    """Every record of the ``records(line, raw)`` relation with its typed values and reason.
    The canonical query's rows are selected once, straight into the accepted and the rejected
    (a 1M-line file's rows are copied once, not split by path and then by verdict).
    ``canonical_path=False`` sends every record through the general query (tests compare
    both)."""
    # in input order: a file's lines are numbered as they are read (``row_number() over ()``)
    con.execute("set preserve_insertion_order = true")
    try:
        if not (canonical_path and has_canonical_path(source)):
            return Verdicts.split(con.sql(general_sql(source)).to_arrow_table())
        judged = con.sql(canonical_sql(source)).to_arrow_table()
        canonical = judged.column("canonical")
        con.register("noncanonical", judged.filter(pc.invert(canonical)).select(["line", "raw"]))
        try:
            others = Verdicts.split(con.sql(general_sql(source, "noncanonical")).to_arrow_table())
        finally:
            con.unregister("noncanonical")
        return Verdicts.split(judged.drop_columns(["canonical"]), among=canonical) + others
    finally:
        con.execute("set preserve_insertion_order = false")


EVIDENCE_SQL = """
select
    line,
    left(try(decode(raw)), $cap) as raw_text,
    reason,
    octet_length(raw) as raw_bytes,
    sha256(raw) as raw_sha256,
    case when try(decode(raw)) is null then raw[:$cap] end as undecodable
from rejects
order by line
"""


def _escaped(raw: bytes) -> str:
    """Text that is not valid UTF-8, readable: each byte that is not part of a UTF-8 character
    becomes ``\\xhh`` (the record's length and digest identify the exact bytes)."""
    return raw.decode("utf-8", "backslashreplace")[:RAW_TEXT_CAP]


def _evidence(con: duckdb.DuckDBPyConnection, rejects: pa.Table) -> pa.Table:
    """What the quarantine keeps of each rejected ``(line, raw, reason)``: its text, cut at
    ``RAW_TEXT_CAP`` characters (bytes that are not UTF-8 escaped), its length in bytes and its
    SHA-256, in line order."""
    con.register("rejects", rejects)
    try:
        evidence = con.sql(EVIDENCE_SQL, params={"cap": RAW_TEXT_CAP}).to_arrow_table()
    finally:
        con.unregister("rejects")
    undecodable = evidence.column("undecodable")
    if undecodable.null_count < len(undecodable):
        texts = [
            text if raw is None else _escaped(raw)
            for text, raw in zip(
                evidence.column("raw_text").to_pylist(), undecodable.to_pylist(), strict=True
            )
        ]
        evidence = evidence.set_column(
            evidence.schema.get_field_index("raw_text"), "raw_text", pa.array(texts, pa.string())
        )
    return evidence.drop_columns(["undecodable"])


# -- one ingestion pass --------------------------------------------------------------------------
@dataclass
class _Pending:
    accepted: list[pa.Table] = field(default_factory=list)
    quarantined: list[pa.Table] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    rows: int = 0
    days: set[dt.date] = field(default_factory=set)  # the event dates of the accepted rows


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
    unseen, skipped = [], 0
    for path in landing_files(lakehouse.landing_path, source):
        stat_key = _stat_key(str(path.relative_to(lakehouse.landing_path)), path)
        if stat_key in ingested_stats:
            skipped += 1
        else:
            unseen.append((path, stat_key))
    with ThreadPoolExecutor(WORKERS) as pool:  # hashlib hashes a large chunk without the GIL
        digests = list(pool.map(file_digest, [path for path, _ in unseen]))
    fresh = []
    for (path, stat_key), digest in zip(unseen, digests, strict=True):
        if digest in known:
            skipped += 1
            continue
        known.add(digest)
        fresh.append((path, digest, stat_key))
    return fresh, skipped


def _repeat(value, kind: pa.DataType, rows: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), rows)


_FILE_TEXT = pa.dictionary(pa.int32(), pa.string())  # one text per file, e.g. its path


def _per_file(text: str, rows: int) -> pa.DictionaryArray:
    """A text every row of a file has (its path, its digest): stored once, each row an index to
    it (a file's million rows do not each hold a copy)."""
    return pa.DictionaryArray.from_arrays(
        _repeat(0, _FILE_TEXT.index_type, rows), pa.array([text], _FILE_TEXT.value_type)
    )


_AT_TYPE = pa.timestamp("us", tz="UTC")


def _quarantine_rows(
    source: Source, relpath: str, digest: str, ingested_at: dt.datetime, evidence: pa.Table
) -> pa.Table:
    rows = evidence.num_rows
    return pa.table(
        {
            "source": _repeat(source.name, pa.string(), rows),
            "source_file": _repeat(relpath, pa.string(), rows),
            "file_sha256": _repeat(digest, pa.string(), rows),
            "source_line": evidence.column("line"),
            "raw_text": evidence.column("raw_text"),
            "reason": evidence.column("reason"),
            "ingested_at": _repeat(ingested_at, _AT_TYPE, rows),
            "raw_bytes": evidence.column("raw_bytes"),
            "raw_sha256": evidence.column("raw_sha256"),
        }
    )


def _file_record(source: Source, relpath: str, digest: str, ingested_at: dt.datetime) -> dict:
    return {
        "source": source.name,
        "source_file": relpath,
        "file_sha256": digest,
        "ingested_at": ingested_at,
    }


def _unreadable(
    source: Source, path: Path, digest: str, relpath: str, ingested_at: dt.datetime, reason: str
) -> tuple[pa.Table, pa.Table, dict]:
    """A file quarantined whole: one quarantine row without a line (its evidence is the file
    itself: its size and digest; it stays in the landing zone) and a file record with no rows."""
    evidence = pa.table(
        {
            "line": pa.array([None], pa.int64()),
            "raw_text": pa.array([None], pa.string()),
            "reason": [reason],
            "raw_bytes": [path.stat().st_size],
            "raw_sha256": [digest],
        }
    )
    record = {
        **_file_record(source, relpath, digest, ingested_at),
        "rows_in": 0,
        "rows_accepted": 0,
        "rows_quarantined": 0,
        "quarantine_reason": reason,
        "undeclared_columns": None,
    }
    quarantined = _quarantine_rows(source, relpath, digest, ingested_at, evidence)
    return accepted_schema(source).empty_table(), quarantined, record


@dataclass
class _Checked:
    """A file's records through validation, with what its reader found apart: the records it
    delimits but cannot render (``DEFECTS_SCHEMA``) and its header's or schema's columns no
    declaration names."""

    verdicts: Verdicts
    defects: pa.Table = field(default_factory=DEFECTS_SCHEMA.empty_table)
    undeclared_header: tuple[str, ...] = ()

    def undeclared(self) -> list[str]:
        """The file's columns no declaration names: its header's or schema's, else the keys of
        its JSON objects."""
        if self.undeclared_header:
            return list(self.undeclared_header)
        verdicts = (self.verdicts.accepted, self.verdicts.rejected)
        keys = pc.list_flatten(pa.concat_tables(t.select(["undeclared"]) for t in verdicts)[0])
        return sorted(pc.unique(keys).to_pylist()) if len(keys) else []


# The physical lines of a JSON-lines file (gzip or not) read by DuckDB itself, cut at "\n" only,
# as text. A file it cannot cut exactly as ``_read_lines`` does -- a "\r" line end, bytes that
# are not UTF-8, a line holding the delimiter or longer than its limit, a broken gzip stream --
# stops it with an error and is read by ``_read_lines``. A blank line is a row (null), so the
# rows numbered in file order are the lines.
DUCKDB_LINES_SQL = """
select row_number() over () as line, encode(coalesce(raw, '')) as raw
from read_csv(
    {path},
    columns = {{'raw': 'VARCHAR'}},
    compression = '{compression}',
    delim = chr(30),
    quote = '',
    escape = '',
    comment = '',
    new_line = '\\n',
    header = false,
    skip = 0,
    auto_detect = false,
    strict_mode = true
)
"""


def _validated_json_lines(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path
) -> Verdicts | None:
    """The validation of a JSON-lines file read by DuckDB (no copy of its text through Python),
    or None when DuckDB's reader cannot give its exact lines (or gives none: an empty file is
    judged by ``_read_lines``)."""
    compression = "gzip" if path.name.lower().endswith(".gz") else "none"
    lines = DUCKDB_LINES_SQL.format(path=literal(str(path)), compression=compression)
    con.execute(f"create or replace temp view records as {lines}")
    try:
        checked = validate(con, source)
    except (duckdb.InvalidInputException, duckdb.IOException):
        return None
    finally:
        con.execute("drop view records")
    return checked if checked.records else None


def _check_file(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> _Checked:
    """Validate a file's records: a JSON-lines file's lines as DuckDB reads them (no record
    through Python, no reader defect, no header), else the records ``read_records`` gives."""
    if path.name.lower().endswith(JSON_LINES):
        rows = _validated_json_lines(con, source, path)
        if rows is not None:
            return _Checked(rows)
    read = read_records(path, con, source)
    con.register("records", read.records)
    try:
        return _Checked(validate(con, source), read.defects, read.undeclared)
    finally:
        con.unregister("records")


def _validate_file(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    digest: str,
    relpath: str,
    ingested_at: dt.datetime,
) -> tuple[pa.Table, pa.Table, dict]:
    try:
        found = _check_file(con, source, path)
    except UnreadableFile as exc:  # named by its landing path (a reader may name the absolute)
        reason = str(exc).replace(str(path), relpath)
        return _unreadable(source, path, digest, relpath, ingested_at, reason)
    kept, dropped = found.verdicts.accepted, found.verdicts.rejected
    rec_type = kept.schema.field("rec").type
    parts = [chunk.flatten() for chunk in kept.column("rec").chunks]
    columns = {
        f.name: pa.chunked_array([part[i] for part in parts], f.type)
        for i, f in enumerate(rec_type)
    }
    if source.event_time:
        columns["event_date"] = kept.column("event_date")
    accepted = pa.table(
        {
            **columns,
            "_source_file": _per_file(relpath, kept.num_rows),
            "_source_line": kept.column("line"),
            "_file_sha256": _per_file(digest, kept.num_rows),
            "_ingested_at": _repeat(ingested_at, _AT_TYPE, kept.num_rows),
        }
    )
    # the records the SQL rejected and those the reader could not render, in line order
    rejects = pa.concat_tables(
        [dropped.select(["line", "raw", "reason"]).cast(DEFECTS_SCHEMA), found.defects]
    )
    evidence = _evidence(con, rejects)
    quarantined = _quarantine_rows(source, relpath, digest, ingested_at, evidence)
    record = {
        **_file_record(source, relpath, digest, ingested_at),
        "rows_in": found.verdicts.records + found.defects.num_rows,
        "rows_accepted": accepted.num_rows,
        "rows_quarantined": quarantined.num_rows,
        "quarantine_reason": None,
        "undeclared_columns": ", ".join(found.undeclared()) or None,
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
        # the quarantined record's length in bytes and SHA-256 (raw_text may be cut short);
        # for a file quarantined whole (source_line null): the file's
        ("raw_bytes", pa.int64()),
        ("raw_sha256", pa.string()),
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
        # why the file was quarantined whole (no record read), else null
        ("quarantine_reason", pa.string()),
        # the columns of its header or schema that the source does not declare (landed nowhere)
        ("undeclared_columns", pa.string()),
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


def accepted_schema(source: Source) -> pa.Schema:
    """The accepted rows of one file as validation gives them: ``raw_schema`` with the file's
    path and digest dictionary-encoded (``_per_file``)."""
    schema = raw_schema(source)
    for name in ("_source_file", "_file_sha256"):
        i = schema.get_field_index(name)
        schema = schema.set(i, schema.field(i).with_type(_FILE_TEXT))
    return schema


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
    schema = accepted_schema(source)
    log = [
        pa.Table.from_pylist([{**f, "batch_id": batch_id}], LANDING_FILES_SCHEMA)
        for f in pending.files
    ]
    batches = {
        source.table: ([t.cast(schema) for t in pending.accepted], partition),
        QUARANTINE_TABLE: ([t.cast(QUARANTINE_SCHEMA) for t in pending.quarantined], ()),
        LANDING_FILES_TABLE: (log, ()),
    }
    # a batch of one day (a day's files as they land) is written without the partitioned writer
    one_day = len(pending.days) == 1
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
                one_partition=bool(partition_by) and one_day,
            )
            con.unregister("batch")
    finally:
        con.close()


def _touched(
    con: duckdb.DuckDBPyConnection, source: Source, accepted: pa.Table
) -> tuple[set[dt.date], set[dt.date]]:
    """The UTC days and months the accepted rows fall in."""
    days: set[dt.date] = set()
    months: set[dt.date] = set()
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


def _ingest_file(source: Source, path: Path, digest: str, relpath: str, ingested_at):
    """Validate one file on its own DuckDB connection (files run in parallel threads)."""
    con = connect()
    try:
        accepted, quarantined, record = _validate_file(
            con, source, path, digest, relpath, ingested_at
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
    *,
    ingested_at: dt.datetime | None = None,
) -> IngestSummary:
    """Ingest every landing file of ``source`` not yet ingested (by content).

    One ingestion of a source at a time, wherever it runs: the source's lease in the catalog's
    database is held from listing the new files to logging them, so a second run waits and then
    finds them ingested.
    """
    with lakehouse.lease(f"ingest/{source.name}"):
        return _ingest_source(lakehouse, source, ingested_at)


def _ingest_source(
    lakehouse: LakehouseResource,
    source: Source,
    ingested_at: dt.datetime | None,
) -> IngestSummary:
    ensure_raw_tables(lakehouse, source)
    summary = IngestSummary(source.name)
    fresh, summary.skipped_files = _new_files(lakehouse, source)
    ingested_at = ingested_at or dt.datetime.now(dt.UTC)
    jobs = [(source, path, digest, relpath, ingested_at) for path, digest, (relpath, *_) in fresh]
    stats = {digest: stat_key for _, digest, stat_key in fresh}
    pending = _Pending()
    for result in _in_order(_ingest_file, jobs, WORKERS):
        record = result.record
        _, record["file_size"], record["file_mtime_ns"] = stats[record["file_sha256"]]
        summary.touched_dates |= result.days
        pending.days |= result.days
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
        if record["quarantine_reason"] is not None:
            summary.quarantined_files[record["source_file"]] = record["quarantine_reason"]
        if record["undeclared_columns"] is not None:
            summary.undeclared_columns[record["source_file"]] = record["undeclared_columns"]
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
            f", {len(s.quarantined_files)} files quarantined whole"
        )
