"""What `c360 run` prints, as a user sees it (a real process): progress while it works, what it
rebuilt and why, and not one warning, with Python's warnings shown (-W default)."""

import os
import subprocess
import sys

from tests.records import event


def _c360_run(lake) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "default", "-m", "c360_assets.tools.cli", "run", "--quiet"],
        cwd=lake.root,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_a_run_shows_progress_and_why_and_no_warning(lake):
    lake.drop(
        "usage_events",
        "u.jsonl",
        [
            event(event_id="e1", occurred_at="2026-10-01T08:00:00Z"),
            event(event_id="e2", occurred_at="2026-10-02T08:00:00Z"),
        ],
    )
    first = _c360_run(lake)
    assert "warning" not in first.lower(), first
    assert "daily_job 2026-10-01..2026-10-02 …" in first  # which job, which partitions
    assert "daily: 2/2 partitions" in first and "monthly: 1/1 partitions" in first
    assert "rebuilt 2 daily partition(s): 2026-10-01, 2026-10-02" in first
    assert "  new usage events: 2026-10-01, 2026-10-02" in first
    assert "  days rebuilt: 2026-10-01" in first  # why October was rebuilt

    # a late event for a day already built: late data, that day and its month only
    lake.drop(
        "usage_events", "late.jsonl", [event(event_id="e3", occurred_at="2026-10-02T23:00:00Z")]
    )
    second = _c360_run(lake)
    assert "warning" not in second.lower(), second
    assert "rebuilt 1 daily partition(s): 2026-10-02\n  late usage events: 2026-10-02" in second
    assert "rebuilt 1 monthly partition(s): 2026-10-01" in second
