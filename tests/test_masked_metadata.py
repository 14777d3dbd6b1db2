"""No value of a masked column reaches table metadata, and every data file states its order.

Iceberg manifests hold per-file bounds of every column, which any metadata reader sees unmasked
(Trino's "$files", "$partitions", readable_metrics): the masked columns are written with the
metrics mode none. The BI side of the same boundary is tested against the real Trino in
tests/test_trino_serving.py.
"""

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from resources.lakehouse import UNMEASURED_COLUMNS
from tests.records import billing_customer, crm_account

RULES = Path(__file__).resolve().parent.parent / "c360_assets/tools/stack/templates/rules.json"
TABLES_WITH_EMAIL = ("raw.crm_accounts", "staging.stg_crm_accounts", "marts.dim_customer")


def test_every_masked_column_is_unmeasured():
    rules = json.loads(RULES.read_text())
    masked = {
        column["name"]
        for rule in rules["tables"]
        for column in rule.get("columns", [])
        if "mask" in column
    }
    assert masked == set(UNMEASURED_COLUMNS) == {"owner_email"}


def test_the_manifests_hold_no_statistics_of_a_masked_column(lake):
    lake.drop(
        "crm/accounts",
        "2026-09-01.jsonl",
        [
            crm_account(crm_account_id="acc_1", owner_name="Ann"),
            crm_account(crm_account_id="acc_2", owner_name="Zed", billing_customer_id="cus_2"),
        ],
    )
    lake.drop("billing/customers", "c.jsonl", [billing_customer(crm_account_id="acc_1")])
    lake.run()

    for identifier in TABLES_WITH_EMAIL:
        table = lake.lakehouse.load(identifier)
        assert table.properties["write.metadata.metrics.column.owner_email"] == "none"
        email = table.schema().find_field("owner_email").field_id
        account = table.schema().find_field("crm_account_id").field_id
        files = table.inspect.files().to_pylist()
        assert files, identifier
        for data_file in files:
            for metrics in ("lower_bounds", "upper_bounds", "value_counts", "null_value_counts"):
                assert email not in dict(data_file[metrics]), (identifier, metrics)
            assert data_file["readable_metrics"]["owner_email"]["upper_bound"] is None
            # the other columns keep theirs: acc_1..acc_2 (the unknown member has none)
            assert dict(data_file["lower_bounds"])[account] in (b"acc_1", b"acc_2")
        # every entry of the current snapshot states the table's sort order (0: unsorted)
        entries = table.inspect.entries().to_pylist()
        assert {e["data_file"]["sort_order_id"] for e in entries} == {0}, identifier


def test_a_table_made_before_the_mask_gets_it_on_its_next_write(lake):
    """A table that already holds the column without the property (made by an older c360)
    gets it; its next files carry no statistics of the column."""
    rows = pa.table({"crm_account_id": ["acc_1"], "owner_email": ["ann@example.com"]})
    lake.lakehouse.catalog.create_table("marts.older", schema=rows.schema)
    assert (
        "write.metadata.metrics.column.owner_email"
        not in lake.lakehouse.load("marts.older").properties
    )
    con = duckdb.connect()
    con.register("rows", rows)
    lake.lakehouse.write_query(con, "marts.older", "select * from rows")
    table = lake.lakehouse.load("marts.older")
    assert table.properties["write.metadata.metrics.column.owner_email"] == "none"
    (data_file,) = table.inspect.files().to_pylist()
    email = table.schema().find_field("owner_email").field_id
    assert email not in dict(data_file["lower_bounds"])
