"""Hostile landing input: every file is judged on its own, and no value changes on the way in.

A file that cannot be read is quarantined whole (with its name and reason) while every other file
and source lands in the same run, the run succeeds, rows and files stay conserved, and the next
run changes nothing. A record that can be delimited is quarantined alone. A number outside its
declared range is quarantined, never wrapped or replaced; sums are exact.
"""

import csv
import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from c360_assets.defs.ingest import assets as ingest_assets
from c360_assets.defs.ingest.sources import MAX_QUANTITY, SOURCES, SOURCES_BY_NAME, USAGE
from c360_assets.lib import ingest
from c360_assets.lib.ingest import LANDING_FILES_TABLE, QUARANTINE_TABLE, validate
from c360_assets.lib.sources import INT_MAX
from c360_assets.lib.sqlmodel import connect
from tests.records import billing_customer, crm_account, event

CRM = SOURCES_BY_NAME["crm_accounts"]
CUSTOMERS = SOURCES_BY_NAME["billing_customers"]
DAY = "2026-10-01"
AT = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


# -- landing bytes -------------------------------------------------------------------------------
def jsonl(*records: dict | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def csv_bytes(records: list[dict], columns: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(records[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def usage(event_id: str, quantity, tenant_id: str = "t1", **fields) -> dict:
    return event(
        event_id=event_id,
        tenant_id=tenant_id,
        quantity=quantity,
        occurred_at=f"{DAY}T10:00:00Z",
        **fields,
    )


def drop(lake, folder: str, name: str, data: bytes) -> None:
    path = lake.landing / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- what the tables and the checks say ----------------------------------------------------------
def snapshots(lake) -> dict[str, int | None]:
    """The current snapshot of every raw table (a run that changes nothing leaves them)."""
    tables = [s.table for s in SOURCES] + [QUARANTINE_TABLE, LANDING_FILES_TABLE]
    return {t: lake.lakehouse.current_snapshot_id(t) for t in tables}


def whole_files(lake) -> dict[str, tuple]:
    """Files quarantined whole: file -> (reason in the quarantine, reason in the file log,
    rows in / accepted / quarantined in the file log)."""
    quarantined = {
        r["source_file"]: r["reason"]
        for r in lake.rows(QUARANTINE_TABLE)
        if r["source_line"] is None
    }
    logged = {r["source_file"]: r for r in lake.rows(LANDING_FILES_TABLE)}
    return {
        name: (
            reason,
            logged[name]["quarantine_reason"],
            (
                logged[name]["rows_in"],
                logged[name]["rows_accepted"],
                logged[name]["rows_quarantined"],
            ),
        )
        for name, reason in quarantined.items()
    }


def check(lake, asset: str, name: str):
    record = lake.instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(asset), name)
    )
    return record.event.dagster_event.event_specific_data


def usage_facts(lake) -> dict[tuple, tuple]:
    return {
        (r["usage_date"].isoformat(), r["tenant_id"]): (r["events"], r["units"])
        for r in lake.rows("marts.fct_usage_daily")
    }


def _not_utf8_event_ids() -> pa.Table:
    """A Parquet string column holding a Latin-1 byte (Parquet strings are UTF-8 by definition)."""
    table = pa.Table.from_pylist([usage("e9", 7)])
    ids = pa.array([b"e\xe99"], pa.binary()).cast(pa.string(), safe=False)
    return table.set_column(0, "event_id", ids)


GZIP_CUT = (
    "not a complete gzip stream: Compressed file ended before the end-of-stream marker was reached"  # noqa: E501
)
# kind -> (source, file name, its bytes, the reason it is quarantined with (a prefix for readers
# whose message names their library's internals))
UNREADABLE = {
    "empty JSON lines": (USAGE, "empty.jsonl", b"", "empty file"),
    "empty gzip": (USAGE, "empty.jsonl.gz", gzip.compress(b"", mtime=0), "empty file"),
    "truncated gzip": (
        USAGE,
        "cut.jsonl.gz",
        gzip.compress(jsonl(usage("e9", 7)), mtime=0)[:-12],
        GZIP_CUT,
    ),
    "not gzip": (USAGE, "plain.jsonl.gz", jsonl(usage("e9", 7)), "not a complete gzip stream: "),
    "corrupt Parquet": (
        USAGE,
        "corrupt.parquet",
        b"PAR1" + bytes(range(40)) + b"PAR1",
        "unreadable Parquet: ",
    ),
    "truncated Parquet": (
        USAGE,
        "cut.parquet",
        parquet_bytes(pa.Table.from_pylist([usage(f"e{i}", i) for i in range(50)]))[:-100],
        "unreadable Parquet: ",
    ),
    "Parquet lacking a declared column": (
        USAGE,
        "no_product.parquet",
        parquet_bytes(pa.Table.from_pylist([usage("e9", 7)]).drop_columns(["product"])),
        "missing declared columns: product",
    ),
    "Parquet text that is not UTF-8": (
        USAGE,
        "latin1.parquet",
        parquet_bytes(_not_utf8_event_ids()),
        "unreadable Parquet: column event_id: ",
    ),
    "empty CSV": (CUSTOMERS, "empty.csv", b"", "empty file"),
    "CSV header not UTF-8": (
        CUSTOMERS,
        "latin1.csv",
        "billing_customer_id,tenant_id,crm_account_id,currency,created_at,updated_\xe4t\n".encode(
            "latin-1"
        ),
        "unreadable CSV header: 'utf-8' codec can't decode byte 0xe4 in position 73: "
        "invalid continuation byte",
    ),
    "CSV lacking a declared column": (
        CRM,
        "no_email.csv",
        csv_bytes([crm_account(owner_name="Bob", updated_at="2026-10-05T00:00:00Z")])
        .replace(b"owner_email,", b"")
        .replace(b"bob@example.com,", b""),
        "missing declared columns: owner_email",
    ),
    "CSV with a column twice": (
        CUSTOMERS,
        "twice.csv",
        csv_bytes([billing_customer()]).replace(b"currency,", b"currency,currency,", 1),
        "duplicate columns: currency",
    ),
}


def _good_files(lake) -> None:
    """Good files of the three sources the unreadable ones belong to: 3 events of t1 (10 units),
    billing customer cus_1 = tenant t1, CRM account acc_1 (owner Ann)."""
    drop(lake, "usage_events", "good.jsonl", jsonl(usage("e1", 2), usage("e2", 3)))
    drop(
        lake,
        "usage_events",
        "good.parquet",
        parquet_bytes(pa.Table.from_pylist([usage("e3", 5)])),
    )
    drop(lake, "billing/customers", "good.jsonl", jsonl(billing_customer(crm_account_id="acc_1")))
    drop(lake, "crm/accounts", "2026-09-01.csv", csv_bytes([crm_account()]))


def test_unreadable_files_are_quarantined_whole_and_everything_else_lands(lake):
    _good_files(lake)
    for source, name, data, _ in UNREADABLE.values():
        drop(lake, source.folder, name, data)

    lake.run()  # asserts the run succeeded: no blocking check failed, no step failed

    # the good data of every source landed in the same run
    assert sorted(r["event_id"] for r in lake.rows("raw.usage_events")) == ["e1", "e2", "e3"]
    assert usage_facts(lake) == {(DAY, "t1"): (3, 10)}
    assert [r["billing_customer_id"] for r in lake.rows("raw.billing_customers")] == ["cus_1"]
    assert [
        r["owner_name"]
        for r in lake.rows("marts.dim_customer")
        if r["is_current"] and r["customer_key"] != "unknown"
    ] == ["Ann"]
    # each unreadable file: one quarantine row without a line and a logged file with no rows
    found = whole_files(lake)
    expected = {
        f"{source.folder}/{name}": reason for source, name, _, reason in UNREADABLE.values()
    }
    assert set(found) == set(expected)
    for name, reason in expected.items():
        in_quarantine, in_log, counts = found[name]
        assert in_quarantine == in_log and in_quarantine.startswith(reason), name
        assert counts == (0, 0, 0), name
    # the records of the files read: rows in = accepted + quarantined, from the tables
    logged = {r["source_file"]: r for r in lake.rows(LANDING_FILES_TABLE)}
    assert (
        logged["usage_events/good.jsonl"]["rows_in"],
        logged["crm/accounts/2026-09-01.csv"]["rows_in"],
    ) == (2, 1)  # noqa: E501
    assert all(r["quarantine_reason"] is None for n, r in logged.items() if n not in expected)
    assert [r for r in lake.rows(QUARANTINE_TABLE) if r["source_line"] is not None] == []
    # the checks: rows and files conserved; the quarantined files listed in a WARN check
    for source in (USAGE, CUSTOMERS, CRM):
        assert check(lake, source.asset_name, "rows_conserved").passed, source.name
        shown = check(lake, source.asset_name, "files_quarantined")
        assert not shown.passed and shown.severity == dg.AssetCheckSeverity.WARN
        listed = {f["source_file"] for f in shown.metadata["files"].value}
        assert listed == {n for n in expected if n.startswith(source.folder + "/")}

    # the next run changes nothing: the bad files are neither read again nor quarantined again
    before, quarantine_rows = snapshots(lake), len(lake.rows(QUARANTINE_TABLE))
    lake.run()
    assert snapshots(lake) == before
    assert len(lake.rows(QUARANTINE_TABLE)) == quarantine_rows

    # a corrected file under a new name lands
    drop(lake, "usage_events", "cut-fixed.jsonl.gz", gzip.compress(jsonl(usage("e9", 7))))
    lake.run()
    assert usage_facts(lake) == {(DAY, "t1"): (4, 17)}
    assert len(lake.rows(QUARANTINE_TABLE)) == quarantine_rows


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_each_unreadable_file_beside_a_good_one(lake, kind):
    """Each kind alone, beside a good file of its source: ingestion goes on, and the next
    ingestion neither reads nor records the bad file again."""
    source, name, data, reason = UNREADABLE[kind]
    good = {
        USAGE: ("good.jsonl", jsonl(usage("e1", 2))),
        CUSTOMERS: ("good.csv", csv_bytes([billing_customer()])),
        CRM: ("good.csv", csv_bytes([crm_account()])),
    }[source]
    drop(lake, source.folder, good[0], good[1])
    drop(lake, source.folder, name, data)

    summary = ingest.ingest_source(lake.lakehouse, source, ingested_at=AT)

    assert (summary.files, summary.rows_in, summary.rows_accepted) == (2, 1, 1)
    assert list(summary.quarantined_files) == [f"{source.folder}/{name}"]
    assert summary.quarantined_files[f"{source.folder}/{name}"].startswith(reason)
    assert len(lake.rows(source.table)) == 1
    quarantined = lake.rows(QUARANTINE_TABLE)
    assert [(r["source_file"], r["source_line"]) for r in quarantined] == [
        (f"{source.folder}/{name}", None)
    ]
    # the file's evidence is the file itself: its size and digest
    assert quarantined[0]["raw_bytes"] == len(data)
    assert quarantined[0]["raw_sha256"] == hashlib.sha256(data).hexdigest()
    assert quarantined[0]["file_sha256"] == hashlib.sha256(data).hexdigest()

    before = snapshots(lake)
    again = ingest.ingest_source(lake.lakehouse, source, ingested_at=AT)
    assert (again.files, again.skipped_files) == (0, 2)
    assert snapshots(lake) == before


# -- records quarantined alone -------------------------------------------------------------------
def test_a_bad_record_is_quarantined_alone_with_its_evidence(lake, monkeypatch):
    """JSON lines: a line holding the reader's delimiter, a line longer than a read block, text
    that is not UTF-8, a record longer than the kept text, identifiers with a NUL or a
    right-to-left override. The rest of the file lands, every line where it was."""
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(ingest, "RAW_TEXT_CAP", 100)
    long_ok = usage("e-long", 1, product="p" * 6000)  # longer than a block: still a record
    long_bad = "x" * 5000  # invalid JSON, longer than the kept text
    not_utf8 = json.dumps(usage("e5", 1)).encode().replace(b"t1", b"t\xff1")
    lines = [
        json.dumps(usage("e1", 2)),  # 1
        json.dumps(usage("e2", 1)).replace("t1", "t\x1e1"),  # 2: the reader's delimiter
        json.dumps(long_ok),  # 3
        long_bad,  # 4
        json.dumps(usage("e3", 1, tenant_id="t\u00001")),  # 5: a NUL, escaped in JSON
        json.dumps(usage("e4", 1, tenant_id="t\u202e1"), ensure_ascii=False),  # 6: RLO
        "",  # 7: a blank line is no record
        json.dumps(usage("e6", 4, product="kyc\u200fcheck")),  # 8: RLM, escaped
        json.dumps(usage("e7", 3)),  # 9
    ]
    data = "\n".join(lines[:5]).encode() + b"\n" + lines[5].encode() + b"\n"
    data += b"\n".join([*(line.encode() for line in lines[6:]), not_utf8]) + b"\n"  # line 10
    drop(lake, "usage_events", "mixed.jsonl", data)

    summary = ingest.ingest_source(lake.lakehouse, USAGE, ingested_at=AT)

    assert (summary.rows_in, summary.rows_accepted, summary.rows_quarantined) == (9, 3, 6)
    landed = {r["event_id"]: r["_source_line"] for r in lake.rows(USAGE.table)}
    assert landed == {"e1": 1, "e-long": 3, "e7": 9}
    quarantined = {r["source_line"]: r for r in lake.rows(QUARANTINE_TABLE)}
    assert {n: r["reason"] for n, r in quarantined.items()} == {
        2: "invalid JSON",
        4: "invalid JSON",
        5: "control character in tenant_id",
        6: "bidirectional control character in tenant_id",
        8: "bidirectional control character in product",
        10: "not valid UTF-8",
    }
    # a long record: its first 100 characters, its length and its digest
    assert quarantined[4]["raw_text"] == "x" * 100
    assert quarantined[4]["raw_bytes"] == 5000
    assert quarantined[4]["raw_sha256"] == hashlib.sha256(long_bad.encode()).hexdigest()
    # bytes that are not UTF-8 are kept escaped, the rest as it was
    text = json.dumps(usage("e5", 1)).replace("t1", "t\\xff1")
    assert quarantined[10]["raw_text"] == text[:100]
    assert quarantined[10]["raw_bytes"] == len(not_utf8)
    assert quarantined[10]["raw_sha256"] == hashlib.sha256(not_utf8).hexdigest()
    assert quarantined[2]["raw_text"] == lines[1][:100]


def test_a_bad_csv_row_is_quarantined_alone_on_its_line(lake):
    """A row with a field too many or too few, a row that is not UTF-8, a value spanning two
    lines (a line break is a control character: no identifier holds one) and a blank line:
    every other row lands with the line it starts on."""
    header = "billing_customer_id,tenant_id,crm_account_id,currency,created_at,updated_at"
    ts = "2026-09-01T00:00:00Z"
    rows = [
        header,  # 1
        f"cus_1,t1,acc_1,USD,{ts},{ts}",  # 2
        f"cus_2,t2,acc_2,USD,{ts},{ts},surplus",  # 3: a field too many
        f"cus_3,t3,USD,{ts},{ts}",  # 4: a field too few
        "",  # 5: blank
        f'cus_4,t4,"acc\n4",USD,{ts},{ts}',  # 6-7: a quoted value spanning two lines
        f"cus_5,t5,acc_5,USD,{ts},{ts}",  # 8
    ]
    data = "\r\n".join(rows).encode() + b"\r\n"
    data += f"cus_6,t\xe96,acc_6,USD,{ts},{ts}\r\n".encode("latin-1")  # 9: not UTF-8
    data += f"cus_7,t7,acc_7,USD,{ts},{ts}".encode()  # 10: no final line break
    drop(lake, "billing/customers", "export.csv", data)
    # a rendered row's evidence is its declared columns as a JSON object
    cus_4 = billing_customer(billing_customer_id="cus_4", tenant_id="t4", crm_account_id="acc\n4")

    summary = ingest.ingest_source(lake.lakehouse, CUSTOMERS, ingested_at=AT)

    assert (summary.rows_in, summary.rows_accepted, summary.rows_quarantined) == (7, 3, 4)
    landed = {
        r["billing_customer_id"]: (r["_source_line"], r["crm_account_id"])
        for r in lake.rows(CUSTOMERS.table)
    }
    assert landed == {"cus_1": (2, "acc_1"), "cus_5": (8, "acc_5"), "cus_7": (10, "acc_7")}
    quarantined = {
        r["source_line"]: (r["reason"], r["raw_text"]) for r in lake.rows(QUARANTINE_TABLE)
    }
    assert quarantined == {
        3: ("expected 6 fields, found 7", rows[2]),
        4: ("expected 6 fields, found 5", rows[3]),
        6: ("control character in crm_account_id", json.dumps(cus_4, separators=(",", ":"))),
        9: ("not valid UTF-8", f"cus_6,t\\xe96,acc_6,USD,{ts},{ts}"),
    }


def test_the_fast_and_exact_line_readers_agree(tmp_path, monkeypatch):
    """Line ends \\n, \\r\\n and \\r, blank lines, a last line without a break: the exact
    reader (taken for a line the fast one cannot split) gives the same lines."""
    data = b'{"a":1}\r\n\r\n{"b":2}\r{"c":3}\n\n\n{"d":4}\n\r\n{"e":5}'
    path = tmp_path / "lines.jsonl"
    path.write_bytes(data)
    fast = ingest.read_records(path, connect(), USAGE).records.to_pylist()
    monkeypatch.setattr(ingest.pacsv, "read_csv", _refuse)
    exact = ingest.read_records(path, connect(), USAGE).records.to_pylist()
    assert exact == fast
    assert [(r["line"], r["raw"]) for r in fast] == [
        (1, b'{"a":1}'),
        (2, b""),
        (3, b'{"b":2}'),
        (4, b'{"c":3}'),
        (5, b""),
        (6, b""),
        (7, b'{"d":4}'),
        (8, b""),
        (9, b'{"e":5}'),
    ]


def _refuse(*args, **kwargs):
    raise pa.ArrowInvalid("the fast reader is not used here")


# -- numbers -------------------------------------------------------------------------------------
# quantity -> reason (None: accepted with exactly this value); the default maximum is 10^12
QUANTITIES = {
    0: None,
    MAX_QUANTITY: None,
    MAX_QUANTITY + 1: "quantity above 1000000000000",
    2**63 - 1: "quantity above 1000000000000",
    2**63: "quantity above 1000000000000",
    2**64 - 1: "quantity above 1000000000000",
    2**64: "quantity above 1000000000000",
    -1: "quantity below 0",
    -(2**63) - 1: "quantity below 0",
}


def _verdicts(source, lines: list[bytes], canonical_path: bool) -> list[dict]:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.register(
        "records",
        pa.table({"line": range(1, len(lines) + 1), "raw": pa.array(lines, pa.binary())}),
    )
    rows = validate(con, source, canonical_path).rows().to_pylist()
    return [(r["reason"], r["rec"] and r["rec"]["quantity"]) for r in rows]


@pytest.mark.parametrize("canonical_path", [True, False])
def test_a_quantity_outside_its_range_is_quarantined_never_changed(canonical_path):
    """As a JSON number and as text, on both validation paths: a value is accepted as itself or
    quarantined with its reason (2^63 once landed as the default quantity, 1)."""
    lines, expected = [], []
    for quantity, reason in QUANTITIES.items():
        for rendered in (quantity, str(quantity)):
            lines.append(json.dumps(usage("e", rendered), separators=(",", ":")).encode())
            expected.append((reason, None if reason else quantity))
    assert _verdicts(USAGE, lines, canonical_path) == expected


def _usage_file(kind: str, quantities: list[int]) -> bytes:
    records = [usage(f"e{i}", q) for i, q in enumerate(quantities)]
    if kind == "jsonl":
        return jsonl(*records)
    if kind == "csv":
        return csv_bytes(records)
    # Parquet holds an unsigned 64-bit column: 2^64 - 1 is a value it can carry
    columns = {k: [r[k] for r in records] for k in records[0]}
    columns["quantity"] = pa.array(quantities, pa.uint64())
    return parquet_bytes(pa.table(columns))


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_every_format_gives_a_quantity_the_same_verdict(tmp_path, kind):
    quantities = [7, MAX_QUANTITY, MAX_QUANTITY + 1, 2**63 - 1, 2**63, 2**64 - 1]
    path = tmp_path / f"events.{kind}"
    path.write_bytes(_usage_file(kind, quantities))
    accepted, quarantined, record = ingest._validate_file(
        connect(), USAGE, path, "sha", path.name, AT
    )
    assert accepted.column("quantity").to_pylist() == [7, MAX_QUANTITY]
    assert quarantined.column("reason").to_pylist() == ["quantity above 1000000000000"] * 4
    assert (record["rows_in"], record["rows_accepted"], record["rows_quarantined"]) == (6, 2, 4)


def test_sums_of_the_largest_quantities_are_exact(lake, monkeypatch):
    """A source configured to accept any 64-bit quantity: two events of 2^63 - 1 sum to
    2^64 - 2 = 18446744073709551614 in the daily and the monthly facts (a 64-bit sum would
    overflow and stop every later run); 2^63 and 2^64 - 1 are still quarantined."""
    wide = dataclasses.replace(
        USAGE,
        columns=tuple(
            dataclasses.replace(c, max_value=INT_MAX) if c.name == "quantity" else c
            for c in USAGE.columns
        ),
    )
    monkeypatch.setattr(ingest_assets, "SOURCES", tuple(wide if s is USAGE else s for s in SOURCES))
    drop(
        lake,
        "usage_events",
        "huge.jsonl",
        jsonl(
            usage("e1", 2**63 - 1),
            usage("e2", 2**63 - 1),
            usage("e1", 2**63 - 1),  # a re-delivery: counted once
            usage("e3", 2**63),
            usage("e4", 2**64 - 1),
            usage("e5", 1, tenant_id="t2"),
        ),
    )
    drop(lake, "billing/customers", "c.jsonl", jsonl(billing_customer(crm_account_id="acc_1")))
    drop(lake, "crm/accounts", "a.jsonl", jsonl(crm_account()))

    lake.run()

    assert usage_facts(lake) == {(DAY, "t1"): (2, 18446744073709551614), (DAY, "t2"): (1, 1)}
    months = {r["customer_key"]: r["usage_units"] for r in lake.rows("marts.fct_customer_month")}
    assert months[next(k for k in months if k != "unknown")] == 18446744073709551614
    assert months["unknown"] == 1  # t2 belongs to no customer
    reasons = sorted(r["reason"] for r in lake.rows(QUARANTINE_TABLE))
    assert reasons == ["quantity above 9223372036854775807"] * 2
    before = snapshots(lake)
    lake.run()
    assert snapshots(lake) == before


# -- schema contracts ----------------------------------------------------------------------------
def test_a_crm_snapshot_missing_a_column_changes_no_dimension_row(lake):
    drop(lake, "crm/accounts", "2026-09-01.csv", csv_bytes([crm_account()]))
    lake.run()
    dimension = lake.rows("marts.dim_customer", ("customer_key", "valid_from"))
    assert [
        (r["owner_name"], r["segment"])
        for r in dimension
        if r["is_current"] and r["customer_key"] != "unknown"
    ] == [("Ann", "SMB")]

    # a later snapshot without owner_email (and a new owner and segment it would have opened a
    # version with): quarantined whole, the dimension unchanged
    later = crm_account(owner_name="Bob", segment="Enterprise", updated_at="2026-10-05T00:00:00Z")
    columns = [c for c in later if c != "owner_email"]
    drop(lake, "crm/accounts", "2026-10-05.csv", csv_bytes([later], columns))
    lake.run()
    assert lake.rows("marts.dim_customer", ("customer_key", "valid_from")) == dimension
    assert whole_files(lake)["crm/accounts/2026-10-05.csv"][0] == (
        "missing declared columns: owner_email"
    )


def test_an_undeclared_column_lands_nowhere_and_is_reported(lake):
    """In a CSV header, and as keys of JSON records (a record with one is no longer in its
    producer's canonical form, so only the general path looks for them)."""
    later = crm_account(account_name="Acme Corp", updated_at="2026-10-05T00:00:00Z")
    columns = [*later, "owner_phone", "fax"]
    record = {**later, "owner_phone": "+1 555 0100", "fax": "n/a"}
    drop(lake, "crm/accounts", "2026-10-05.csv", csv_bytes([record], columns))
    drop(
        lake,
        "crm/accounts",
        "2026-10-06.jsonl",
        jsonl(
            crm_account(crm_account_id="acc_2", billing_customer_id=None),
            {**crm_account(crm_account_id="acc_3", billing_customer_id=None), "tier": "gold"},
        ),
    )
    lake.run()

    assert "owner_phone" not in lake.lakehouse.load(CRM.table).schema().column_names
    current = {
        r["crm_account_id"]: r["account_name"]
        for r in lake.rows("marts.dim_customer")
        if r["is_current"] and r["customer_key"] != "unknown"
    }
    assert current == {"acc_1": "Acme Corp", "acc_2": "Acme", "acc_3": "Acme"}
    drift = check(lake, CRM.asset_name, "undeclared_columns")
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    assert drift.metadata["files"].value == [
        {"source_file": "crm/accounts/2026-10-05.csv", "undeclared_columns": "owner_phone, fax"},
        {"source_file": "crm/accounts/2026-10-06.jsonl", "undeclared_columns": "tier"},
    ]
    materialization = lake.instance.get_latest_materialization_event(dg.AssetKey(CRM.asset_name))
    metadata = materialization.asset_materialization.metadata
    assert metadata["undeclared_columns"].value == {
        "crm/accounts/2026-10-05.csv": "owner_phone, fax",
        "crm/accounts/2026-10-06.jsonl": "tier",
    }
    assert "tier" not in lake.lakehouse.load(CRM.table).schema().column_names
    assert check(lake, CRM.asset_name, "rows_conserved").passed


def _validate_both_ways(path, monkeypatch) -> tuple[tuple, tuple]:
    """``_validate_file`` of one file with DuckDB reading its lines, and with the exact reader."""
    by_duckdb = ingest._validate_file(connect(), USAGE, path, "sha", path.name, AT)
    monkeypatch.setattr(ingest, "_validated_json_lines", lambda *args: None)
    exact = ingest._validate_file(connect(), USAGE, path, "sha", path.name, AT)
    monkeypatch.undo()
    return by_duckdb, exact


def test_duckdb_reads_json_lines_as_the_exact_reader_does(tmp_path, monkeypatch):
    """Blank and whitespace lines (first and last too), a line starting with "#", quotes that
    are not CSV quoting, a NUL, two gzip members: DuckDB's line reader takes the file and every
    row, line and reason equals the exact reader's."""
    good = usage("e1", 2)
    body = jsonl(
        "",
        good,
        "   ",
        "#" + json.dumps(good),
        '"{"',
        usage("e2", 3, tenant_id='t"2'),
        '{"event_id":"e3\\u0000"}',
        usage("e4", -1),
        "",
    )
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(body) + gzip.compress(jsonl(usage("e5", 4), "\t")))
    assert ingest._validated_json_lines(connect(), USAGE, path) is not None
    by_duckdb, exact = _validate_both_ways(path, monkeypatch)
    assert by_duckdb[0] == exact[0] and by_duckdb[1] == exact[1]
    assert by_duckdb[2] == exact[2]
    assert by_duckdb[0].column("_source_line").to_pylist() == [2, 6, 10]
    # a tab is not blank: line 11 is a record, and no JSON
    assert by_duckdb[1].column("source_line").to_pylist() == [4, 5, 7, 8, 11]
    assert (by_duckdb[2]["rows_in"], by_duckdb[2]["rows_quarantined"]) == (8, 5)


@pytest.mark.parametrize(
    "odd_line",
    [
        b'{"event_id":"e9"}\r',  # a \r line end
        b'{"event_id":"\xff"}',  # bytes that are not UTF-8
        b'{"event_id":"\x1e"}',  # the reader's delimiter
        b'{"event_id":"' + b"x" * (3 << 20) + b'"}',  # longer than DuckDB's line limit
    ],
)
def test_a_line_duckdb_cannot_split_sends_the_file_to_the_exact_reader(
    tmp_path, monkeypatch, odd_line
):
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(usage("e1", 2)) + odd_line + b"\n" + jsonl(usage("e2", 3)))
    assert ingest._validated_json_lines(connect(), USAGE, path) is None
    by_duckdb, exact = _validate_both_ways(path, monkeypatch)
    assert by_duckdb[0] == exact[0] and by_duckdb[1] == exact[1]
    assert by_duckdb[0].column("_source_line").to_pylist() == [1, 3]
