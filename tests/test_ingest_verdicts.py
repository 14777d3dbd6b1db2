"""Ingestion verdicts pinned per input: one table of values and the verdict each must get (the
value that lands, or the quarantine reason), checked on every validation path: the SQL's
canonical fast path and its general path, and a landing file of each format (JSON lines, CSV,
Parquet with text columns, Parquet with typed columns).

A value lands only as itself or not at all: a number outside its declared range is quarantined
with the range it broke, a timestamp is RFC 3339 or it is quarantined.
"""

import csv
import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from c360_assets.defs.ingest.sources import USAGE
from c360_assets.lib.ingest import _validate_file
from c360_assets.lib.sqlmodel import connect
from tests.test_ingest_validation import _validate_lines

OUTSIDE_DATES = "event date outside 0001-01-01..9999-12-31"


@dataclass(frozen=True)
class Lands:
    """Accepted: this value lands in the raw table."""

    value: object


@dataclass(frozen=True)
class Quarantined:
    """Quarantined with exactly this reason."""

    reason: str


@dataclass(frozen=True)
class QuarantinedFor:
    """Quarantined with a reason naming this field (issue 16 words the reason)."""

    field: str


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# (field, the value as written in a JSON record, verdict)
JSON_PATHS = ("sql canonical", "sql general", "jsonl file", "parquet typed")
ALL_PATHS = (*JSON_PATHS[:3], "csv file", "parquet text", "parquet typed")
ABOVE_MAX = "quantity above 1000000000000"
VERDICTS = [
    ("quantity", "4", Lands(4)),
    ("quantity", '"4"', Lands(4)),
    ("quantity", '"+4"', Lands(4)),
    ("quantity", '" 4 "', Lands(4)),
    ("quantity", "0", Lands(0)),
    ("quantity", "null", Lands(1)),  # absent: the declared default
    ("quantity", "1e3", Quarantined("wrong type for quantity")),
    ("quantity", "1.0", Quarantined("wrong type for quantity")),
    ("quantity", '"12 units"', Quarantined("wrong type for quantity")),
    ("quantity", "-1", Quarantined("quantity below 0")),
    # the declared maximum (defs/ingest/sources.py MAX_QUANTITY = 10^12) lands; one more does not
    ("quantity", "1000000000000", Lands(10**12)),
    ("quantity", "1000000000001", Quarantined(ABOVE_MAX)),
    ("quantity", "123456789012345678", Quarantined(ABOVE_MAX)),  # 18 digits
    # 2^63 - 1 fits a bigint, but two of them overflow a 64-bit sum: above the maximum
    ("quantity", "9223372036854775807", Quarantined(ABOVE_MAX)),
    ("quantity", "9223372036854775808", Quarantined(ABOVE_MAX)),  # 2^63
    ("quantity", "18446744073709551615", Quarantined(ABOVE_MAX)),  # 2^64 - 1
    # 2^64: no Parquet integer holds it (the typed file has it as a double: a wrong type)
    ("quantity", "18446744073709551616", QuarantinedFor("quantity")),
    ("occurred_at", '"2026-10-01T23:30:00Z"', Lands(utc(2026, 10, 1, 23, 30))),
    ("occurred_at", '"2026-10-01T23:30:00+05:30"', Lands(utc(2026, 10, 1, 18, 0))),
    ("occurred_at", '"2026-10-01T23:30:00+0530"', Lands(utc(2026, 10, 1, 18, 0))),
    ("occurred_at", '"2026-10-01T23:30:00-05:00"', Lands(utc(2026, 10, 2, 4, 30))),
    ("occurred_at", '"2026-10-01 23:30:00Z"', Lands(utc(2026, 10, 1, 23, 30))),
    # sub-microsecond digits are cut, never rounded into the next day
    (
        "occurred_at",
        '"2026-10-01T23:59:59.9999999Z"',
        Lands(dt.datetime(2026, 10, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    ),
    # RFC 3339 allows a lower-case t and z
    ("occurred_at", '"2026-10-01t23:30:00z"', Lands(utc(2026, 10, 1, 23, 30))),
    # hour 24 is not RFC 3339 (it would move the event to the next day)
    ("occurred_at", '"2026-10-01T24:00:00Z"', Quarantined("wrong type for occurred_at")),
    # an offset is at most 23:59
    (
        "occurred_at",
        '"2026-10-01T23:30:00+24:00"',
        Quarantined("wrong type for occurred_at"),
    ),
    ("occurred_at", '"2026-10-01T23:30:00"', Quarantined("wrong type for occurred_at")),
    ("occurred_at", '"2026-10-01"', Quarantined("wrong type for occurred_at")),
    ("occurred_at", '"2026-02-30T00:00:00Z"', Quarantined("wrong type for occurred_at")),
    ("occurred_at", '"2026-10-01T23:30:60Z"', Quarantined("wrong type for occurred_at")),
    ("occurred_at", "null", Quarantined("missing occurred_at")),
    # any day is accepted, with or without a partition (a row waits in raw for its partition)
    ("occurred_at", '"1999-12-31T23:59:59Z"', Lands(utc(1999, 12, 31, 23, 59, 59))),
    # ... but a day outside Python's dates: year 0, or 9999-12-31 23:30 at -01:00 (10000-01-01)
    (
        "occurred_at",
        '"0000-06-01T00:00:00Z"',
        Quarantined("event date outside 0001-01-01..9999-12-31"),
    ),
    (
        "occurred_at",
        '"9999-12-31T23:30:00-01:00"',
        Quarantined("event date outside 0001-01-01..9999-12-31"),
    ),
    ("tenant_id", "null", Quarantined("missing tenant_id")),
]
TEMPLATE = {
    "event_id": '"e{n}"',
    "tenant_id": '"t1"',
    "product": '"fraud_score"',
    "quantity": "1",
    "occurred_at": '"2026-10-01T12:00:00Z"',
}
COLUMNS = [c.name for c in USAGE.columns]


def literals(n: int, field: str, literal: str) -> dict[str, str]:
    """Row ``n``'s fields as JSON text: the template with ``field`` set to ``literal``."""
    return {**{k: v.format(n=n) for k, v in TEMPLATE.items()}, field: literal}


def json_line(fields: dict[str, str]) -> str:
    """The record in canonical form (compact, declared order): the fast path takes it when its
    values have the canonical shapes."""
    return "{" + ",".join(f'"{k}":{fields[k]}' for k in COLUMNS) + "}"


def text(literal: str) -> str | None:
    """The value as a CSV field or a Parquet text column holds it (numbers as written)."""
    value = json.loads(literal)
    if value is None or isinstance(value, str):
        return value
    return literal


def typed(literal: str) -> pa.Array:
    """A JSON number as a typed Parquet column would hold it."""
    value = json.loads(literal)
    if isinstance(value, float) or (value is not None and value >= 2**64):
        return pa.array([float(value)], pa.float64())
    if value is not None and value >= 2**63:
        return pa.array([value], pa.uint64())
    return pa.array([value], pa.int64())


def _sql(lines: list[str], canonical_path: bool) -> list[dict]:
    rows = _validate_lines([line.encode() for line in lines], canonical_path)
    return [{"reason": r["reason"], **(r["rec"] or {})} for r in rows]


def _file(path: Path) -> list[dict]:
    """Every record of a landing file through ingestion's file path, in line order."""
    accepted, quarantined, _ = _validate_file(
        connect(), USAGE, path, "sha", path.name, utc(2026, 11, 1)
    )
    rows = {r["_source_line"]: {"reason": None, **r} for r in accepted.to_pylist()}
    rows |= {r["source_line"]: {"reason": r["reason"]} for r in quarantined.to_pylist()}
    return [rows[line] for line in sorted(rows)]


@cache
def verdicts(path: str, folder: Path) -> list[dict]:
    """Each row of VERDICTS through one path (computed once per path)."""
    fields = [literals(n, f, lit) for n, (f, lit, _) in enumerate(VERDICTS)]
    if path.startswith("sql"):
        return _sql([json_line(r) for r in fields], canonical_path=path == "sql canonical")
    target = folder / path.replace(" ", "_")
    target.mkdir()
    if path == "jsonl file":
        file = target / "events.jsonl"
        file.write_text("".join(json_line(r) + "\n" for r in fields))
        return _file(file)
    if path == "csv file":
        file = target / "events.csv"
        with file.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows([[text(r[c]) for c in COLUMNS] for r in fields])
        return _file(file)
    if path == "parquet text":
        file = target / "events.parquet"
        columns = {c: pa.array([text(r[c]) for r in fields], pa.string()) for c in COLUMNS}
        pq.write_table(pa.table(columns), file)
        return _file(file)
    # parquet typed: one file per row, its quantity column typed as the JSON number it holds
    results = []
    for n, (field, literal, _) in enumerate(VERDICTS):
        row = fields[n]
        columns = {c: pa.array([text(row[c])], pa.string()) for c in COLUMNS}
        if field == "quantity" and not literal.startswith('"') and literal != "null":
            columns["quantity"] = typed(literal)
        file = target / f"events_{n:02d}.parquet"
        pq.write_table(pa.table(columns), file)
        results += _file(file)
    return results


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verdicts")


def _cases():
    for n, (field, literal, verdict) in enumerate(VERDICTS):
        for path in ALL_PATHS:
            yield pytest.param(n, field, verdict, path, id=f"{field}={literal}-{path}")


@pytest.mark.parametrize(("n", "field", "verdict", "path"), list(_cases()))
def test_verdict(folder, n: int, field: str, verdict, path: str):
    got = verdicts(path, folder)[n]
    if isinstance(verdict, Lands):
        assert (got["reason"], got[field]) == (None, verdict.value)
    elif isinstance(verdict, Quarantined):
        assert got["reason"] == verdict.reason
    else:
        assert got["reason"] is not None and verdict.field in got["reason"]
