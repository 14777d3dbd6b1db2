"""The c360 code location: `dagster dev` from the repo root loads this file (see workspace.yaml)."""

import dagster as dg

from c360_assets.definitions import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
