"""The asset graph is reviewed like code: keys, groups, dependencies, partitions, checks, jobs
and sensors must match tests/snapshots/asset_graph.json. After an intended change, regenerate it
with `c360 graph > tests/snapshots/asset_graph.json` and review the diff."""

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
    assert "fct_usage_daily" in assets["fct_customer_month"]["deps"]
