"""How a landing source is declared: its folder, raw table, typed columns and validation rules.

The declarations themselves (CONTRACT section 2) live in ``c360_assets/defs/ingest/sources.py``;
the ingestion engine (``c360_assets/lib/ingest.py``) is generated from them.

A declaration is a contract: a file with a header (CSV) or a schema (Parquet) lacking a declared
column is quarantined whole; a column it has that is not declared lands nowhere and is reported.
"""

from dataclasses import dataclass, field

# The 64-bit range every int column lives in: a value outside it is quarantined with its reason
# (never wrapped, clipped or replaced by the column's default).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | int | timestamp | date | decimal | bool
    required: bool = False
    default: str | None = None  # SQL literal used when the value is absent
    min_value: int | None = None  # for int columns (None: the 64-bit range)
    max_value: int | None = None  # for int columns (None: the 64-bit range)
    # an identifier or code (ids, products, currencies, statuses): a control character (NUL, ...)
    # or a bidirectional-override character in it quarantines the record
    identifier: bool = False

    @property
    def lowest(self) -> int:
        return INT_MIN if self.min_value is None else self.min_value

    @property
    def highest(self) -> int:
        return INT_MAX if self.max_value is None else self.max_value


@dataclass(frozen=True)
class Source:
    name: str  # also the raw table name: raw.<name>
    folder: str  # below the landing dir
    columns: tuple[Column, ...]
    # the timestamp column whose UTC date partitions the raw table (usage events only)
    event_time: str | None = None
    # document-date columns: their UTC months are reported as touched by an ingestion
    month_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for col in self.columns:
            if col.type != "int" and (col.min_value is not None or col.max_value is not None):
                raise ValueError(f"{self.name}.{col.name}: a range is declared for int columns")
            if not INT_MIN <= col.lowest <= col.highest <= INT_MAX:
                raise ValueError(f"{self.name}.{col.name}: its range leaves the 64-bit range")
            if col.identifier and col.type != "string":
                raise ValueError(f"{self.name}.{col.name}: an identifier is a string column")

    @property
    def table(self) -> str:
        return f"raw.{self.name}"

    @property
    def asset_name(self) -> str:
        return f"raw_{self.name}"

    @property
    def columns_by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}
