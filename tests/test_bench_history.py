"""The history stage of ``c360 bench`` (``--history-days``) on a tiny simulation: 4 days of daily
``c360 run`` with late data on two embedded lakehouses fed the same files, one maintained every 2
days keeping no old snapshot. Maintenance changes no row of any mart and leaves fewer snapshots
and files; the checkpoint's late file rebuilds exactly its day and month. Expected values are
worked out in the comments from the plan, not read from a run."""

import argparse
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from c360_assets.tools.bench_history import (
    VARIANTS,
    HistoryPlan,
    delivery_day,
    format_table,
    plan_from_args,
    simulate,
)

# 4 days from 2025-01-01 (each with its own usage file, 300 events a day, 5 % of them delivered
# 1-3 days late in the next days' files); maintenance after days 2 and 4; the checkpoint after
# day 4 drops two late files of 20 events dated 2025-01-02 (late_lag 2), one after the other
PLAN = HistoryPlan(
    days=4,
    maintain_every=2,
    keep_days=0,
    checkpoints=(4,),
    late_events=20,
    late_lag=2,
    late_repeats=2,
)


QUIET = {"echo": lambda _: None, "in_memory": True, "parallel": False}


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[dict, list[dict]]:
    """The plan run on both lakehouses, and what it reported after each checkpoint."""
    so_far: list[dict] = []  # what a run stopped after the checkpoint would have kept
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("C360_FIRST_DAY", PLAN.start.isoformat())
        result = simulate(
            PLAN,
            tmp_path_factory.mktemp("history"),
            progress=lambda partial: so_far.append(json.loads(json.dumps(partial, default=str))),
            **QUIET,
        )
    return result, so_far


def test_tiny_history_same_marts_fewer_snapshots(both) -> None:
    result, so_far = both
    (partial,) = so_far
    assert partial["complete"] is False and "marts" not in partial
    assert [p["day"] for p in partial["checkpoints"]] == [4]
    assert result["complete"] is True

    # maintenance changed no row: every mart, every column, equal as multisets
    assert result["marts_equal"] is True
    assert result["marts"]["marts.fct_usage_daily"]["rows"] > 0
    assert all(m["only_plain"] == m["only_maintained"] == 0 for m in result["marts"].values())
    # maintenance ran on days 2 and 4, on the maintained lakehouse only
    assert [d["day"] for d in result["daily"] if "maintenance" in d["maintained"]] == [2, 4]
    assert not any("maintenance" in d["plain"] for d in result["daily"])
    assert result["generated"]["late_events"] > 0

    (point,) = result["checkpoints"]
    plain, kept = (point[name]["catalog"] for name in VARIANTS)
    plain_usage = plain["per_table"]["raw.usage_events"]
    kept_usage = kept["per_table"]["raw.usage_events"]
    # raw.usage_events without maintenance: one append per day's ingestion (4), and the late
    # rows a day's file carries for earlier days land as extra small files in their partitions
    assert plain_usage["snapshots"] == 4
    assert plain_usage["data_files"] == plain_usage["current_data_files"] > 4
    # with it (after day 4's pass, keeping no old snapshot): every day partition compacted to
    # one file, the current snapshot alone (nothing names an older one: every file is logged)
    assert kept_usage == {"snapshots": 1, "data_files": 4, "current_data_files": 4}
    # fct_usage_daily: usage_anomalies' watermark names its current snapshot (both are built in
    # the same daily run), so one snapshot stays; each day is one file either way
    assert kept["per_table"]["marts.fct_usage_daily"]["snapshots"] == 1
    assert plain["per_table"]["marts.fct_usage_daily"]["current_data_files"] == 4
    # fewer (or as many) snapshots in every table, fewer in all, fewer files on disk
    assert kept["per_table"].keys() == plain["per_table"].keys()
    for table, figures in kept["per_table"].items():
        assert figures["snapshots"] <= plain["per_table"][table]["snapshots"], table
    assert kept["snapshots"] < plain["snapshots"]
    assert kept["metadata_files"] < plain["metadata_files"]
    assert kept["warehouse_files"] < plain["warehouse_files"]

    # each late file (dated 2025-01-02) rebuilds exactly its day and January, on both; the
    # point is the median of the two runs
    for name in VARIANTS:
        run = point[name]["late_run"]
        assert len(run["repeats"]) == 2, name
        for repeat in run["repeats"]:
            assert repeat["rebuilt"] == {"daily": ["2025-01-02"], "monthly": ["2025-01-01"]}
            assert repeat["seconds"] > 0 and repeat["plan_seconds"] > 0
            assert repeat["cpu_seconds"] > 0
            # ingestion, the day, the month: each run timed
            assert [label.split()[0] for label in repeat["run_seconds"]] == [
                "ingest_job",
                "daily_job",
                "monthly_job",
            ]
        seconds = sorted(r["seconds"] for r in run["repeats"])
        assert run["seconds"] == (seconds[0] + seconds[1]) / 2, name
    assert point["date"] == (PLAN.start + dt.timedelta(days=3)).isoformat()
    assert "marts equal with and without maintenance: True" in format_table(result)


def test_delivery_day_from_file_names() -> None:
    # the generator's names: daily files carry their day, monthly exports their month (delivered
    # on its first day), a checkpoint's late batch its arrival day
    assert delivery_day(Path("usage_events/events_2025-01-04_part0000.jsonl.gz")) == dt.date(
        2025, 1, 4
    )
    assert delivery_day(Path("crm/accounts/accounts_snapshot_2025-02-28.csv")) == dt.date(
        2025, 2, 28
    )
    assert delivery_day(Path("billing/customers/customers_2025-03.jsonl")) == dt.date(2025, 3, 1)
    assert delivery_day(Path("usage_events/events_2025-01-30_late1_part0000.jsonl.gz")) == (
        dt.date(2025, 1, 30)
    )
    with pytest.raises(ValueError, match="no delivery date"):
        delivery_day(Path("usage_events/events.jsonl"))


def test_the_maintained_lakehouse_alone(both, tmp_path, monkeypatch) -> None:
    """``--history-variants maintained``: one lakehouse, the same files and days; its marts hold
    the rows the two-lakehouse run's do (counted: there is no other side to compare with)."""
    monkeypatch.setenv("C360_FIRST_DAY", PLAN.start.isoformat())
    alone = dataclasses.replace(PLAN, variants=("maintained",))
    result = simulate(alone, tmp_path / "alone", **QUIET)
    assert result["marts_equal"] is None
    assert all(set(d) == {"day", "date", "maintained"} for d in result["daily"])
    assert [d["day"] for d in result["daily"] if "maintenance" in d["maintained"]] == [2, 4]
    (point,) = result["checkpoints"]
    assert "plain" not in point
    assert point["maintained"]["late_run"]["repeats"][0]["rebuilt"] == {
        "daily": ["2025-01-02"],
        "monthly": ["2025-01-01"],
    }
    assert set(result["ratios"]) == set()  # one checkpoint: no ratio
    # the same rows as beside the plain lakehouse: 4 days of the generated usage
    marts = both[0]["marts"]
    assert result["marts"] == {name: {"rows": m["rows"]} for name, m in marts.items()}
    assert "marts equal" not in format_table(result)
    with pytest.raises(ValueError, match="variants"):
        dataclasses.replace(PLAN, variants=("nightly",))
    # the plain lakehouse's marts come first in the comparison, whatever order they are named in
    with pytest.raises(ValueError, match="in that order"):
        dataclasses.replace(PLAN, variants=("maintained", "plain"))
    args = argparse.Namespace(
        history_days=4,
        history_checkpoints="4",
        history_variants="maintained, plain",
        maintain_every=2,
        history_keep_days=0,
        seed=7,
    )
    assert plan_from_args(args).variants == ("plain", "maintained")
    with pytest.raises(ValueError, match="--history-variants"):
        plan_from_args(argparse.Namespace(**{**vars(args), "history_variants": "maintaned"}))
