"""``c360 bench --cluster`` end to end on the ``tiny`` profile, on the session's real stacks.

Every stage and peer runs for real (child processes, Dagster jobs, the PostgreSQL catalog,
Trino; then the same stages on the cluster stack, the warehouse on its object store); the test
checks the JSON's shape and that every peer, the backfill's two ways and the object store
produced c360's output.
"""

import json

import duckdb

from c360_assets.tools.bench import (
    CLUSTER_STAGE_NAMES,
    PEER_NAMES,
    PROFILES,
    STAGE_NAMES,
    cache_root,
    format_table,
    run_bench,
)
from tests.stack_fixture import StackHandle


def test_tiny_profile_end_to_end(
    trino_stack: StackHandle, cluster_stack: StackHandle, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("C360_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"

    result = run_bench(
        PROFILES["tiny"],
        7,
        out,
        stack_cfg=trino_stack.config,
        cluster_cfg=cluster_stack.config,
        pair_rounds=2,
        echo=lambda m: None,
    )

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
    late_rebuilt = {"daily": ["2026-10-02", "2026-10-03"], "monthly": ["2026-10-01"]}
    assert late["rebuilt"] == late_rebuilt
    assert [(v["history_days"], v["rebuilt"]) for v in late["history_variants"]] == [
        (2, {"daily": ["2026-10-01", "2026-10-02"], "monthly": ["2026-10-01"]}),
        (3, late_rebuilt),
    ]
    # the late run's Dagster runs, each timed: its two days are one range, one run of the job
    run_seconds = late["history_variants"][1]["run_seconds"]
    assert list(run_seconds) == [
        "ingest_job",
        "daily_job 2026-10-02..2026-10-03",
        "monthly_job 2026-10-01",
    ]
    assert all(seconds > 0 for seconds in run_seconds.values())

    # each of the first four stages has its floor, plain DuckDB doing the same work, beside it
    for name in ("ingest_day", "build_day", "customer_month", "late_rebuild"):
        stage = stages[name]
        assert stage["floor"]["seconds"] > 0 and stage["floor"]["peak_rss_mb"] > 0, stage
        assert stored["ratios"][f"{name}_over_floor"] == stage["over_floor"] > 0, stage
    # the build_day floor runs c360's SQL: c360's rows exactly
    assert stages["build_day"]["floor"]["same_output"] is True, stages["build_day"]["floor"]
    # the late rebuild's floor: the late files parsed, then what the run rebuilt, in build order
    late_floor = stages["late_rebuild"]["floor"]
    assert late_floor["ingest"]["files"] == 1  # the late batch: one usage file at this size
    days = [("fct_usage_daily", "2026-10-02"), ("fct_usage_daily", "2026-10-03")]
    days += [("usage_anomalies", "2026-10-02"), ("usage_anomalies", "2026-10-03")]
    months = ["int_customer_usage_months", "int_customer_months", "fct_customer_month"]
    months += ["fct_usage_billing_reconciliation"]
    months += ["fct_customer_adoption_monthly"]  # restatements reads tags: no floor
    assert [(p["model"], p["partition"]) for p in late_floor["models"]["steps"]] == days + [
        (name, "2026-10-01") for name in months
    ]
    # ... and the short history's late rebuild has its own floor: its own days, the same month
    short_floor, long_floor = (v["floor"] for v in late["history_variants"])
    assert long_floor == late_floor
    short_days = [
        (m, d) for m in ("fct_usage_daily", "usage_anomalies") for d in ("2026-10-01", "2026-10-02")
    ]
    assert [(p["model"], p["partition"]) for p in short_floor["models"]["steps"]] == short_days + [
        (name, "2026-10-01") for name in months
    ]
    assert short_floor["seconds"] > 0 and short_floor["ingest"]["files"] == 1
    assert stored["ratios"]["late_rebuild_floor_long_over_short_history"] == round(
        long_floor["seconds"] / short_floor["seconds"], 2
    )

    # the backfill: 10 days from 10-01 in runs of 5 days (the daily models' BackfillPolicy),
    # one at a time, then both at once, each from an empty catalog: the same rows both ways,
    # and every one of the 10 days built
    backfill = stages["backfill_10_days"]
    assert backfill["runs"] == [["2026-10-01", "2026-10-05"], ["2026-10-06", "2026-10-10"]]
    assert [v["runs_at_once"] for v in backfill["concurrent_runs"]] == [1, 2]
    for variant in backfill["concurrent_runs"]:
        assert variant["seconds"] > 0 and len(variant["run_seconds"]) == 2, variant
        assert all(s > 0 for s in variant["run_seconds"]), variant
    assert backfill["speedup"] == round(
        backfill["concurrent_runs"][0]["seconds"] / backfill["concurrent_runs"][1]["seconds"], 2
    )
    assert backfill["same_output"] is True, backfill["compared"]
    for compared in backfill["compared"].values():
        assert compared["rows"] == compared["peer_rows"] > 0, compared
        assert compared["only_c360"] == compared["only_peer"] == 0, compared
    for at_once in (1, 2):
        fct = cache_root() / "tiny-7" / "work" / f"backfill-{at_once}" / "out" / "fct.parquet"
        days = duckdb.execute(
            f"select distinct strftime(usage_date, '%Y-%m-%d') as d from '{fct}' order by d"
        ).fetchall()
        assert [d for (d,) in days] == [f"2026-10-{n:02d}" for n in range(1, 11)]

    assert [p["name"] for p in stored["peers"]] == list(PEER_NAMES)
    for peer in stored["peers"]:
        assert peer["same_output"] is True, peer
        assert peer["seconds"] > 0 and peer["peak_rss_mb"] > 0, peer
    # build_day and Polars again, alternately, twice: each round timed and compared, the medians
    # (of two runs: their mean) beside the single runs, c360's rows unchanged by its rebuilds
    paired = stored["build_day_paired"]
    assert [r["round"] for r in paired["rounds"]] == [1, 2]
    for r in paired["rounds"]:
        assert r["build_day"] > 0 and r["polars"] > 0 and r["polars_same_output"] is True, r
    for name in ("build_day", "polars"):
        both = [r[name] for r in paired["rounds"]]
        assert paired["median_seconds"][name] == round(sum(both) / 2, 2), paired
    assert paired["same_output"] is True
    assert stored["ratios"]["polars_over_build_day_paired"] == round(
        paired["median_seconds"]["polars"] / paired["median_seconds"]["build_day"], 2
    )
    # Spark ran for real (PySpark's own distribution, the Iceberg runtime on the stack's JDBC
    # catalog): its session start-up is apart from the timed work, the JVM's memory counts, and
    # the day it committed to Iceberg and read back is c360's, row for row
    spark = next(p for p in stored["peers"] if p["name"] == "spark")
    assert spark["session_seconds"] > 0 and spark["versions"]["spark"].startswith("4.0.")
    assert any(name.startswith("java[") for name in spark["process_peaks_mb"]), spark
    assert spark["peak_rss_mb"] > spark["driver_python_peak_rss_mb"], spark
    assert spark["compared"]["rows"] == spark["compared"]["peer_rows"] > 0, spark

    # the object store: the same stages on the cluster stack, beside local disk, same output
    cluster = stored["cluster"]
    assert cluster["workers"] == 1
    assert [r["name"] for r in cluster["stages"]] == list(CLUSTER_STAGE_NAMES)
    for row in cluster["stages"]:
        assert row["local_seconds"] == stages[row["name"]]["seconds"], row
        assert row["object_store_seconds"] > 0, row
        assert row["ratio"] == round(row["object_store_seconds"] / row["local_seconds"], 2)
        assert stored["ratios"][f"{row['name']}_object_store_over_local"] == row["ratio"]
    on_store = {s["name"]: s for s in cluster["stage_details"]}
    assert on_store["ingest_day"]["rows"] == 20_100
    assert on_store["late_rebuild"]["rebuilt"] == late_rebuilt
    assert cluster["same_output"] is True, cluster["compared"]
    assert cluster["compared"]["rows"] == cluster["compared"]["peer_rows"] > 0
    # ... and its tables are the object store's, under the bench's own prefix
    fct_table = cluster_stack.lakehouse(tmp_path / "landing").load("marts.fct_usage_daily")
    assert fct_table.location().startswith(cluster_stack.warehouse + "/bench/")

    assert {
        "polars_over_build_day",
        "spark_over_build_day",
        "trino_transform_over_build_day",
        "late_rebuild_over_full_refresh",
        "late_rebuild_long_over_short_history",
        "backfill_speedup_two_runs_at_once",
    } <= stored["ratios"].keys()
    assert out.with_suffix(".png").stat().st_size > 0
    table = format_table(result)
    assert "build_day" in table and "two at once" in table and "store/local" in table
    assert "alternately, 2 rounds" in table
