"""SQL string literals for the few statements built as text (DuckDB, Trino, PostgreSQL)."""

from collections.abc import Iterable


def literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def literal_list(values: Iterable[str]) -> str:
    """``values`` as a DuckDB list of string literals, e.g. file paths for ``read_parquet``."""
    return "[" + ", ".join(literal(v) for v in values) + "]"
