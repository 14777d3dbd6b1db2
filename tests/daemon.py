"""A real Dagster daemon (sensors, backfills, the run queue) over the repo's workspace."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"
TIMEOUT_SECONDS = 480
BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


class Daemon:
    """``dagster-daemon run`` in its own process group, its output in ``root/daemon.log``."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None):
        self.log = root / "daemon.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dagster._daemon",
                    "run",
                    "-w",
                    str(REPO / "workspace.yaml"),
                ],
                cwd=root,  # not the repo: a developer's .env there is not the test's settings
                env=dict(env if env is not None else os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, predicate: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dagster-daemon exited ({self.process.returncode}):\n{self.tail()}"
                )
            if predicate():
                return
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}; daemon log:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-6000:]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def idle(instance: dg.DagsterInstance) -> bool:
    """No run queued or in progress."""
    return not instance.get_runs(filters=dg.RunsFilter(statuses=BUSY))


def launch_backfill(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    assets: list[dg.AssetKey],
    partitions: list[str],
) -> str:
    """Launch a backfill of ``assets`` over ``partitions``, as the UI's "Materialize" does (the
    daemon runs it); returns its id."""
    from dagster._core.execution.backfill import PartitionBackfill

    backfill_id = f"c360test{uuid.uuid4().hex[:8]}"
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=defs.resolve_asset_graph(),
            partition_names=partitions,
            asset_selection=assets,
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
    )
    return backfill_id
