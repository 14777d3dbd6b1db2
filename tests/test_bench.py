"""``c360 bench`` end to end on the ``tiny`` profile, on the session's real Trino stack.

Every stage and peer runs for real (child processes, Dagster jobs, the PostgreSQL catalog,
Trino); the test checks the JSON's shape and that every peer produced c360's output.
"""

import json

from c360_assets.tools.bench import PEER_NAMES, PROFILES, STAGE_NAMES, format_table, run_bench
from tests.stack_fixture import StackHandle


def test_tiny_profile_end_to_end(trino_stack: StackHandle, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("C360_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"

    result = run_bench(PROFILES["tiny"], 7, out, stack_cfg=trino_stack.config, echo=lambda m: None)

    stored = json.loads(out.read_text())
    assert stored["profile"] == "tiny"
    assert {"cpu_count", "memory_gb", "versions"} <= stored["machine"].keys()
    assert stored["machine"]["versions"]["trino"] == "476"
    assert [s["name"] for s in stored["stages"]] == list(STAGE_NAMES)
    for stage in stored["stages"]:
        assert stage["seconds"] > 0 and stage["rows"] > 0, stage
        assert stage["rows_per_second"] > 0 and stage["peak_rss_mb"] > 0, stage
    stages = {s["name"]: s for s in stored["stages"]}
    assert stages["ingest_day"]["rows"] == 20_100  # the peak day's lines, as generated
    assert 0 < stages["trino_bi_queries"]["p50"] <= stages["trino_bi_queries"]["p95"]
    assert len(stages["trino_bi_queries"]["queries"]) == 5
    # the late rebuild rebuilt exactly the late batch's days and their month: the tiny profile's
    # history is 10-01 .. 10-03 (short: 10-01 .. 10-02) and its late batch lands on the last
    # history day and the one before (offsets 0 and 1); the days after them whose baselines read
    # them are rewritten inside usage_anomalies' build, not planned as partitions
    late = stages["late_rebuild"]
    assert late["origin_days"] == ["2026-10-02", "2026-10-03"]
    assert late["rebuilt"] == {"daily": ["2026-10-02", "2026-10-03"], "monthly": ["2026-10-01"]}
    assert [(v["history_days"], v["rebuilt"]) for v in late["history_variants"]] == [
        (2, {"daily": ["2026-10-01", "2026-10-02"], "monthly": ["2026-10-01"]}),
        (3, late["rebuilt"]),
    ]

    assert [p["name"] for p in stored["peers"]] == list(PEER_NAMES)
    for peer in stored["peers"]:
        if peer["name"] == "spark":
            assert peer["skipped"] and peer["same_output"] is None
            continue
        assert peer["same_output"] is True, peer
        assert peer["seconds"] > 0 and peer["peak_rss_mb"] > 0, peer
    assert {
        "polars_over_build_day",
        "trino_transform_over_build_day",
        "late_rebuild_over_full_refresh",
        "late_rebuild_long_over_short_history",
    } <= stored["ratios"].keys()
    assert out.with_suffix(".png").stat().st_size > 0
    assert "build_day" in format_table(result)
