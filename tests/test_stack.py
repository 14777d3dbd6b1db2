"""The real serving stack: PostgreSQL-backed Iceberg catalog + Trino 476, no mocks.

One stack for the whole session (see stack_fixture.py). `test_down_then_status_stopped`
stops it and brings it back, so it stays last in this module.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
import requests
from trino.exceptions import TrinoUserError

from c360_assets.tools import stack
from tests.stack_fixture import StackHandle, trino_stack  # noqa: F401  (the fixture)

FACT_ROWS = [
    {
        "id": 1,
        "customer_key": "cus_001",
        "booked_at": datetime(2024, 11, 30, 23, 59, 59, 123456, tzinfo=UTC),
        "usage_date": date(2024, 11, 30),
        "amount_usd": Decimal("1234567890123456.78"),
    },
    {
        "id": 2,
        "customer_key": "cus_002",
        "booked_at": datetime(2024, 12, 1, 0, 0, 0, 1, tzinfo=UTC),
        "usage_date": date(2024, 12, 1),
        "amount_usd": Decimal("-0.01"),
    },
    {
        "id": 3,
        "customer_key": "cus_003",
        "booked_at": datetime(1999, 1, 1, 12, 30, 0, 999999, tzinfo=UTC),
        "usage_date": date(1999, 1, 1),
        "amount_usd": Decimal("0.00"),
    },
]
FACT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("customer_key", pa.string()),
        pa.field("booked_at", pa.timestamp("us", tz="UTC")),
        pa.field("usage_date", pa.date32()),
        pa.field("amount_usd", pa.decimal128(18, 2)),
    ]
)


def _write(handle: StackHandle, identifier: str, rows: list[dict], schema: pa.Schema) -> None:
    catalog = handle.catalog()
    try:
        table = catalog.create_table(identifier, schema=schema)
        table.append(pa.Table.from_pylist(rows, schema=schema))
    finally:
        catalog.engine.dispose()


def _pids(handle: StackHandle) -> tuple[int | None, int | None]:
    result = stack.status(handle.config)
    return result["postgres"]["pid"], result["trino"]["pid"]


def test_up_twice_is_harmless(trino_stack: StackHandle) -> None:  # noqa: F811
    before = _pids(trino_stack)
    assert all(before), before

    trino_stack.up()

    assert _pids(trino_stack) == before
    assert trino_stack.trino().query("select 1") == [(1,)]


def test_env_lines_point_at_the_stack(trino_stack: StackHandle) -> None:  # noqa: F811
    exported = dict(
        shlex.split(line)[1].split("=", 1) for line in stack.env_lines(trino_stack.config)
    )
    assert exported["C360_CATALOG_URI"] == trino_stack.catalog_uri
    assert exported["C360_TRINO_PORT"] == str(trino_stack.trino_port)
    assert exported["C360_TRINO_PASSWORD"] == trino_stack.config.trino_password
    assert exported["C360_WAREHOUSE"] == str(trino_stack.config.warehouse)
    namespaces = trino_stack.catalog().list_namespaces()
    assert {ns[0] for ns in namespaces} >= {"raw", "staging", "core", "marts"}


def test_pyiceberg_table_is_read_by_trino(trino_stack: StackHandle) -> None:  # noqa: F811
    _write(trino_stack, "marts.stack_probe", FACT_ROWS, FACT_SCHEMA)

    rows = trino_stack.trino().query(
        "select id, customer_key, booked_at, usage_date, amount_usd "
        "from iceberg.marts.stack_probe order by id"
    )

    assert rows == [tuple(row.values()) for row in FACT_ROWS]
    columns = trino_stack.trino().query("describe iceberg.marts.stack_probe")
    types = {name: kind for name, kind, *_ in columns}
    assert types["booked_at"] == "timestamp(6) with time zone"
    assert types["usage_date"] == "date"
    assert types["amount_usd"] == "decimal(18,2)"


def test_bi_user_reads_marts_only_with_masked_email(trino_stack: StackHandle) -> None:  # noqa: F811
    accounts = pa.schema([("crm_account_id", pa.string()), ("owner_email", pa.string())])
    account_rows = [
        {"crm_account_id": "acc_1", "owner_email": "jane.doe@example.com"},
        {"crm_account_id": "acc_2", "owner_email": None},
    ]
    _write(trino_stack, "marts.stack_accounts", account_rows, accounts)
    _write(trino_stack, "raw.stack_secret", account_rows, accounts)
    sql = "select crm_account_id, owner_email from iceberg.{} order by 1"
    bi, admin = trino_stack.trino("bi"), trino_stack.trino()

    assert bi.query(sql.format("marts.stack_accounts")) == [
        ("acc_1", "***@example.com"),
        ("acc_2", None),
    ]
    assert admin.query(sql.format("marts.stack_accounts"))[0] == ("acc_1", "jane.doe@example.com")
    assert admin.query(sql.format("raw.stack_secret"))[0][0] == "acc_1"
    for statement in (
        sql.format("raw.stack_secret"),
        "insert into iceberg.marts.stack_accounts values ('acc_3', 'x@example.com')",
        "create table iceberg.marts.stack_bi_table (x integer)",
    ):
        with pytest.raises(TrinoUserError, match="Access Denied"):
            bi.query(statement)
    visible = {row[0] for row in bi.query("show schemas from iceberg")}
    assert "marts" in visible
    assert not visible & {"raw", "staging", "core"}


def test_passwords_are_enforced(trino_stack: StackHandle) -> None:  # noqa: F811
    wrong_config = dataclasses.replace(trino_stack.config, bi_password="not-the-password")
    with pytest.raises(Exception, match="Invalid credentials|401"):
        stack.trino_resource(wrong_config, "bi").query("select 1")
    # The node-internal plain-HTTP port refuses clients, with or without a user name.
    internal = f"http://127.0.0.1:{trino_stack.config.trino_internal_port}/v1/statement"
    answer = requests.post(internal, data="select 1", headers={"X-Trino-User": "c360"}, timeout=10)
    assert answer.status_code == 403


def test_down_then_status_stopped(trino_stack: StackHandle) -> None:  # noqa: F811
    _write(trino_stack, "core.stack_restart", FACT_ROWS, FACT_SCHEMA)

    trino_stack.down()

    result = stack.status(trino_stack.config)
    assert result["postgres"]["state"] == "stopped"
    assert result["trino"]["state"] == "stopped"
    for port in (trino_stack.config.pg_port, trino_stack.trino_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    trino_stack.down()  # stopping a stopped stack is harmless too

    # Bring it back for anything else in the session: the data survived the restart.
    trino_stack.up()
    assert trino_stack.trino().query("select count(*) from iceberg.core.stack_restart") == [(3,)]
