"""PostgreSQL: the Iceberg catalog's database, on loopback, run as the `postgres` OS user."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import psutil

from c360_assets.lib.sqlquote import literal
from c360_assets.tools.stack.config import (
    NAMESPACES,
    PG_DATABASE,
    PG_OS_USER,
    PG_USER,
    StackConfig,
    StackError,
)
from c360_assets.tools.stack.processes import (
    Echo,
    echo_stdout,
    is_root,
    process_with_arg,
    read_pid,
    require_free_port,
    run,
    tail,
)
from resources.private_files import private_dir


def as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses root: as root run PostgreSQL tools as the postgres OS user."""
    return ["runuser", "-u", PG_OS_USER, "--", *cmd] if is_root() else cmd


def postgres_bin_dir(echo: Echo = echo_stdout) -> Path:
    """The newest Debian PostgreSQL bin dir; installs the `postgresql` package when missing."""
    found = _find_postgres_bin()
    if found:
        return found
    if not is_root():
        raise StackError("PostgreSQL is not installed: run `apt-get install -y postgresql`")
    echo("installing PostgreSQL (apt-get install postgresql)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], what="apt-get update", env=env)
    run(["apt-get", "install", "-y", "postgresql"], what="apt-get install postgresql", env=env)
    found = _find_postgres_bin()
    if not found:
        raise StackError("apt-get installed postgresql but no initdb under /usr/lib/postgresql")
    return found


def _find_postgres_bin() -> Path | None:
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


def postgres_pid(cfg: StackConfig) -> int | None:
    return process_with_arg(read_pid(cfg.pg_data / "postmaster.pid"), str(cfg.pg_data))


def prepare_stack_dir(cfg: StackConfig) -> None:
    """The state dir is owner-only; as root its group is `postgres` with traverse-only access,
    so the postgres OS user reaches its own data dir inside and nobody else gets in."""
    if not is_root():
        private_dir(cfg.stack_dir)
        return
    private_dir(cfg.stack_dir, 0o710)
    shutil.chown(cfg.stack_dir, group=PG_OS_USER)


def ensure_postgres(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    bin_dir = postgres_bin_dir(echo)
    pid = postgres_pid(cfg)
    if pid:
        echo(f"postgres already running (pid {pid})")
    else:
        require_free_port(cfg.pg_port, "PostgreSQL", "C360_PG_PORT")
        _prepare_postgres_dirs(cfg)
        if not (cfg.pg_data / "PG_VERSION").exists():
            _initdb(cfg, bin_dir, echo)
        _start_postgres(cfg, bin_dir, echo)
    _bootstrap_catalog_db(cfg, bin_dir)


def _prepare_postgres_dirs(cfg: StackConfig) -> None:
    for path in (cfg.pg_root, cfg.pg_socket_dir):
        private_dir(path)
    if not is_root():
        return
    shutil.chown(cfg.pg_root, PG_OS_USER, PG_OS_USER)
    shutil.chown(cfg.pg_socket_dir, PG_OS_USER, PG_OS_USER)
    probe = subprocess.run(as_postgres(["test", "-w", str(cfg.pg_root)]), check=False)
    if probe.returncode != 0:
        raise StackError(
            f"the {PG_OS_USER} OS user cannot write {cfg.pg_root}: every parent directory must "
            f"be traversable by it (chmod o+x), or set C360_STACK_DIR elsewhere"
        )


def _initdb(cfg: StackConfig, bin_dir: Path, echo: Echo) -> None:
    echo(f"initdb {cfg.pg_data}")
    cmd = [
        str(bin_dir / "initdb"),
        "-D",
        str(cfg.pg_data),
        "-U",
        PG_OS_USER,
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    run(as_postgres(cmd), what="initdb", cwd=cfg.pg_root)


def _start_postgres(cfg: StackConfig, bin_dir: Path, echo: Echo) -> None:
    # pg_ctl hands -o to a shell, hence the quoting of the path.
    socket_dir = shlex.quote(str(cfg.pg_socket_dir))
    options = f"-c listen_addresses=127.0.0.1 -p {cfg.pg_port} -k {socket_dir}"
    cmd = [str(bin_dir / "pg_ctl"), "start", "-D", str(cfg.pg_data), "-l", str(cfg.pg_log)]
    cmd += ["-w", "-t", "60", "-o", options]
    try:
        run(as_postgres(cmd), what="pg_ctl start", cwd=cfg.pg_root)
    except StackError as exc:
        raise StackError(f"{exc}\n--- {cfg.pg_log} ---\n{tail(cfg.pg_log)}") from exc
    echo(f"postgres started on 127.0.0.1:{cfg.pg_port} (pid {postgres_pid(cfg)})")


def _bootstrap_catalog_db(cfg: StackConfig, bin_dir: Path) -> None:
    """Role `c360` with the configured password and database `c360_catalog` (idempotent)."""
    script = f"""
SELECT 'CREATE ROLE {PG_USER} LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_USER}') \\gexec
ALTER ROLE {PG_USER} WITH LOGIN PASSWORD {literal(cfg.pg_password)};
SELECT 'CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{PG_DATABASE}') \\gexec
"""
    psql = [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    psql += ["-h", str(cfg.pg_socket_dir), "-p", str(cfg.pg_port), "-d", "postgres"]
    # The script goes through stdin so the password never shows up in a process list.
    run(as_postgres(psql), what="creating the catalog role/database", input=script, cwd="/")


def stop_postgres(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    pid = postgres_pid(cfg)
    if not pid:
        echo("postgres not running")
        return
    pg_ctl = Path(psutil.Process(pid).exe()).with_name("pg_ctl")
    cmd = [str(pg_ctl), "stop", "-D", str(cfg.pg_data), "-m", "fast", "-w", "-t", "60"]
    run(as_postgres(cmd), what="pg_ctl stop", cwd=cfg.pg_root)
    echo(f"postgres stopped (was pid {pid})")


def ensure_catalog(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    """Create pyiceberg's SQL-catalog tables and the namespaces before Trino reads them."""
    from pyiceberg.catalog.sql import SqlCatalog

    if not cfg.cluster:
        private_dir(cfg.warehouse)
    catalog = SqlCatalog(cfg.catalog_name, uri=cfg.catalog_uri, warehouse=cfg.warehouse_uri)
    try:
        for namespace in NAMESPACES:
            catalog.create_namespace_if_not_exists(namespace)
    finally:
        catalog.engine.dispose()
    echo(f"iceberg catalog '{cfg.catalog_name}' ready: namespaces {', '.join(NAMESPACES)}")
