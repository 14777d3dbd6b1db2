"""Files that hold data are private to the OS user running c360 (issue 16): the warehouse, a
landing copy c360 writes, DAGSTER_HOME, the stack's files (test_cluster.py). Checked by a real
read as another OS user (`nobody`), with a file that user can read as the probe's control."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from c360_assets.lib.sqlmodel import connect
from c360_assets.tools.cli import main
from resources.lakehouse import LakehouseResource
from tests.osuser import readable_by_another_user


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder everybody may enter and list (pytest's own tmp dirs are private already)."""
    base = Path(tempfile.mkdtemp(prefix="c360-open-"))
    base.chmod(0o755)
    control = base / "control.txt"
    control.write_text("anyone may read this\n")
    control.chmod(0o644)
    assert readable_by_another_user(control)  # the probe can say yes
    yield base
    shutil.rmtree(base)


def test_the_warehouse_is_private(open_dir: Path) -> None:
    lakehouse = LakehouseResource(
        catalog_uri=f"sqlite:///{open_dir / 'catalog.db'}",
        warehouse=str(open_dir / "warehouse"),
        landing_dir=str(open_dir / "landing"),
    )
    con = connect()
    con.register("rows", pa.table({"owner_email": ["jane.doe@example.com"]}))
    _, files = lakehouse.write_query(con, "raw.private_probe", "select * from rows")
    con.close()

    (data_file,) = [Path(f.removeprefix("file://")) for f in files]
    assert data_file.is_relative_to(open_dir / "warehouse")
    assert (open_dir / "warehouse").stat().st_mode & 0o777 == 0o700
    assert not readable_by_another_user(data_file)
    metadata = lakehouse.load("raw.private_probe").metadata_location.removeprefix("file://")
    assert not readable_by_another_user(Path(metadata))


def test_a_landing_copy_and_dagster_home_are_private(open_dir: Path, monkeypatch) -> None:
    landing = open_dir / "landing"
    args = ["generate", "--out", str(landing), "--customers", "3", "--days", "1"]
    assert main([*args, "--events-per-day", "20", "--no-progress"]) == 0

    events = sorted((landing / "usage_events").iterdir())
    assert events and landing.stat().st_mode & 0o777 == 0o700
    assert not readable_by_another_user(events[0])

    from c360_assets.tools.instance import dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(open_dir / "dagster_home"))
    home = dagster_home()
    assert home.stat().st_mode & 0o777 == 0o700
    assert not readable_by_another_user(home / "dagster.yaml")
