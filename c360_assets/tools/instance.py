"""The Dagster instance every ``c360`` command uses (DAGSTER_HOME, with c360's settings)."""

import fcntl
import os
from pathlib import Path

DEFAULT_DAGSTER_HOME = "./data/dagster_home"
MARKER = "# Written by c360"
INSTANCE_YAML = f"""\
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


def dagster_home() -> Path:
    """DAGSTER_HOME, or ./data/dagster_home: created, with c360's instance settings and its
    storage initialized.

    Commands started together on a new home would race to create Dagster's SQLite storage
    (its schema migration is not safe to run twice at once), so the first one creates it while
    holding an exclusive lock on a file of the home; the others then find it made. The home is
    a local directory, so a local lock covers exactly what it guards.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".c360-init.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = home / "dagster.yaml"
        if not config.exists() or (
            config.read_text().startswith(MARKER) and config.read_text() != INSTANCE_YAML
        ):  # c360's own settings follow the code; an operator's own file is left alone
            config.write_text(INSTANCE_YAML)
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)  # creates or migrates its storage, once
    return home
