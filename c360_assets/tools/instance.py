"""The Dagster instance every ``c360`` command uses (DAGSTER_HOME, with c360's settings)."""

import fcntl
import json
import os
from pathlib import Path

from resources.private_files import private_dir

DEFAULT_DAGSTER_HOME = "./data/dagster_home"
ENV_FILE = Path(".env")  # read by `dagster dev` from its working directory, and by every command
MARKER = "# Written by c360"
INSTANCE_SETTINGS = f"""\
{MARKER}: several runs at once (sensor-launched runs, backfills split into runs of a few
# partitions); what must not overlap is serialized by leases in the catalog's database
# (resources/leases.py), so this queue only bounds the load. Ingestion runs one at a time here
# because a second one would only wait for the first one's leases.
run_queue:
  max_concurrent_runs: 3
  tag_concurrency_limits:
    - key: c360/stage
      value: ingest
      limit: 1
run_retries:
  enabled: true
  max_retries: 2
telemetry:
  enabled: false
"""
# Dagster's SQLite event log in its usual place, its connections kept open between statements
# (event_log.py): the home's own path, so the file is written for each home
EVENT_LOG = """\
event_log_storage:
  module: c360_assets.tools.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


def instance_yaml(home: Path) -> str:
    """c360's dagster.yaml for the home ``home``."""
    base_dir = json.dumps(str(home.resolve() / "history" / "runs"))  # a quoted YAML scalar
    return INSTANCE_SETTINGS + EVENT_LOG.format(base_dir=base_dir)


def dagster_home() -> Path:
    """DAGSTER_HOME, or ./data/dagster_home: created, with c360's instance settings and its
    storage initialized.

    Commands started together on a new home would race to create Dagster's SQLite storage
    (its schema migration is not safe to run twice at once), so the first one creates it while
    holding an exclusive lock on a file of the home; the others then find it made. The home is
    a local directory, so a local lock covers exactly what it guards.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    private_dir(home)  # run logs and event metadata: owner-only
    with (home / ".c360-init.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = home / "dagster.yaml"
        wanted = instance_yaml(home)
        if not config.exists() or (
            config.read_text().startswith(MARKER) and config.read_text() != wanted
        ):  # c360's own settings follow the code (and the home); an operator's file is left alone
            config.write_text(wanted)
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)  # creates or migrates its storage, once
    return home


def load_env_file(path: Path = ENV_FILE) -> None:
    """Read ``.env`` like ``dagster dev`` does (``c360 demo`` writes the first partitions there);
    a variable already set in the environment wins."""
    if path.is_file():
        from dotenv import dotenv_values

        for name, value in dotenv_values(path).items():
            if value is not None:
                os.environ.setdefault(name, value)
