"""A real Dagster daemon (sensors, backfills, the run queue) over the repo's workspace."""

import os
import signal
import subprocess
import sys
import time
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
                cwd=REPO,
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
