"""`c360 stack up | down | status | env`: the whole stack, process by process.

`up()` starts what is not running (harmless when everything is), waits until Trino reads the
catalog and publishes the BI views (unchanged views are left alone); `down()` stops exactly what
`up()` started; `status()` reports every process; `env_lines()` returns `export NAME=value`
lines pointing every other command at the stack.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator

import c360_assets.tools.stack.objectstore as objectstore
import c360_assets.tools.stack.postgres as postgres
import c360_assets.tools.stack.trino as trino
from c360_assets.tools.stack.config import (
    S3_REGION,
    TRINO_ADMIN,
    StackConfig,
    StackError,
    read_profile,
)
from c360_assets.tools.stack.processes import Echo, echo_stdout
from resources.private_files import write_private
from resources.trino import TRINO_CATALOG


def up(config: StackConfig | None = None, echo: Echo = echo_stdout) -> dict:
    """Start the object store (cluster), PostgreSQL, the Iceberg catalog and Trino."""
    cfg = config or StackConfig.from_env()
    started = time.monotonic()
    _switch_profile(cfg, echo)
    postgres.prepare_stack_dir(cfg)
    write_private(cfg.profile_file, json.dumps({"cluster": cfg.cluster, "workers": cfg.workers}))
    install = trino.preflight(cfg, echo)
    if cfg.cluster:
        objectstore.ensure_objectstore(cfg, echo)
    postgres.ensure_postgres(cfg, echo)
    postgres.ensure_catalog(cfg, echo)
    trino.ensure_trino(cfg, echo, install)
    trino.wait_catalog_readable(cfg, echo)
    publish_bi_views(cfg, echo)
    echo(f"stack ({cfg.profile} profile) up in {time.monotonic() - started:.0f} s")
    result = status(cfg)
    echo(format_status(result))
    for warning in default_password_warnings(cfg):
        echo(warning)
    return result


def install(config: StackConfig | None = None, echo: Echo = echo_stdout) -> None:
    """Fetch what the stack runs into the cache: Trino (Maven) and, for the cluster profile,
    the object store (built from its Go module). `up` does the same when something is missing."""
    cfg = config or StackConfig.from_env()
    trino.check_java(cfg.java_home)
    echo(f"trino: {trino.ensure_trino_install(cfg, echo)}")
    if cfg.cluster:
        echo(f"objectstore: {objectstore.ensure_minio(cfg, echo)}")


def _switch_profile(cfg: StackConfig, echo: Echo) -> None:
    """Refuse to turn a running stack into the other profile; stop workers beyond the count."""
    saved = read_profile(cfg.stack_dir)
    if not saved or bool(saved.get("cluster")) == cfg.cluster:
        for worker in trino.known_workers(cfg)[cfg.workers :]:
            trino.stop_node(cfg, worker, echo)
        return
    running = [name for name, part in processes(status(cfg)) if part["state"] == "running"]
    if running:
        was = "cluster" if saved.get("cluster") else "local"
        raise StackError(
            f"the stack in {cfg.stack_dir} runs the {was} profile ({', '.join(running)}): "
            f"`c360 stack down` first, then `c360 stack up` with the profile you want"
        )


def default_password_warnings(cfg: StackConfig) -> list[str]:
    """A warning per secret still at its development default (they are in the repository)."""
    return [
        f"WARNING: {name} is the development default, written in c360's source: anyone on "
        f"this machine can log in with it. Set {name} (then `c360 stack down` and `up`)."
        for name in cfg.default_secrets_in_use()
    ]


def down(config: StackConfig | None = None, echo: Echo = echo_stdout) -> dict:
    """Stop the processes that `up()` started, and nothing else."""
    cfg = config or StackConfig.from_env()
    trino.stop_trino(cfg, echo)
    objectstore.stop_objectstore(cfg, echo)
    postgres.stop_postgres(cfg, echo)
    return status(cfg)


def status(config: StackConfig | None = None) -> dict:
    """Every process of the stack: state, pid, port."""
    cfg = config or StackConfig.from_env()
    pg_pid = postgres.postgres_pid(cfg)
    store_pid = objectstore.objectstore_pid(cfg)
    coordinator = trino.trino_pid(cfg)
    workers = []
    for node in trino.known_workers(cfg):
        pid = trino.node_pid(cfg, node)
        workers.append(
            {
                "name": node.name,
                "state": "running" if pid else "stopped",
                "pid": pid,
                "port": node.http_port,
                "server_log": str(node.server_log),
            }
        )
    return {
        "stack_dir": str(cfg.stack_dir),
        "profile": cfg.profile,
        "postgres": {
            "state": "running" if pg_pid else "stopped",
            "pid": pg_pid,
            "port": cfg.pg_port,
            "data_dir": str(cfg.pg_data),
        },
        "objectstore": {
            "state": "running" if store_pid else "stopped",
            "pid": store_pid,
            "port": cfg.s3_port,
            "endpoint": cfg.s3_endpoint,
            "warehouse": cfg.s3_warehouse,
            "used": cfg.cluster,
        },
        "trino": {
            "state": "running" if coordinator else "stopped",
            "pid": coordinator,
            "port": cfg.trino_port,
            "internal_port": cfg.trino_internal_port,
            "ready": trino.coordinator_ready(cfg),
            "server_log": str(cfg.coordinator.server_log),
        },
        "trino_workers": workers,
    }


def processes(result: dict) -> Iterator[tuple[str, dict]]:
    """(name, state) of every process a status names: the object store only when it is used
    or running, the Trino workers one by one."""
    yield "postgres", result["postgres"]
    store = result["objectstore"]
    if store["used"] or store["state"] == "running":
        yield "objectstore", store
    yield "trino", result["trino"]
    for worker in result["trino_workers"]:
        yield worker["name"], worker


def format_status(result: dict) -> str:
    lines = [f"profile   {result['profile']} ({result['stack_dir']})"]
    for name, part in processes(result):
        pid = f" pid {part['pid']}" if part["pid"] else ""
        scheme = {"trino": "https://", "objectstore": "http://"}.get(name, "")
        role = " (coordinator)" if name == "trino" and result["trino_workers"] else ""
        address = f"{scheme}127.0.0.1:{part['port']}"
        lines.append(f"{name:<15} {part['state']:<8} {address}{pid}{role}")
    return "\n".join(lines)


def env_lines(config: StackConfig | None = None) -> list[str]:
    """`export NAME=value` lines so that `eval "$(c360 stack env)"` points at the stack."""
    cfg = config or StackConfig.from_env()
    values = {
        "C360_CATALOG_URI": cfg.catalog_uri,
        "C360_CATALOG_NAME": cfg.catalog_name,
        "C360_WAREHOUSE": cfg.warehouse_env,
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
    if cfg.cluster:
        access_key, secret_key = objectstore.credentials(cfg)
        values |= {
            "C360_S3_ENDPOINT": cfg.s3_endpoint,
            "C360_S3_PORT": str(cfg.s3_port),
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": S3_REGION,
        }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def publish_bi_views(cfg: StackConfig, echo: Echo = echo_stdout) -> dict[str, str]:
    """Create or refresh the BI views (`iceberg.bi`, sql/serving/bi/) over the marts that exist.

    A view whose marts do not exist yet is skipped (the `bi_views` asset creates it after
    `c360 run`); an unchanged view is left as it is, so running `up` twice rewrites nothing.
    """
    from c360_assets.defs.serving.assets import create_bi_views

    try:
        outcome = create_bi_views(trino.trino_resource(cfg))
    except Exception as exc:  # the stack is up; say which view failed and why
        raise StackError(f"the stack is up, but creating the BI views failed: {exc}") from exc
    for name, state in outcome.items():
        echo(f"view {TRINO_CATALOG}.bi.{name}: {state}")
    return outcome
