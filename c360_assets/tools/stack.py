"""The real serving stack on this machine: PostgreSQL (Iceberg JDBC catalog) + Trino 476.

`up()` starts both (idempotent), waits until Trino reads the catalog and publishes the BI views
(`c360_assets.defs.serving.assets`: unchanged views are left alone), `down()` stops exactly
what `up()` started, `status()` reports and `env_lines()` returns `export NAME=value` lines
pointing every other command at the stack.
Everything binds to 127.0.0.1. State (data, etc/, logs, pid files) lives under `C360_STACK_DIR`;
the Trino download lives under `C360_CACHE_DIR` so it survives clean clones.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil

from c360_assets.lib.sqlquote import literal
from resources.trino import TRINO_CATALOG

if TYPE_CHECKING:
    from resources.trino import TrinoResource

TRINO_VERSION = "476"
NAMESPACES = ("raw", "staging", "core", "marts")
PG_USER = "c360"
PG_DATABASE = "c360_catalog"
PG_OS_USER = "postgres"
TRINO_ADMIN = "c360"
TRINO_BI = "bi"
MIN_JAVA = 24
READY_TIMEOUT_S = 240
TEMPLATES = Path(__file__).with_name("stack_templates")

# Development defaults of the stack's secrets. This is the one place they are written down;
# set the environment variables to anything else outside a laptop.
DEV_SECRETS = {
    "C360_PG_PASSWORD": "c360dev",
    "C360_TRINO_PASSWORD": "c360dev",
    "C360_TRINO_BI_PASSWORD": "c360bi",
}

Echo = Callable[[str], None]


class StackError(RuntimeError):
    """The stack cannot be started or stopped; the message says why and what to do."""


def _echo(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class StackConfig:
    stack_dir: Path
    cache_dir: Path
    warehouse: Path
    catalog_name: str
    pg_port: int
    trino_port: int
    trino_internal_port: int
    pg_password: str
    trino_password: str
    bi_password: str
    java_home: Path
    trino_heap: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        trino_port = int(get("C360_TRINO_PORT", "18080"))
        return cls(
            stack_dir=Path(get("C360_STACK_DIR", "./data/stack")).expanduser().resolve(),
            cache_dir=Path(get("C360_CACHE_DIR", "~/.cache/c360")).expanduser().resolve(),
            warehouse=Path(get("C360_WAREHOUSE", "./data/warehouse")).expanduser().resolve(),
            catalog_name=get("C360_CATALOG_NAME", "c360"),
            pg_port=int(get("C360_PG_PORT", "55432")),
            trino_port=trino_port,
            trino_internal_port=int(get("C360_TRINO_INTERNAL_PORT", str(trino_port + 1))),
            pg_password=get("C360_PG_PASSWORD", DEV_SECRETS["C360_PG_PASSWORD"]),
            trino_password=get("C360_TRINO_PASSWORD", DEV_SECRETS["C360_TRINO_PASSWORD"]),
            bi_password=get("C360_TRINO_BI_PASSWORD", DEV_SECRETS["C360_TRINO_BI_PASSWORD"]),
            java_home=Path(get("C360_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")),
            trino_heap=get("C360_TRINO_HEAP", "3G"),
        )

    # PostgreSQL layout: everything under pg_root is owned by the postgres OS user.
    @property
    def pg_root(self) -> Path:
        return self.stack_dir / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_root / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.pg_root / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_root / "postgres.log"

    # Trino layout.
    @property
    def trino_etc(self) -> Path:
        return self.stack_dir / "trino" / "etc"

    @property
    def trino_data(self) -> Path:
        return self.stack_dir / "trino" / "data"

    @property
    def trino_tls_pem(self) -> Path:
        """Private key + self-signed certificate of the HTTPS endpoint (Trino reads the PEM)."""
        return self.stack_dir / "trino" / "tls" / "trino.pem"

    @property
    def trino_tls_cert(self) -> Path:
        """The certificate alone: what clients trust (`verify=` in the Python client)."""
        return self.stack_dir / "trino" / "tls" / "trino-cert.pem"

    @property
    def trino_pid_file(self) -> Path:
        return self.stack_dir / "run" / "trino.pid"

    @property
    def trino_log(self) -> Path:
        return self.stack_dir / "logs" / "trino-server.log"

    @property
    def trino_launcher_log(self) -> Path:
        return self.stack_dir / "logs" / "trino-launcher.log"

    @property
    def trino_download_dir(self) -> Path:
        return self.cache_dir / "trino"

    @property
    def trino_home(self) -> Path:
        return self.trino_download_dir / f"trino-server-{TRINO_VERSION}"

    @property
    def warehouse_uri(self) -> str:
        return self.warehouse.as_uri()

    @property
    def catalog_uri(self) -> str:
        password = quote(self.pg_password, safe="")
        return f"postgresql+psycopg2://{PG_USER}:{password}@127.0.0.1:{self.pg_port}/{PG_DATABASE}"


# --------------------------------------------------------------------------- public API


def up(config: StackConfig | None = None, echo: Echo = _echo) -> dict:
    """Start PostgreSQL, create the Iceberg catalog, start Trino; harmless when already up."""
    cfg = config or StackConfig.from_env()
    started = time.monotonic()
    cfg.stack_dir.mkdir(parents=True, exist_ok=True)
    trino_install = None if trino_pid(cfg) else _trino_preflight(cfg, echo)
    ensure_postgres(cfg, echo)
    ensure_catalog(cfg, echo)
    ensure_trino(cfg, echo, trino_install)
    wait_catalog_readable(cfg, echo)
    publish_bi_views(cfg, echo)
    echo(f"stack up in {time.monotonic() - started:.0f} s")
    result = status(cfg)
    echo(format_status(result))
    return result


def down(config: StackConfig | None = None, echo: Echo = _echo) -> dict:
    """Stop the Trino and PostgreSQL processes that `up()` started, and nothing else."""
    cfg = config or StackConfig.from_env()
    stop_trino(cfg, echo)
    stop_postgres(cfg, echo)
    return status(cfg)


def status(config: StackConfig | None = None) -> dict:
    cfg = config or StackConfig.from_env()
    pg_pid = postgres_pid(cfg)
    trino = trino_pid(cfg)
    return {
        "stack_dir": str(cfg.stack_dir),
        "postgres": {
            "state": "running" if pg_pid else "stopped",
            "pid": pg_pid,
            "port": cfg.pg_port,
            "data_dir": str(cfg.pg_data),
        },
        "trino": {
            "state": "running" if trino else "stopped",
            "pid": trino,
            "port": cfg.trino_port,
            "internal_port": cfg.trino_internal_port,
            "ready": bool(trino) and _trino_info(cfg).get("starting") is False,
            "server_log": str(cfg.trino_log),
        },
    }


def format_status(result: dict) -> str:
    lines = []
    for name in ("postgres", "trino"):
        part = result[name]
        pid = f" pid {part['pid']}" if part["pid"] else ""
        scheme = "https://" if name == "trino" else ""
        lines.append(f"{name:<9} {part['state']:<8} {scheme}127.0.0.1:{part['port']}{pid}")
    return "\n".join(lines)


def env_lines(config: StackConfig | None = None) -> list[str]:
    """`export NAME=value` lines so that `eval "$(c360 stack env)"` points at the stack."""
    cfg = config or StackConfig.from_env()
    values = {
        "C360_CATALOG_URI": cfg.catalog_uri,
        "C360_CATALOG_NAME": cfg.catalog_name,
        "C360_WAREHOUSE": str(cfg.warehouse),
        "C360_STACK_DIR": str(cfg.stack_dir),
        "C360_PG_PORT": str(cfg.pg_port),
        "C360_TRINO_HOST": "127.0.0.1",
        "C360_TRINO_PORT": str(cfg.trino_port),
        "C360_TRINO_HTTP_SCHEME": "https",
        "C360_TRINO_CA_FILE": str(cfg.trino_tls_cert),
        "C360_TRINO_CATALOG": TRINO_CATALOG,
        "C360_TRINO_USER": TRINO_ADMIN,
        "C360_TRINO_PASSWORD": cfg.trino_password,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


# --------------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise StackError(f"{what} failed (exit {proc.returncode}): {output[-2000:]}")
    return proc


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _require_free_port(port: int, service: str, variable: str) -> None:
    if _port_in_use(port):
        raise StackError(
            f"port {port} on 127.0.0.1 is taken by another process, so {service} cannot start; "
            f"stop that process or choose another port with {variable}"
        )


def _process_with_arg(pid: int | None, needle: str) -> int | None:
    """`pid` if it is alive and its command line mentions `needle` (guards against reuse)."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid if any(needle in arg for arg in cmdline) else None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


# --------------------------------------------------------------------------- PostgreSQL


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses root: as root run PostgreSQL tools as the postgres OS user."""
    return ["runuser", "-u", PG_OS_USER, "--", *cmd] if _is_root() else cmd


def postgres_bin_dir(echo: Echo = _echo) -> Path:
    """The newest Debian PostgreSQL bin dir; installs the `postgresql` package when missing."""
    found = _find_postgres_bin()
    if found:
        return found
    if not _is_root():
        raise StackError("PostgreSQL is not installed: run `apt-get install -y postgresql`")
    echo("installing PostgreSQL (apt-get install postgresql)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], what="apt-get update", env=env)
    _run(["apt-get", "install", "-y", "postgresql"], what="apt-get install postgresql", env=env)
    found = _find_postgres_bin()
    if not found:
        raise StackError("apt-get installed postgresql but no initdb under /usr/lib/postgresql")
    return found


def _find_postgres_bin() -> Path | None:
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


def postgres_pid(cfg: StackConfig) -> int | None:
    return _process_with_arg(_read_pid(cfg.pg_data / "postmaster.pid"), str(cfg.pg_data))


def ensure_postgres(cfg: StackConfig, echo: Echo = _echo) -> None:
    bin_dir = postgres_bin_dir(echo)
    pid = postgres_pid(cfg)
    if pid:
        echo(f"postgres already running (pid {pid})")
    else:
        _require_free_port(cfg.pg_port, "PostgreSQL", "C360_PG_PORT")
        _prepare_postgres_dirs(cfg)
        if not (cfg.pg_data / "PG_VERSION").exists():
            _initdb(cfg, bin_dir, echo)
        _start_postgres(cfg, bin_dir, echo)
    _bootstrap_catalog_db(cfg, bin_dir)


def _prepare_postgres_dirs(cfg: StackConfig) -> None:
    for path in (cfg.pg_root, cfg.pg_socket_dir):
        path.mkdir(parents=True, exist_ok=True)
    if not _is_root():
        return
    shutil.chown(cfg.pg_root, PG_OS_USER, PG_OS_USER)
    shutil.chown(cfg.pg_socket_dir, PG_OS_USER, PG_OS_USER)
    probe = subprocess.run(_as_postgres(["test", "-w", str(cfg.pg_root)]), check=False)
    if probe.returncode != 0:
        raise StackError(
            f"the {PG_OS_USER} OS user cannot write {cfg.pg_root}: every parent directory must "
            f"be traversable by others (chmod o+x), or set C360_STACK_DIR elsewhere"
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
    _run(_as_postgres(cmd), what="initdb", cwd=cfg.pg_root)


def _start_postgres(cfg: StackConfig, bin_dir: Path, echo: Echo) -> None:
    # pg_ctl hands -o to a shell, hence the quoting of the path.
    socket_dir = shlex.quote(str(cfg.pg_socket_dir))
    options = f"-c listen_addresses=127.0.0.1 -p {cfg.pg_port} -k {socket_dir}"
    cmd = [str(bin_dir / "pg_ctl"), "start", "-D", str(cfg.pg_data), "-l", str(cfg.pg_log)]
    cmd += ["-w", "-t", "60", "-o", options]
    try:
        _run(_as_postgres(cmd), what="pg_ctl start", cwd=cfg.pg_root)
    except StackError as exc:
        raise StackError(f"{exc}\n--- {cfg.pg_log} ---\n{_tail(cfg.pg_log)}") from exc
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
    _run(_as_postgres(psql), what="creating the catalog role/database", input=script, cwd="/")


def stop_postgres(cfg: StackConfig, echo: Echo = _echo) -> None:
    pid = postgres_pid(cfg)
    if not pid:
        echo("postgres not running")
        return
    pg_ctl = Path(psutil.Process(pid).exe()).with_name("pg_ctl")
    cmd = [str(pg_ctl), "stop", "-D", str(cfg.pg_data), "-m", "fast", "-w", "-t", "60"]
    _run(_as_postgres(cmd), what="pg_ctl stop", cwd=cfg.pg_root)
    echo(f"postgres stopped (was pid {pid})")


# --------------------------------------------------------------------------- Iceberg catalog


def ensure_catalog(cfg: StackConfig, echo: Echo = _echo) -> None:
    """Create pyiceberg's SQL-catalog tables and the namespaces before Trino reads them."""
    from pyiceberg.catalog.sql import SqlCatalog

    cfg.warehouse.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(cfg.catalog_name, uri=cfg.catalog_uri, warehouse=cfg.warehouse_uri)
    try:
        for namespace in NAMESPACES:
            catalog.create_namespace_if_not_exists(namespace)
    finally:
        catalog.engine.dispose()
    echo(f"iceberg catalog '{cfg.catalog_name}' ready: namespaces {', '.join(NAMESPACES)}")


# --------------------------------------------------------------------------- Trino


def trino_pid(cfg: StackConfig) -> int | None:
    return _process_with_arg(_read_pid(cfg.trino_pid_file), str(cfg.trino_etc))


def _trino_preflight(cfg: StackConfig, echo: Echo) -> tuple[Path, Path]:
    """Java, ports and the download, checked before anything starts: (trino home, java home)."""
    java_home = check_java(cfg.java_home)
    _require_free_port(cfg.trino_port, "Trino", "C360_TRINO_PORT")
    _require_free_port(cfg.trino_internal_port, "Trino (internal)", "C360_TRINO_INTERNAL_PORT")
    return ensure_trino_install(cfg, echo), java_home


def ensure_trino(
    cfg: StackConfig, echo: Echo = _echo, install: tuple[Path, Path] | None = None
) -> None:
    pid = trino_pid(cfg)
    if pid:
        echo(f"trino already running (pid {pid})")
    else:
        home, java_home = install or _trino_preflight(cfg, echo)
        ensure_tls_certificate(cfg)
        write_trino_etc(cfg)
        _start_trino(cfg, home, java_home, echo)
    _wait_trino_ready(cfg, echo)


def check_java(java_home: Path) -> Path:
    java = java_home / "bin" / "java"
    hint = f"Trino {TRINO_VERSION} needs Java >= {MIN_JAVA}; point C360_JAVA_HOME at one"
    if not java.exists():
        raise StackError(f"no Java at {java}. {hint}")
    proc = _run([str(java), "-XshowSettings:properties", "-version"], what=f"{java} -version")
    for line in proc.stderr.splitlines():
        name, _, value = line.strip().partition(" = ")
        if name == "java.specification.version":
            if int(value.split(".")[0]) < MIN_JAVA:
                raise StackError(f"{java} is Java {value}. {hint}")
            return java_home
    raise StackError(f"cannot tell the version of {java}. {hint}")


def ensure_trino_install(cfg: StackConfig, echo: Echo = _echo) -> Path:
    """Download (Maven) and unpack Trino server + Iceberg plugin once into the cache."""
    home = cfg.trino_home
    if (home / "bin" / "launcher").exists() and (home / "plugin" / "iceberg").is_dir():
        return home
    server = _ensure_artifact(cfg, "trino-server-core", "tar.gz", echo)
    iceberg = _ensure_artifact(cfg, "trino-iceberg", "zip", echo)
    echo(f"unpacking Trino {TRINO_VERSION} into {home}")
    staging = cfg.trino_download_dir / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(server) as tar:
            tar.extractall(staging, filter="data")
        unpacked = staging / f"trino-server-core-{TRINO_VERSION}"
        with zipfile.ZipFile(iceberg) as archive:
            archive.extractall(staging)
        (staging / f"trino-iceberg-{TRINO_VERSION}").rename(unpacked / "plugin" / "iceberg")
        shutil.rmtree(home, ignore_errors=True)
        unpacked.rename(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _ensure_artifact(cfg: StackConfig, artifact: str, kind: str, echo: Echo) -> Path:
    target = cfg.trino_download_dir / f"{artifact}-{TRINO_VERSION}.{kind}"
    if target.exists():
        return target
    if not shutil.which("mvn"):
        raise StackError(f"{target} is missing and Maven (mvn) is not installed to fetch it")
    echo(f"downloading io.trino:{artifact}:{TRINO_VERSION}:{kind} with Maven...")
    cfg.trino_download_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-q", "-B", "dependency:copy"]
    cmd += [f"-Dartifact=io.trino:{artifact}:{TRINO_VERSION}:{kind}"]
    cmd += [f"-DoutputDirectory={cfg.trino_download_dir}"]
    _run(cmd, what=f"downloading {artifact} {TRINO_VERSION} with Maven", cwd=cfg.trino_download_dir)
    if not target.exists():
        raise StackError(f"Maven finished but {target} is not there")
    return target


def _render(name: str, **values: object) -> str:
    return Template((TEMPLATES / name).read_text()).substitute(values)


def query_memory(heap: str, share: float = 0.6) -> str:
    """Trino's per-node query memory for a JVM heap such as ``8G`` or ``3072M``."""
    units = {"G": 1024, "M": 1}
    match = re.fullmatch(r"(\d+)([GgMm])", heap.strip())
    if not match:
        raise ValueError(f"C360_TRINO_HEAP must look like 8G or 3072M, not {heap!r}")
    megabytes = int(match.group(1)) * units[match.group(2).upper()]
    return f"{int(megabytes * share)}MB"


def write_trino_etc(cfg: StackConfig) -> None:
    """Generate etc/ under the state dir from the templates (rewritten at every start)."""
    etc = cfg.trino_etc
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    plugin_dir = _link_plugins(cfg)
    files = {
        "node.properties": _render("node.properties"),
        "jvm.config": _render("jvm.config", heap=cfg.trino_heap),
        "config.properties": _render(
            "config.properties",
            trino_port=cfg.trino_port,
            internal_port=cfg.trino_internal_port,
            plugin_dir=plugin_dir,
            tls_pem=cfg.trino_tls_pem,
            query_memory=query_memory(cfg.trino_heap),
        ),
        "password-authenticator.properties": _render(
            "password-authenticator.properties", password_file=etc / "password.db"
        ),
        "access-control.properties": _render(
            "access-control.properties", rules_file=etc / "rules.json"
        ),
        "rules.json": (TEMPLATES / "rules.json").read_text(),
        "catalog/iceberg.properties": _render(
            "catalog/iceberg.properties",
            pg_port=cfg.pg_port,
            pg_database=PG_DATABASE,
            pg_user=PG_USER,
            catalog_name=cfg.catalog_name,
            warehouse_uri=cfg.warehouse_uri,
        ),
        "password.db": _password_file({TRINO_ADMIN: cfg.trino_password, TRINO_BI: cfg.bi_password}),
    }
    for name, text in files.items():
        path = etc / name
        path.write_text(text)
        path.chmod(0o600)


def ensure_tls_certificate(cfg: StackConfig) -> None:
    """A self-signed certificate for 127.0.0.1/localhost, made once and kept across restarts.

    Trino accepts passwords only over HTTPS, so clients connect with TLS on loopback and trust
    this certificate (`C360_TRINO_CA_FILE`).
    """
    if cfg.trino_tls_pem.exists() and cfg.trino_tls_cert.exists():
        return
    if not shutil.which("openssl"):
        raise StackError(
            "openssl is needed to make the Trino TLS certificate: apt-get install openssl"
        )
    tls_dir = cfg.trino_tls_pem.parent
    tls_dir.mkdir(parents=True, exist_ok=True)
    key = tls_dir / "trino-key.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"]
    cmd += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cfg.trino_tls_cert)]
    cmd += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    _run(cmd, what="openssl req (Trino TLS certificate)")
    cfg.trino_tls_pem.write_text(key.read_text() + cfg.trino_tls_cert.read_text())
    cfg.trino_tls_pem.chmod(0o600)
    key.unlink()


def _link_plugins(cfg: StackConfig) -> Path:
    """Only the plugins the stack uses: fewer to load means a faster start on 2 cores."""
    plugin_dir = cfg.stack_dir / "trino" / "plugin"
    shutil.rmtree(plugin_dir, ignore_errors=True)
    plugin_dir.mkdir(parents=True)
    for name in ("iceberg", "password-authenticators"):
        (plugin_dir / name).symlink_to(cfg.trino_home / "plugin" / name)
    return plugin_dir


def _password_file(users: Mapping[str, str]) -> str:
    return "".join(f"{user}:{bcrypt_hash(password)}\n" for user, password in users.items())


def bcrypt_hash(password: str, cost: int = 10) -> str:
    """A `$2y$` bcrypt hash (what Trino's password file wants) from the system's libcrypt.

    Python's `bcrypt` package is not a dependency; glibc's libxcrypt (libcrypt.so.1, present on
    every Debian) implements bcrypt, so it is called through ctypes.
    """
    lib = _libcrypt()
    salt = lib.crypt_gensalt(b"$2y$", cost, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2y$"):
        raise StackError("libcrypt cannot make bcrypt hashes; install libcrypt1 (libxcrypt)")
    return hashed.decode()


def _libcrypt() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise StackError(f"cannot load libcrypt ({exc}) to hash the Trino passwords") from exc
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def _start_trino(cfg: StackConfig, home: Path, java_home: Path, echo: Echo) -> None:
    for path in (cfg.trino_data, cfg.trino_pid_file.parent, cfg.trino_log.parent):
        path.mkdir(parents=True, exist_ok=True)
    cfg.trino_pid_file.unlink(missing_ok=True)
    for log in (cfg.trino_log, cfg.trino_launcher_log):  # a failure shows this run's log only
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))
    cmd = [
        str(home / "bin" / "launcher"),
        "start",
        f"--etc-dir={cfg.trino_etc}",
        f"--data-dir={cfg.trino_data}",
        f"--pid-file={cfg.trino_pid_file}",
        f"--server-log-file={cfg.trino_log}",
        f"--launcher-log-file={cfg.trino_launcher_log}",
        f"--jvm-dir={java_home}",
    ]
    env = {
        **os.environ,
        "JAVA_HOME": str(java_home),
        "PATH": f"{java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # Referenced as ${ENV:...} from etc/, so no secret is written to disk in clear.
        "C360_PG_PASSWORD": cfg.pg_password,
        "C360_TRINO_SHARED_SECRET": secrets.token_urlsafe(32),
    }
    echo(f"starting trino {TRINO_VERSION} on 127.0.0.1:{cfg.trino_port} (java {java_home})")
    _run(cmd, what="trino launcher start", env=env, cwd=cfg.trino_data)


def _trino_info(cfg: StackConfig) -> dict:
    """`GET /v1/info` over the client (HTTPS) port; {} while nothing answers."""
    url = f"https://127.0.0.1:{cfg.trino_port}/v1/info"
    try:
        context = ssl.create_default_context(cafile=cfg.trino_tls_cert)
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return json.load(response)
    except (OSError, ValueError, ssl.SSLError):
        return {}


def trino_resource(cfg: StackConfig, user: str = TRINO_ADMIN) -> TrinoResource:
    """A client of this stack as `user` (`c360` or `bi`)."""
    from resources.trino import TrinoResource

    password = cfg.trino_password if user == TRINO_ADMIN else cfg.bi_password
    return TrinoResource(
        port=cfg.trino_port,
        user=user,
        password=password,
        catalog=TRINO_CATALOG,
        http_scheme="https",
        ca_file=str(cfg.trino_tls_cert),
        request_timeout_s=10,
    )


def _trino_select_one(cfg: StackConfig) -> str | None:
    """None when `select 1` works as the admin user, else the error text."""
    try:
        trino_resource(cfg).query("select 1")
    except Exception as exc:  # any client/server error means "not ready yet"
        return f"{type(exc).__name__}: {exc}"
    return None


def _wait_trino_ready(cfg: StackConfig, echo: Echo) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    started = time.monotonic()
    last_error: str | None = "no answer from /v1/info"
    while time.monotonic() < deadline:
        if not trino_pid(cfg):
            _fail_trino(cfg, "the Trino process exited during start-up")
        if _trino_info(cfg).get("starting") is False:
            last_error = _trino_select_one(cfg)
            if last_error is None:
                echo(f"trino ready after {time.monotonic() - started:.0f} s")
                return
            if "Invalid credentials" in last_error:
                raise StackError(
                    f"the running Trino rejects user {TRINO_ADMIN}'s password: it was started "
                    f"with another C360_TRINO_PASSWORD; use that one, or `c360 stack down` "
                    f"and `up` again to apply the new one"
                )
        time.sleep(2)
    _fail_trino(cfg, f"Trino not ready after {READY_TIMEOUT_S} s ({last_error})")


def wait_catalog_readable(cfg: StackConfig, echo: Echo = _echo, timeout_s: float = 30) -> None:
    """Trino reads the Iceberg catalog in PostgreSQL (not only `select 1`).

    After PostgreSQL restarted under a running Trino, the first catalog query fails once with
    "Cannot check and eventually update SQL schema" (a stale pooled JDBC connection); retrying
    here absorbs it, and a real misconfiguration (password, database) fails with its reason.
    """
    deadline = time.monotonic() + timeout_s
    sql = f"select count(*) from {TRINO_CATALOG}.information_schema.schemata"
    while True:
        try:
            trino_resource(cfg).query(sql)
            return
        except Exception as exc:  # any client/server error: retry until the deadline
            if time.monotonic() >= deadline:
                raise StackError(
                    f"Trino is up but cannot read the Iceberg catalog in PostgreSQL "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            echo(f"waiting for Trino to read the Iceberg catalog ({type(exc).__name__})")
            time.sleep(2)


def publish_bi_views(cfg: StackConfig, echo: Echo = _echo) -> dict[str, str]:
    """Create or refresh the BI views (`iceberg.bi`, sql/serving/bi/) over the marts that exist.

    A view whose marts do not exist yet is skipped (the `bi_views` asset creates it after
    `c360 run`); an unchanged view is left as it is, so running `up` twice rewrites nothing.
    """
    from c360_assets.defs.serving.assets import create_bi_views

    try:
        outcome = create_bi_views(trino_resource(cfg))
    except Exception as exc:  # the stack is up; say which view failed and why
        raise StackError(f"the stack is up, but creating the BI views failed: {exc}") from exc
    for name, state in outcome.items():
        echo(f"view {TRINO_CATALOG}.bi.{name}: {state}")
    return outcome


def _fail_trino(cfg: StackConfig, reason: str) -> None:
    logs = [cfg.trino_log, cfg.trino_launcher_log]  # JVM start-up errors land in the latter
    tails = "".join(f"\n--- tail of {log} ---\n{_tail(log)}" for log in logs if log.exists())
    raise StackError(f"{reason}{tails or ' (no log written)'}")


def stop_trino(cfg: StackConfig, echo: Echo = _echo, timeout_s: float = 60) -> None:
    pid = trino_pid(cfg)
    if not pid:
        echo("trino not running")
        cfg.trino_pid_file.unlink(missing_ok=True)
        return
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except psutil.TimeoutExpired:
        echo(f"trino did not stop within {timeout_s:.0f} s: killing pid {pid}")
        proc.kill()
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(10)
    cfg.trino_pid_file.unlink(missing_ok=True)
    echo(f"trino stopped (was pid {pid})")


def main(argv: list[str] | None = None) -> int:
    """`python -m c360_assets.tools.stack up|down|status|env` (as the `c360 stack` CLI does)."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    try:
        if command == "up":
            up()
        elif command == "down":
            down()
        elif command == "status":
            print(format_status(status()))
        elif command == "env":
            print("\n".join(env_lines()))
        else:
            print("usage: python -m c360_assets.tools.stack up|down|status|env", file=sys.stderr)
            return 2
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
