import dagster as dg
import pytest

from resources.lakehouse import LakehouseResource
from tests.lake import Lake
from tests.stack_fixture import trino_stack  # noqa: F401  (the session's real serving stack)


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lake:
    """A fresh embedded lakehouse + Dagster instance under tmp_path, pointed to by the env."""
    env = {
        "C360_LANDING_DIR": str(tmp_path / "landing"),
        "C360_WAREHOUSE": str(tmp_path / "warehouse"),
        "C360_CATALOG_URI": f"sqlite:///{tmp_path / 'catalog.db'}",
        "C360_CATALOG_NAME": "c360",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "landing").mkdir()
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.get() as instance:
        yield Lake(tmp_path, LakehouseResource.from_env(), instance)
