"""The real stack on this machine, as `c360 stack up | down | status | env` runs it.

- ``config``: what the stack is and where it lives (``StackConfig``, the two profiles);
- ``postgres``: the Iceberg catalog's PostgreSQL; ``objectstore``: the cluster's S3 server;
- ``trino``: one Trino node, or a coordinator plus workers;
- ``control``: up, down, status, env over all of them.

Everything binds to 127.0.0.1. State (data, etc/, logs, pid files, keys) lives owner-only under
``C360_STACK_DIR``; the downloads and builds (Trino, MinIO) under ``C360_CACHE_DIR``, so they
survive clean clones.
"""

from c360_assets.tools.stack.config import (
    DEV_SECRETS,
    NAMESPACES,
    TRINO_ADMIN,
    TRINO_BI,
    TRINO_VERSION,
    StackConfig,
    StackError,
)
from c360_assets.tools.stack.control import (
    default_password_warnings,
    down,
    env_lines,
    format_status,
    install,
    processes,
    publish_bi_views,
    status,
    up,
)
from c360_assets.tools.stack.postgres import stop_postgres
from c360_assets.tools.stack.trino import (
    active_workers,
    stop_trino,
    trino_pid,
    trino_resource,
)
from resources.trino import TRINO_CATALOG

__all__ = [
    "DEV_SECRETS",
    "NAMESPACES",
    "TRINO_ADMIN",
    "TRINO_BI",
    "TRINO_CATALOG",
    "TRINO_VERSION",
    "StackConfig",
    "StackError",
    "active_workers",
    "default_password_warnings",
    "down",
    "install",
    "env_lines",
    "format_status",
    "processes",
    "publish_bi_views",
    "status",
    "stop_postgres",
    "stop_trino",
    "trino_pid",
    "trino_resource",
    "up",
]
