"""The Dagster instance every ``c360`` command uses (DAGSTER_HOME, with c360's settings)."""

import os
from pathlib import Path

from resources.private_files import private_dir

DEFAULT_DAGSTER_HOME = "./data/dagster_home"
INSTANCE_YAML = """\
# Written by c360: one run at a time, so Iceberg commits from the daemon never race each other.
run_queue:
  max_concurrent_runs: 1
run_retries:
  enabled: true
  max_retries: 2
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    """DAGSTER_HOME, or ./data/dagster_home (created, with c360's instance settings)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    private_dir(home)  # run logs and event metadata: owner-only
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    return home
