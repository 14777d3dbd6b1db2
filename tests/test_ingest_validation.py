"""Record validation: the canonical-form fast path gives exactly what the general path gives."""

import datetime as dt
import hashlib
import json

import duckdb
import pyarrow as pa
import pytest

from c360_assets.defs.ingest.sources import USAGE
from c360_assets.lib.ingest import canonical_sql, read_records, validate

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
        b'"occurred_at":"0000-01-01T00:00:00Z"}',
        "event date outside 0001-01-01..9999-12-31",
    ),
    (
        b'{"event_id":"","tenant_id":"t1","product":"p","quantity":0,'
        b'"occurred_at":"2026-10-01 12:00:00.5+02"}',
        OK,
    ),
    # an optional field may be absent from a canonical record (its default applies)
    (b'{"event_id":"e10","tenant_id":"t1","product":"p","occurred_at":"2026-10-01T00:00:00Z"}', OK),
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
    # valid JSON, ASCII, no escape, yet not canonical: the canonical path proves a line by
    # rebuilding its text from the parsed values, so none of these may pass it
    (
        b'{"event_id":"e\x7f18","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "control character in event_id",
    ),
    (  # a duplicate key (the first one is read by both paths)
        b'{"event_id":"e19","tenant_id":"t1","product":"p","quantity":1,'
        b'"occurred_at":"2026-10-01T00:00:00Z","event_id":"x"}',
        OK,
    ),
    (  # a number where a string belongs, two spaces making up for the two missing quotes
        b'{"event_id":20,"tenant_id":"t1","product":"p","quantity":1,  '
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        "wrong type for event_id",
    ),
    (
        '{"event_id":"e21","tenant_id":"t\u202e1","product":"p","quantity":1,'
        '"occurred_at":"2026-10-01T00:00:00Z"}'.encode(),
        "bidirectional control character in tenant_id",
    ),
    (
        b'{"event_id":"e22","tenant_id":"t1","product":"p","quantity":-0,'
        b'"occurred_at":"2026-10-01T00:00:00Z"}',
        OK,
    ),
]
CANONICAL = 6  # the first six lines are in canonical form


def _records(lines: list[bytes]) -> duckdb.DuckDBPyConnection:
    """A UTC session holding the lines as ``records(line, raw)``, numbered from 1."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    records = pa.table(
        {
            "line": pa.array(range(1, len(lines) + 1), pa.int64()),
            "raw": pa.array(lines, pa.binary()),
        }
    )
    con.register("records", records)
    return con


def _validate_lines(lines: list[bytes], canonical_path: bool) -> list[dict]:
    return validate(_records(lines), USAGE, canonical_path).rows().to_pylist()


def _validate(canonical_path: bool) -> list[dict]:
    return _validate_lines([raw for raw, _ in LINES], canonical_path)


def _canonical_flags(con: duckdb.DuckDBPyConnection, source=USAGE) -> list[bool]:
    """Whether each record of ``records`` takes the canonical path, in line order."""
    flags = con.sql(canonical_sql(source)).to_arrow_table().sort_by("line")
    return flags.column("canonical").to_pylist()


def test_canonical_path_takes_only_canonical_lines():
    flags = _canonical_flags(_records([raw for raw, _ in LINES]))
    assert flags == [True] * CANONICAL + [False] * (len(LINES) - CANONICAL)


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
    assert accepted["e19"]["event_id"] == "e19"
    assert accepted["e22"]["quantity"] == 0


def test_both_paths_agree_on_every_line():
    assert _validate(canonical_path=True) == _validate(canonical_path=False)


def test_csv_values_that_look_like_null_markers_are_kept(tmp_path):
    from c360_assets.lib.sources import Column, Source

    source = Source(
        "accounts",
        "accounts",
        tuple(Column(n, "string") for n in ("crm_account_id", "region", "segment", "owner_name")),
    )
    path = tmp_path / "accounts.csv"
    path.write_text('crm_account_id,region,segment,owner_name\na1,NA,N/A,null\na2,,"",NULL\n')
    records = read_records(path, duckdb.connect(), source).records
    rows = [json.loads(raw) for raw in records.column("raw").to_pylist()]
    assert records.column("line").to_pylist() == [2, 3]
    assert rows == [
        {"crm_account_id": "a1", "region": "NA", "segment": "N/A", "owner_name": "null"},
        {"crm_account_id": "a2", "region": None, "segment": None, "owner_name": "NULL"},
    ]


# -- a generated corpus: every field rendered in canonical and non-canonical ways, mixed -----------
_VARIANTS = {
    "event_id": [
        '"e1"',
        '""',
        '" e1 "',
        '"evt_\\u00e9"',
        '"evt_\u00e9"',
        '"e\\"q"',
        '"e\\\\b"',
        '"e/x"',
        "12",
        "null",
        "true",
        '["e"]',
        '{"id":"e"}',
    ],
    "tenant_id": ['"ten_1"', '" TEN_1 "', '"ten\\u0041"', '"t~!#[]{}"', "null", "1.5", '"\t"'],
    "product": ['"fraud_score"', '"kyc_check"', '"pr\u00e9"', "false", '"p,q"', '"p:q"'],
    "quantity": [
        "1",
        "0",
        "-0",
        "7",
        "-1",
        "-22",
        "1.5",
        "1.0",
        "1e3",
        "-1e3",
        '"7"',
        '" 7 "',
        '"-3"',
        '"+4"',
        '"12 units"',
        '""',
        "null",
        "true",
        "123456789012345678",
        "-123456789012345678",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "[1]",
    ],
    "occurred_at": [
        '"2026-10-01T00:00:00Z"',
        '"2026-10-01T00:00:00z"',
        '"2026-10-01T23:30:00-05:00"',
        '"2026-10-01T23:30:00+05:30"',
        '"2026-10-01T23:30:00+0530"',
        '"2026-10-01T23:30:00+05"',
        '"2026-10-01 12:00:00.5+02"',
        '"2026-10-01T12:00:00.123456789+14:00"',
        '"2026-10-01T00:00:00.018Z"',
        '"2026-10-01T00:00:00"',
        '" 2026-10-01T00:00:00Z"',
        '"2026-13-01T00:00:00Z"',
        '"2026-02-30T00:00:00Z"',
        '"2026-10-01T24:00:00Z"',
        '"2019-01-01T00:00:00Z"',
        '"0000-01-01T00:00:00-01:00"',
        '"9999-12-31T23:30:00-01:00"',
        '"2024-01-01T00:30:00+01:00"',
        '"yesterday"',
        "1759276800",
        "null",
        '"2026-10-01T00:00:00\\u005a"',
    ],
}
_ORDER = list(_VARIANTS)


def _corpus(n: int = 6000, seed: int = 7) -> list[bytes]:
    """Records in canonical form and every kind of deviation, with re-deliveries and bad lines."""
    import random

    rng = random.Random(seed)
    lines: list[bytes] = []
    for i in range(n):
        roll = rng.random()
        values = {k: v[0] if rng.random() < 0.6 else rng.choice(v) for k, v in _VARIANTS.items()}
        values["event_id"] = f'"evt_{i}"' if values["event_id"] == '"e1"' else values["event_id"]
        keys = list(_ORDER)
        if roll < 0.08:
            rng.shuffle(keys)  # key order changed
        if rng.random() < 0.15:
            keys.remove(rng.choice(keys))  # a field missing (quantity: the default)
        sep, colon = (", ", ": ") if rng.random() < 0.03 else (",", ":")
        body = sep.join(f'"{k}"{colon}{values[k]}' for k in keys)
        extra = rng.random()
        if extra < 0.03:
            body += ',"extra":{"a":[1,2]}'
        elif extra < 0.05:
            body = '"extra":"x",' + body
        text = "{" + body + "}"
        damage = rng.random()
        if damage < 0.01:
            text = text[: rng.randrange(len(text))]  # truncated: invalid JSON
        elif damage < 0.015:
            text = text.replace('"', "'")
        elif damage < 0.02:
            text = "[" + text + "]"
        elif damage < 0.025:
            text = ""  # a blank line is no record
        elif damage < 0.03:
            text = "   \t"
        elif damage < 0.035:
            text = text + "\r"
        elif damage < 0.04:
            text = " " + text + " "
        elif damage < 0.045:
            text = text + text  # two records on one line
        elif damage < 0.05:
            text = "null"
        raw = text.encode()
        if rng.random() < 0.005:
            raw = raw[:5] + b"\xff\xfe" + raw[5:]  # not valid UTF-8
        lines.append(raw)
        if rng.random() < 0.03:
            lines.append(lines[rng.randrange(len(lines))])  # a re-delivery, possibly much later
    return lines


def test_generated_corpus_agrees_on_every_line():
    lines = _corpus()
    fast, general = _validate_lines(lines, True), _validate_lines(lines, False)
    assert fast == general
    canonical = sum(_canonical_flags(_records(lines)))
    reasons = {r["reason"] for r in fast}
    # the corpus exercises both paths and every verdict
    assert 0.2 * len(lines) < canonical < 0.8 * len(lines)
    assert {None, "invalid JSON", "not a JSON object", "not valid UTF-8"} <= reasons
    assert any("below 0" in (r or "") for r in reasons)
    assert any("wrong type for occurred_at" in (r or "") for r in reasons)
    assert any("missing occurred_at" in (r or "") for r in reasons)
    assert any("event date outside" in (r or "") for r in reasons)


def test_validate_file_selects_rows_by_line(tmp_path):
    """The file path (gzip, line numbers, blank lines, accepted/quarantined selection in Arrow)
    gives every record what the general path gives it: the quarantined records in line order,
    the accepted ones in any (the canonical ones come first; the raw table keeps no order)."""
    import gzip

    from c360_assets.lib.ingest import QUARANTINE_SCHEMA, _validate_file, accepted_schema
    from c360_assets.lib.sqlmodel import connect

    lines = _corpus(4000, seed=3)
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    at = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    accepted, quarantined, record = _validate_file(
        connect(),
        USAGE,
        path,
        "sha",
        "usage/events.jsonl.gz",
        at,
    )
    # the general path over the lines as read (a reader ends a line at \r\n or \r too)
    read = read_records(path, connect(), USAGE).records
    assert read.column("line").to_pylist() == list(range(1, read.num_rows + 1))
    expected = _validate_lines(read.column("raw").to_pylist(), canonical_path=False)
    good = [r for r in expected if r["reason"] is None]
    bad = [r for r in expected if r["reason"] is not None]
    assert accepted.schema == accepted_schema(USAGE)
    assert quarantined.schema == QUARANTINE_SCHEMA
    assert accepted.sort_by("_source_line").to_pylist() == [
        {
            **r["rec"],
            "event_date": r["event_date"],
            "_source_file": "usage/events.jsonl.gz",
            "_source_line": r["line"],
            "_file_sha256": "sha",
            "_ingested_at": at,
        }
        for r in good
    ]
    assert quarantined.to_pylist() == [
        {
            "source": "usage_events",
            "source_file": "usage/events.jsonl.gz",
            "file_sha256": "sha",
            "source_line": r["line"],
            # the text as it was, bytes that are not UTF-8 escaped (\xhh)
            "raw_text": r["raw"].decode("utf-8", "backslashreplace"),
            "reason": r["reason"],
            "ingested_at": at,
            "raw_bytes": len(r["raw"]),
            "raw_sha256": hashlib.sha256(r["raw"]).hexdigest(),
        }
        for r in bad
    ]
    assert record["rows_in"] == len(expected) == len(good) + len(bad)
    assert (record["rows_accepted"], record["rows_quarantined"]) == (len(good), len(bad))


def test_every_canonical_type_agrees_with_the_general_path():
    """Dates, booleans and optional fields of each type on both paths (a source of every type the
    canonical path takes)."""
    import itertools

    from c360_assets.defs.ingest.sources import Column, Source
    from c360_assets.lib.ingest import has_canonical_path

    source = Source(
        "typed",
        "typed",
        (
            Column("s", "string", True),
            Column("i", "int", False, None, 0),
            Column("ts", "timestamp", True),
            Column("d", "date"),
            Column("b", "bool", False, "false"),
            Column("o", "string"),
        ),
    )
    assert has_canonical_path(source)
    values = {
        "s": ['"x"', '""', '"\\u0078"', "1", "null"],
        "i": ["5", "-5", "-0", '"5"', "5.0", "null"],
        "ts": ['"2026-10-01T00:00:00+01:00"', '"2026-10-01"', '"2026-02-30T00:00:00Z"', "null"],
        "d": ['"2026-10-01"', '"2026-02-30"', '"2026-10-01T00:00:00Z"', '" 2026-10-01"', "7"],
        "b": ["true", "false", '"true"', '"1"', "1", '"no"', "null"],
        "o": ['"y"', "null", "[]"],
    }
    lines = []
    for combo in itertools.product(*values.values()):
        fields = dict(zip(values, combo, strict=True))
        lines.append("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}")
        # optional fields absent
        lines.append(
            "{" + ",".join(f'"{k}":{v}' for k, v in fields.items() if k not in ("i", "d")) + "}"
        )
    con = _records([line.encode() for line in sorted(set(lines))])
    fast, general = (validate(con, source, canonical_path=path).rows() for path in (True, False))
    assert fast.equals(general)
    canonical = sum(_canonical_flags(con, source))
    accepted = fast.filter(pa.compute.is_null(fast.column("reason"))).num_rows
    # canonical: s "x" or "" (2) x i 5 or -5 (2; "-0" is rebuilt "0") x ts of the shape (2) x
    # d of the shape (2) x b true or false (2) x o "y" (1) = 32 lines with every field, and
    # 2 x 2 x 2 = 8 without i and d
    assert canonical == 40 and accepted > 40  # both paths are exercised
