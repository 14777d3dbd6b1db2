"""How a landing source is declared: its folder, raw table, typed columns and validation rules.

The declarations themselves (CONTRACT section 2) live in ``c360_assets/defs/ingest/sources.py``;
the ingestion engine (``c360_assets/lib/ingest.py``) is generated from them.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | int | timestamp | date | decimal | bool
    required: bool = False
    default: str | None = None  # SQL literal used when the value is absent
    min_value: int | None = None  # for int columns


@dataclass(frozen=True)
class Source:
    name: str  # also the raw table name: raw.<name>
    folder: str  # below the landing dir
    columns: tuple[Column, ...]
    # the timestamp column whose UTC date partitions the raw table (usage events only)
    event_time: str | None = None
    # document-date columns: their UTC months are reported as touched by an ingestion
    month_columns: tuple[str, ...] = field(default=())

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    @property
    def asset_name(self) -> str:
        return f"raw_{self.name}"

    @property
    def columns_by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}
