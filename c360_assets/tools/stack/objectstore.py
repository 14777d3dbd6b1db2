"""The object store of the cluster profile: a MinIO server on loopback holding the warehouse.

MinIO is built once from its Go module (`go install <module>@<version>`, 3-6 minutes on two
cores) into the cache (``C360_CACHE_DIR``, default ``~/.cache/c360``), as the Trino download is.
Its root key is generated at the first start and kept owner-only in the stack's state dir; it
is what `c360 stack env` exports as ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from c360_assets.tools.stack.config import (
    MINIO_MODULE,
    MINIO_VERSION,
    S3_REGION,
    StackConfig,
    StackError,
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

READY_TIMEOUT_S = 30
# Started through a shell that puts it in its own session and prints its pid: it outlives the
# command that started it, and no Python object waits for it.
_DETACH = 'log=$1; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!'


def go_binary() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not found:
        raise StackError(
            f"the object store server is built from its Go module ({MINIO_MODULE}) and Go is "
            f"not installed: install Go (>= 1.24), or put a MinIO binary at the cache path"
        )
    return found


def ensure_minio(cfg: StackConfig, echo: Echo = echo_stdout) -> Path:
    """The MinIO binary in the cache, built from its module the first time."""
    target = cfg.minio_binary
    if target.exists():
        return target
    go = go_binary()
    build = target.parent / f".build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    echo(f"building the object store: go install {MINIO_MODULE}@{MINIO_VERSION} (once, minutes)")
    started = time.monotonic()
    env = {**os.environ, "GOBIN": str(build), "GOFLAGS": "-buildvcs=false"}
    try:
        run(
            [go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"],
            what="go install minio",
            env=env,
            cwd=build,
        )
        (build / "minio").rename(target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    echo(f"object store built in {time.monotonic() - started:.0f} s: {target}")
    return target


def credentials(cfg: StackConfig, create: bool = False) -> tuple[str, str]:
    """The object store's root (access key, secret key): generated once, kept owner-only."""
    path = cfg.objectstore_credentials
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["access_key"], saved["secret_key"]
    if not create:
        raise StackError(
            f"the object store of {cfg.stack_dir} has no key yet: `c360 stack up --cluster` first"
        )
    private_dir(path.parent)
    key, secret = f"c360-{secrets.token_hex(6)}", secrets.token_urlsafe(30)
    write_private(path, json.dumps({"access_key": key, "secret_key": secret}) + "\n")
    return key, secret


def objectstore_pid(cfg: StackConfig) -> int | None:
    return process_with_arg(read_pid(cfg.objectstore_pid_file), str(cfg.objectstore_data))


def ensure_objectstore(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    """Start the object store (unless running), wait until it serves, create the bucket."""
    pid = objectstore_pid(cfg)
    if pid:
        echo(f"objectstore already running (pid {pid})")
    else:
        binary = ensure_minio(cfg, echo)
        require_free_port(cfg.s3_port, "the object store", "C360_S3_PORT")
        _start(cfg, binary, echo)
    _wait_ready(cfg)
    _ensure_bucket(cfg, echo)


def _start(cfg: StackConfig, binary: Path, echo: Echo) -> None:
    key, secret = credentials(cfg, create=True)
    for folder in (cfg.objectstore_data, cfg.run_dir, cfg.log_dir):
        private_dir(folder)
    rotate_logs(cfg.objectstore_log)
    env = {
        **os.environ,
        "MINIO_ROOT_USER": key,  # the environment, never the command line (ps shows that)
        "MINIO_ROOT_PASSWORD": secret,
        "MINIO_BROWSER": "off",  # no web console: only the S3 API, on loopback
        "MINIO_UPDATE": "off",
    }
    cmd = [str(binary), "server", str(cfg.objectstore_data)]
    cmd += ["--address", f"127.0.0.1:{cfg.s3_port}", "--quiet"]
    started = subprocess.run(
        ["sh", "-c", _DETACH, "sh", str(cfg.objectstore_log), *cmd],
        capture_output=True,
        text=True,
        env=env,
        umask=0o077,  # its objects and log are owner-only from their creation
        check=True,
    )
    write_private(cfg.objectstore_pid_file, started.stdout.strip() + "\n")
    echo(f"objectstore started on {cfg.s3_endpoint} (pid {started.stdout.strip()})")


def _wait_ready(cfg: StackConfig) -> None:
    url = f"{cfg.s3_endpoint}/minio/health/ready"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if not objectstore_pid(cfg):
            _fail(cfg, "the object store exited during start-up")
        try:
            with opener.open(url, timeout=3) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.2)
    _fail(cfg, f"the object store is not ready after {READY_TIMEOUT_S} s ({last})")


def _fail(cfg: StackConfig, reason: str) -> None:
    raise StackError(
        f"{reason}\n--- tail of {cfg.objectstore_log} ---\n{tail(cfg.objectstore_log)}"
    )


def filesystem(cfg: StackConfig, allow_bucket_creation: bool = False):
    """A pyarrow S3 client of the object store with its root key."""
    from pyarrow.fs import S3FileSystem

    key, secret = credentials(cfg)
    return S3FileSystem(
        access_key=key,
        secret_key=secret,
        endpoint_override=cfg.s3_endpoint,
        region=S3_REGION,
        allow_bucket_creation=allow_bucket_creation,
    )


def _ensure_bucket(cfg: StackConfig, echo: Echo) -> None:
    from pyarrow.fs import FileType

    fs = filesystem(cfg, allow_bucket_creation=True)
    if fs.get_file_info(cfg.bucket).type == FileType.NotFound:
        fs.create_dir(cfg.bucket)
        echo(f"bucket {cfg.bucket} created; warehouse {cfg.s3_warehouse}")


def stop_objectstore(cfg: StackConfig, echo: Echo = echo_stdout) -> None:
    pid = objectstore_pid(cfg)
    if pid:
        terminate(pid, "objectstore", echo, timeout_s=30)
    else:
        echo("objectstore not running")
    cfg.objectstore_pid_file.unlink(missing_ok=True)
