"""tests/records.py builds every landing source's records with exactly its declared columns."""

import inspect

import pytest

from c360_assets.defs.ingest.sources import SOURCES
from tests.records import BUILDERS


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_each_builder_takes_and_returns_its_sources_columns_in_order(source):
    columns = [c.name for c in source.columns]
    builder = BUILDERS[source.name]
    assert list(inspect.signature(builder).parameters) == columns
    assert list(builder()) == columns
    assert all(builder()[c.name] is not None for c in source.columns if c.required)


def test_every_source_has_a_builder():
    assert set(BUILDERS) == {s.name for s in SOURCES}
