"""Trino 476: one node (local profile), or a coordinator that schedules no work plus N workers.

Every node has its own node id, port, `etc/` and working directory under the state dir; they
share the discovery URI (the coordinator's internal port) and the internal-communication secret.
Clients reach the coordinator only, over HTTPS with a password.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import secrets
import shutil
import ssl
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from c360_assets.tools.stack.config import (
    PG_DATABASE,
    PG_USER,
    S3_REGION,
    TEMPLATES,
    TRINO_ADMIN,
    TRINO_BI,
    TRINO_VERSION,
    StackConfig,
    StackError,
    TrinoNode,
)
from c360_assets.tools.stack.processes import (
    Echo,
    echo_stdout,
    process_with_arg,
    read_pid,
    require_free_port,
    rotate_logs,
    run,
    tail,
    terminate,
)
from resources.private_files import private_dir, write_private
from resources.trino import TRINO_CATALOG

if TYPE_CHECKING:
    from resources.trino import TrinoResource

MIN_JAVA = 24
READY_TIMEOUT_S = 240


# --------------------------------------------------------------------------- processes


def node_pid(cfg: StackConfig, node: TrinoNode) -> int | None:
    return process_with_arg(read_pid(node.pid_file), str(node.etc))


def trino_pid(cfg: StackConfig) -> int | None:
    """The coordinator's pid (the one node of the local profile)."""
    return node_pid(cfg, cfg.coordinator)


def known_workers(cfg: StackConfig) -> list[TrinoNode]:
    """The profile's workers and any other worker a pid file names (a larger earlier cluster)."""
    indexes = set(range(1, cfg.workers + 1))
    for pid_file in cfg.run_dir.glob("trino-worker-*.pid"):
        suffix = pid_file.stem.removeprefix("trino-worker-")
        if suffix.isdigit():
            indexes.add(int(suffix))
    return [cfg.worker(i) for i in sorted(indexes)]


def preflight(cfg: StackConfig, echo: Echo) -> tuple[Path, Path]:
    """Java, ports and the download, checked before anything starts: (trino home, java home)."""
    java_home = check_java(cfg.java_home)
    if not trino_pid(cfg):
        require_free_port(cfg.trino_port, "Trino", "C360_TRINO_PORT")
        require_free_port(cfg.trino_internal_port, "Trino (internal)", "C360_TRINO_INTERNAL_PORT")
    for worker in cfg.worker_nodes:
        if not node_pid(cfg, worker):
            require_free_port(worker.http_port, worker.name, "C360_TRINO_WORKER_PORT")
    return ensure_trino_install(cfg, echo), java_home


def ensure_trino(cfg: StackConfig, echo: Echo, install: tuple[Path, Path] | None) -> None:
    """Start every node that is not running, then wait until the cluster serves queries."""
    nodes = [cfg.coordinator, *cfg.worker_nodes]
    stopped = [node for node in nodes if not node_pid(cfg, node)]
    for node in nodes:
        if node not in stopped:
            echo(f"{node.name} already running (pid {node_pid(cfg, node)})")
    if stopped:
        home, java_home = install or preflight(cfg, echo)
        ensure_tls_certificate(cfg)
        plugin_dir = _link_plugins(cfg)
        env = _node_env(cfg, java_home)
        for node in stopped:
            write_node_etc(cfg, node, plugin_dir)
            _start_node(cfg, node, home, java_home, env, echo)
    _wait_ready(cfg, echo)


def check_java(java_home: Path) -> Path:
    java = java_home / "bin" / "java"
    hint = f"Trino {TRINO_VERSION} needs Java >= {MIN_JAVA}; point C360_JAVA_HOME at one"
    if not java.exists():
        raise StackError(f"no Java at {java}. {hint}")
    proc = run([str(java), "-XshowSettings:properties", "-version"], what=f"{java} -version")
    for line in proc.stderr.splitlines():
        name, _, value = line.strip().partition(" = ")
        if name == "java.specification.version":
            if int(value.split(".")[0]) < MIN_JAVA:
                raise StackError(f"{java} is Java {value}. {hint}")
            return java_home
    raise StackError(f"cannot tell the version of {java}. {hint}")


def ensure_trino_install(cfg: StackConfig, echo: Echo = echo_stdout) -> Path:
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
    run(cmd, what=f"downloading {artifact} {TRINO_VERSION} with Maven", cwd=cfg.trino_download_dir)
    if not target.exists():
        raise StackError(f"Maven finished but {target} is not there")
    return target


# --------------------------------------------------------------------------- configuration


def _render(name: str, **values: object) -> str:
    return Template((TEMPLATES / name).read_text()).substitute(values)


def query_memory(heap: str, share: float = 0.6) -> str:
    """Trino's per-node query memory for a JVM heap such as ``8G`` or ``3072M``."""
    units = {"G": 1024, "M": 1}
    match = re.fullmatch(r"(\d+)([GgMm])", heap.strip())
    if not match:
        raise ValueError(f"a Trino heap must look like 8G or 3072M, not {heap!r}")
    megabytes = int(match.group(1)) * units[match.group(2).upper()]
    return f"{int(megabytes * share)}MB"


def _catalog_file(cfg: StackConfig) -> str:
    if cfg.cluster:
        file_system = _render(
            "iceberg-fs-s3.properties", s3_endpoint=cfg.s3_endpoint, s3_region=S3_REGION
        )
    else:
        file_system = _render("iceberg-fs-local.properties")
    return _render(
        "catalog/iceberg.properties",
        pg_port=cfg.pg_port,
        pg_database=PG_DATABASE,
        pg_user=PG_USER,
        catalog_name=cfg.catalog_name,
        warehouse_uri=cfg.warehouse_uri,
        file_system=file_system,
    )


def write_node_etc(cfg: StackConfig, node: TrinoNode, plugin_dir: Path) -> None:
    """Generate the node's etc/ from the templates (rewritten at every start, owner-only)."""
    etc = node.etc
    for folder in (node.root, etc, etc / "catalog"):
        private_dir(folder)
    files = {
        "node.properties": _render("node.properties", node_id=f"c360-{node.name}"),
        "jvm.config": _render("jvm.config", heap=node.heap),
        "catalog/iceberg.properties": _catalog_file(cfg),
    }
    if node.coordinator:
        files["config.properties"] = _render(
            "config.properties",
            include_coordinator=str(not cfg.cluster).lower(),
            trino_port=cfg.trino_port,
            internal_port=node.http_port,
            plugin_dir=plugin_dir,
            tls_pem=cfg.trino_tls_pem,
            query_memory=query_memory(node.heap),
        )
        files["password-authenticator.properties"] = _render(
            "password-authenticator.properties", password_file=etc / "password.db"
        )
        files["access-control.properties"] = _render(
            "access-control.properties", rules_file=etc / "rules.json"
        )
        files["rules.json"] = (TEMPLATES / "rules.json").read_text()
        files["password.db"] = _password_file(
            {TRINO_ADMIN: cfg.trino_password, TRINO_BI: cfg.bi_password}
        )
    else:
        files["config.properties"] = _render(
            "worker.properties",
            plugin_dir=plugin_dir,
            http_port=node.http_port,
            discovery_port=cfg.trino_internal_port,
            query_memory=query_memory(node.heap),
        )
    for name, text in files.items():
        write_private(etc / name, text)


def ensure_tls_certificate(cfg: StackConfig) -> None:
    """A self-signed certificate for 127.0.0.1/localhost, made once and kept across restarts.

    Trino accepts passwords only over HTTPS, so clients connect with TLS on loopback and trust
    this certificate (`C360_TRINO_CA_FILE`). The key is made under a private umask in a private
    folder: it is never readable by another user, not even while it is being written.
    """
    if cfg.trino_tls_pem.exists() and cfg.trino_tls_cert.exists():
        return
    if not shutil.which("openssl"):
        raise StackError(
            "openssl is needed to make the Trino TLS certificate: apt-get install openssl"
        )
    tls_dir = private_dir(cfg.trino_tls_pem.parent)
    key = tls_dir / "trino-key.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"]
    cmd += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cfg.trino_tls_cert)]
    cmd += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    run(cmd, what="openssl req (Trino TLS certificate)", umask=0o077)
    write_private(cfg.trino_tls_pem, key.read_text() + cfg.trino_tls_cert.read_text())
    key.unlink()


def _link_plugins(cfg: StackConfig) -> Path:
    """Only the plugins the stack uses: fewer to load means a faster start on 2 cores."""
    plugin_dir = private_dir(cfg.trino_dir / "plugin")
    for name in ("iceberg", "password-authenticators"):
        link = plugin_dir / name
        if link.is_symlink() and link.readlink() == cfg.trino_home / "plugin" / name:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(cfg.trino_home / "plugin" / name)
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


def _shared_secret(cfg: StackConfig) -> str:
    """The nodes' internal-communication secret: made once, owner-only, the same for all."""
    path = cfg.trino_shared_secret_file
    if not path.exists():
        private_dir(path.parent)
        write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _node_env(cfg: StackConfig, java_home: Path) -> dict[str, str]:
    """The nodes' environment: the secrets etc/ refers to as ${ENV:...}, never written there."""
    env = {
        **os.environ,
        "JAVA_HOME": str(java_home),
        "PATH": f"{java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "C360_PG_PASSWORD": cfg.pg_password,
        "C360_TRINO_SHARED_SECRET": _shared_secret(cfg),
    }
    if cfg.cluster:
        from c360_assets.tools.stack.objectstore import credentials

        env["C360_S3_ACCESS_KEY"], env["C360_S3_SECRET_KEY"] = credentials(cfg)
    return env


def _start_node(
    cfg: StackConfig, node: TrinoNode, home: Path, java_home: Path, env: dict[str, str], echo: Echo
) -> None:
    for path in (node.data, node.pid_file.parent, node.server_log.parent):
        private_dir(path)
    node.pid_file.unlink(missing_ok=True)
    rotate_logs(node.server_log, node.launcher_log)
    cmd = [
        str(home / "bin" / "launcher"),
        "start",
        f"--etc-dir={node.etc}",
        f"--data-dir={node.data}",
        f"--pid-file={node.pid_file}",
        f"--server-log-file={node.server_log}",
        f"--launcher-log-file={node.launcher_log}",
        f"--jvm-dir={java_home}",
    ]
    where = f"https://127.0.0.1:{cfg.trino_port}" if node.coordinator else f"port {node.http_port}"
    echo(f"starting {node.name} (Trino {TRINO_VERSION}, {node.heap} heap) on {where}")
    # owner-only from creation: logs, spill and the working directory's files
    run(cmd, what=f"{node.name} launcher start", env=env, cwd=node.data, umask=0o077)


# --------------------------------------------------------------------------- readiness


def _info(cfg: StackConfig) -> dict:
    """`GET /v1/info` over the client (HTTPS) port; {} while nothing answers."""
    url = f"https://127.0.0.1:{cfg.trino_port}/v1/info"
    try:
        context = ssl.create_default_context(cafile=cfg.trino_tls_cert)
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return json.load(response)
    except (OSError, ValueError, ssl.SSLError):
        return {}


def coordinator_ready(cfg: StackConfig) -> bool:
    return bool(trino_pid(cfg)) and _info(cfg).get("starting") is False


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


def active_workers(cfg: StackConfig) -> list[str]:
    """The node ids of the workers the coordinator sees as active."""
    rows = trino_resource(cfg).query(
        "select node_id from system.runtime.nodes where not coordinator and state = 'active'"
    )
    return sorted(row[0] for row in rows)


def _not_ready(cfg: StackConfig) -> str | None:
    """None when the cluster answers `select 1` and sees all its workers, else why not."""
    try:
        trino_resource(cfg).query("select 1")
        if cfg.cluster and len(active_workers(cfg)) < cfg.workers:
            return f"{len(active_workers(cfg))} of {cfg.workers} workers active"
    except Exception as exc:  # any client/server error means "not ready yet"
        return f"{type(exc).__name__}: {exc}"
    return None


def _wait_ready(cfg: StackConfig, echo: Echo) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    started = time.monotonic()
    last_error: str | None = "no answer from /v1/info"
    nodes = [cfg.coordinator, *cfg.worker_nodes]
    # a node is gone when two looks in a row (2 s apart) find no live process: right after
    # `launcher start` returns, its detached child may not have written the pid file or finished
    # its exec yet (seen once in CI on a loaded machine: a worker reported gone, its log empty)
    gone_before: set[str] = set()
    while time.monotonic() < deadline:
        gone = {node.name for node in nodes if not node_pid(cfg, node)}
        for node in nodes:
            if node.name in gone & gone_before:
                _fail(node, f"the {node.name} process exited during start-up")
        gone_before = gone
        if _info(cfg).get("starting") is False:
            last_error = _not_ready(cfg)
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
    _fail(cfg.coordinator, f"Trino not ready after {READY_TIMEOUT_S} s ({last_error})")


def wait_catalog_readable(
    cfg: StackConfig, echo: Echo = echo_stdout, timeout_s: float = 30
) -> None:
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


BIND_FAILURE = "Address already in use"  # java.net.BindException


def _fail(node: TrinoNode, reason: str) -> None:
    logs = [node.server_log, node.launcher_log]  # JVM start-up errors land in the latter
    if any(BIND_FAILURE in log.read_text(errors="replace") for log in logs if log.exists()):
        # free when checked, bound by another process (often a client's outgoing connection
        # given that port number) before Trino bound it
        reason += f": a port of the {node.name} is taken by another process ({BIND_FAILURE})"
    tails = "".join(f"\n--- tail of {log} ---\n{tail(log)}" for log in logs if log.exists())
    raise StackError(f"{reason}{tails or ' (no log written)'}")


# --------------------------------------------------------------------------- stopping


def stop_node(cfg: StackConfig, node: TrinoNode, echo: Echo = echo_stdout) -> None:
    pid = node_pid(cfg, node)
    if pid:
        terminate(pid, node.name, echo)
    else:
        echo(f"{node.name} not running")
    node.pid_file.unlink(missing_ok=True)


def stop_trino(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    """Every worker, then the coordinator."""
    for worker in known_workers(cfg):
        stop_node(cfg, worker, echo)
    stop_node(cfg, cfg.coordinator, echo)
