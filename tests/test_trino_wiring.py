"""Serving wiring that needs no server: the BI view files and when Dagster knows Trino."""

import dagster as dg
import pytest

from c360_assets.definitions import all_models, build_definitions
from c360_assets.defs.serving.assets import (
    BI_VIEWS_ASSET,
    MART_KEY_SUMS,
    PARITY_CHECK,
    SERVING_JOB,
    VIEW_MARKER,
    BiView,
    load_bi_views,
)

EXPECTED_VIEWS = {
    "customers",
    "customer_360",
    "revenue_by_segment_region_month",
    "invoices_not_reconciling",
    "recent_usage_anomalies",
    "adoption_by_owner_month",
    "revenue_leakage",
}


def test_view_files_become_security_invoker_views_over_marts_only():
    views = load_bi_views()
    assert {v.name for v in views} == EXPECTED_VIEWS
    marts = {m.table for m in all_models()} | {"marts.month_closes"}
    for view in views:
        # bi may read marts only: an invoker view over raw/staging/core would deny it
        assert view.reads and set(view.reads) <= marts, (view.name, view.reads)
        assert view.description.startswith(f"bi.{view.name}:"), view.name
        head, comment, security, as_, first = view.statement().split("\n")[:5]
        assert head == f"create or replace view iceberg.bi.{view.name}"
        assert comment.startswith("comment 'bi.") and comment.endswith(
            f"[{VIEW_MARKER}{view.digest}]'"
        )
        assert (security, as_, first) == ("security invoker", "as", "with")


def test_a_view_file_holds_a_query_not_ddl(tmp_path):
    path = tmp_path / "mine.sql"
    path.write_text("-- bi.mine: x\ncreate view iceberg.bi.mine security definer as select 1\n")
    with pytest.raises(ValueError, match="the view's query"):
        BiView.from_file(path)
    path.write_text("-- bi.mine: it's one row\nselect 1 as x from iceberg.marts.dim_customer;\n")
    view = BiView.from_file(path)
    assert (view.name, view.reads, view.query) == (
        "mine",
        ("marts.dim_customer",),
        "select 1 as x from iceberg.marts.dim_customer",
    )
    assert "comment 'bi.mine: it''s one row [" in view.statement()  # quotes escaped


def _serving_parts(defs: dg.Definitions) -> tuple[set, set, set]:
    graph = defs.resolve_asset_graph()
    keys = graph.asset_check_keys
    checks = {k.asset_key.to_user_string() for k in keys if k.name == PARITY_CHECK}
    assets = {k.to_user_string() for k in graph.get_all_asset_keys()}
    return set(defs.resources or {}), assets, checks


def test_trino_joins_the_definitions_only_when_configured(monkeypatch):
    monkeypatch.delenv("C360_TRINO_HOST", raising=False)
    resources, assets, checks = _serving_parts(build_definitions())
    assert "trino" not in resources and BI_VIEWS_ASSET not in assets and not checks

    monkeypatch.setenv("C360_TRINO_HOST", "127.0.0.1")
    defs = build_definitions()
    resources, assets, checks = _serving_parts(defs)
    assert "trino" in resources and BI_VIEWS_ASSET in assets
    # one parity check per mart a run builds (month_closes is written by `close-month`)
    assert checks == {k.table.split(".")[1] for k in MART_KEY_SUMS} - {"month_closes"}
    assert defs.resolve_job_def(SERVING_JOB)
    # a caller passing its own lakehouse (tests, embedded tools) gets no Trino from the env
    from resources.lakehouse import LakehouseResource

    own = LakehouseResource.from_env()
    assert "trino" not in (build_definitions(own).resources or {})
