"""Record validation: the canonical-form fast path gives exactly what the general path gives."""

import datetime as dt
import json

import duckdb
import pyarrow as pa
import pytest

from c360_assets.ingest import canonical_shape, read_records, validation_sql
from c360_assets.sources import USAGE

OK = None
LINES = [
    # (raw line, expected reason) -- canonical form first
    (
        b'{"event_id":"e1","tenant_id":"t1","product":"p","quantity":3,'
        b'"occurred_at":"2026-10-01T23:30:00-05:00"}',
        OK,
    ),
    (
        b'{"event_id":"e2","tenant_id":"t1","product":"p","quantity":-1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "quantity below 0",
    ),
    (
        b'{"event_id":"e3","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-13-01T00:00:00Z"}',
        "wrong type for occurred_at",
    ),
    (
        b'{"event_id":"e4","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2019-01-01T00:00:00Z"}',
        "event date outside the partition range",
    ),
    (
        b'{"event_id":"","tenant_id":"t1","product":"p","quantity":0,'
        b'"occurred_at":"2026-10-01 12:00:00.5+02"}',
        OK,
    ),
    # not canonical: the general path
    (
        b'{"tenant_id":"t1","event_id":"e5","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        OK,
    ),
    (
        b'{"event_id": "e6", "tenant_id": "t1", "product": "p", "quantity": 1, '
        b'"occurred_at": "2026-10-01T00:00:00Z"}',
        OK,
    ),
    (
        b'{"event_id":"e7","tenant_id":null,"product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "missing tenant_id",
    ),
    (
        b'{"event_id":"e\\"8","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        OK,
    ),
    (
        '{"event_id":"e9","tenant_id":"t1","product":"pr\u00e9","quantity":1,'
        '"occurred_at":"2026-10-01T00:00:00Z"}'.encode(),
        OK,
    ),
    (b'{"event_id":"e10","tenant_id":"t1","product":"p","occurred_at":"2026-10-01T00:00:00Z"}', OK),
    (
        b'{"event_id":11,"tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "wrong type for event_id",
    ),
    (
        b'{"event_id":"e12","tenant_id":"t1","product":"p","quantity":"7",'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        OK,
    ),
    (
        b'{"event_id":"e13","tenant_id":"t1","product":"p","quantity":1.5,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "wrong type for quantity",
    ),
    (
        b'{"event_id":"e14","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"',
        "invalid JSON",
    ),
    (b'["e15"]', "not a JSON object"),
    (
        b'{"event_id":"e16\xff","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "not valid UTF-8",
    ),
    (
        b'{"event_id":"e17","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}\r',
        OK,
    ),
]
CANONICAL = 5  # the first five lines match the canonical shape


def _validate(canonical_path: bool) -> list[dict]:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    records = pa.table(
        {
            "line": pa.array(range(1, len(LINES) + 1), pa.int64()),
            "raw": pa.array([raw for raw, _ in LINES], pa.binary()),
        }
    )
    con.register("records", records)
    params = {"min_date": dt.date(2024, 1, 1), "max_date": dt.date(2030, 12, 31)}
    sql = validation_sql(USAGE, canonical_path=canonical_path)
    return con.sql(sql + " order by line", params=params).to_arrow_table().to_pylist()


def test_canonical_shape_matches_only_canonical_lines():
    con = duckdb.connect()
    shape = canonical_shape(USAGE)
    matched = [
        con.execute("select regexp_full_match(try(decode($1)), $2)", [raw, shape]).fetchone()[0]
        for raw, _ in LINES
    ]
    assert [bool(m) for m in matched] == [True] * CANONICAL + [False] * (len(LINES) - CANONICAL)


@pytest.mark.parametrize("canonical_path", [True, False])
def test_reasons_per_line(canonical_path):
    rows = _validate(canonical_path)
    assert [r["reason"] for r in rows] == [reason for _, reason in LINES]
    accepted = {r["rec"]["event_id"]: r["rec"] for r in rows if r["reason"] is None}
    assert accepted["e1"]["quantity"] == 3
    assert accepted["e1"]["occurred_at"] == dt.datetime(2026, 10, 2, 4, 30, tzinfo=dt.UTC)
    assert accepted[""]["occurred_at"] == dt.datetime(2026, 10, 1, 10, 0, 0, 500000, tzinfo=dt.UTC)
    assert accepted["e10"]["quantity"] == 1  # absent: the declared default
    assert accepted["e12"]["quantity"] == 7
    assert accepted['e"8']["tenant_id"] == "t1"
    assert accepted["e9"]["product"] == "pr\u00e9"


def test_both_paths_agree_on_every_line():
    assert _validate(canonical_path=True) == _validate(canonical_path=False)


def test_csv_values_that_look_like_null_markers_are_kept(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text('crm_account_id,region,segment,owner_name\na1,NA,N/A,null\na2,,"",NULL\n')
    records = read_records(path, duckdb.connect())
    rows = [json.loads(raw) for raw in records.column("raw").to_pylist()]
    assert records.column("line").to_pylist() == [2, 3]
    assert rows == [
        {"crm_account_id": "a1", "region": "NA", "segment": "N/A", "owner_name": "null"},
        {"crm_account_id": "a2", "region": None, "segment": None, "owner_name": "NULL"},
    ]
