"""The asset graph is reviewed like code: keys, groups, dependencies, partitions, checks (whether
each blocks, its severity), jobs and sensors must match tests/snapshots/asset_graph.json. After an
intended change, regenerate it with `c360 graph > tests/snapshots/asset_graph.json` and review
the diff."""

import json
from pathlib import Path

from c360_assets.definitions import build_definitions
from c360_assets.lib.graph import graph_snapshot

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def test_asset_graph_matches_the_reviewed_snapshot(lake):
    assert graph_snapshot(build_definitions(lake.lakehouse)) == json.loads(SNAPSHOT.read_text())


def test_contract_marts_exist_in_the_graph(lake):
    assets = graph_snapshot(build_definitions(lake.lakehouse))["assets"]
    for name in (
        "fct_usage_daily",
        "dim_customer",
        "fct_invoice_reconciliation",
        "fct_customer_month",
        "usage_anomalies",
        "restatements",
    ):
        assert assets[name]["group"] == "marts", name
    assert assets["fct_usage_daily"]["partitions"] == "daily"
    assert assets["fct_customer_month"]["partitions"] == "monthly"
    # the month's usage through its summary per customer and month
    assert "int_customer_usage_months" in assets["fct_customer_month"]["deps"]
    assert assets["int_customer_usage_months"]["deps"] == ["fct_usage_daily"]


def test_every_check_declares_its_severity_and_blocking_ones_are_errors(lake):
    assets = graph_snapshot(build_definitions(lake.lakehouse))["assets"]
    checks = {(a, name): c for a, node in assets.items() for name, c in node["checks"].items()}
    assert {c["severity"] for c in checks.values()} == {"ERROR", "WARN"}
    assert all(c["severity"] == "ERROR" for c in checks.values() if c["blocking"])
    # the checks that stop downstream assets: every grain, conservation, key resolution and SCD2
    # window check, fx_rates_available, each raw source's rows_conserved, and the usage-billing
    # reconciliation's rows (exactly fct_customer_month's)
    blocking = {k for k, c in checks.items() if c["blocking"]}
    assert {name for _, name in blocking} == {
        "grain_is_unique",
        "rows_conserved",
        "usage_units_conserved",
        "billing_documents_conserved",
        "customer_keys_resolve",
        "customer_month_usage_conserved",
        "customer_usage_months_conserved",
        "customer_month_money_conserved",
        "fx_rates_available",
        "dim_customer_windows_do_not_overlap",
        "dim_customer_one_current_per_live_customer",
        "dim_customer_windows_chain",
        "reconciliation_rows_match_customer_month",
    }
    # a grain per model, rows_conserved per source, 12 others (customer_keys_resolve on two facts)
    assert len(blocking) == 24 + 9 + 12
