"""What the stack is made of and where it lives: one frozen config, read from the environment.

Two profiles. *local*: PostgreSQL + one Trino node that runs every query, the warehouse on this
machine's disk. *cluster* (`c360 stack up --cluster [--workers N]`): an S3-compatible object
store holding the warehouse, PostgreSQL, and a Trino coordinator that schedules no work plus N
workers. The profile a stack was last brought up with is recorded in its state dir, so `env`,
`status` and `down` need no flag.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

TRINO_VERSION = "476"
# The object store server: MinIO, built once from its Go module (`go install`) into the cache.
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
NAMESPACES = ("raw", "staging", "core", "marts")
PG_USER = "c360"
PG_DATABASE = "c360_catalog"
PG_OS_USER = "postgres"
TRINO_ADMIN = "c360"
TRINO_BI = "bi"
S3_REGION = "us-east-1"  # the object store's region; clients must name one (or they ask AWS)
DEFAULT_S3_WAREHOUSE = "s3://c360/warehouse"
TEMPLATES = Path(__file__).with_name("templates")

# Development defaults of the stack's secrets. This is the one place they are written down;
# `c360 stack up` warns while any is in use. The object store has no default: its root key is
# generated at the first `up` and kept, owner-only, in the stack's state dir.
DEV_SECRETS = {
    "C360_PG_PASSWORD": "c360dev",
    "C360_TRINO_PASSWORD": "c360dev",
    "C360_TRINO_BI_PASSWORD": "c360bi",
}


class StackError(RuntimeError):
    """The stack cannot be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class TrinoNode:
    """One Trino server process: the coordinator or a worker, each with its own directory."""

    name: str  # "trino" (the coordinator) or "trino-worker-<i>"
    coordinator: bool
    http_port: int  # node-internal plain HTTP (the coordinator's clients use HTTPS)
    heap: str
    root: Path
    pid_file: Path
    server_log: Path
    launcher_log: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def data(self) -> Path:
        """The node's working directory (Trino's `--data-dir`, a launcher option)."""
        return self.root / "data"


@dataclass(frozen=True)
class StackConfig:
    stack_dir: Path
    cache_dir: Path
    warehouse_setting: str  # C360_WAREHOUSE: a local path, or s3://bucket/prefix (cluster)
    catalog_name: str
    pg_port: int
    trino_port: int
    trino_internal_port: int
    pg_password: str
    trino_password: str
    bi_password: str
    java_home: Path
    trino_heap: str
    cluster: bool = False
    workers: int = 0
    worker_port: int = 0  # worker i listens on worker_port + i - 1
    s3_port: int = 19000
    coordinator_heap: str = "2G"
    worker_heap: str = "3G"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        cluster: bool | None = None,
        workers: int | None = None,
    ) -> StackConfig:
        """The stack the environment names. ``cluster``/``workers`` None: the profile the stack
        was last brought up with (local when it never was)."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        stack_dir = Path(get("C360_STACK_DIR", "./data/stack")).expanduser().resolve()
        saved = read_profile(stack_dir)
        if cluster is None:
            cluster = bool(saved.get("cluster", False))
            workers = workers if workers is not None else int(saved.get("workers", 1))
        if workers is None:
            workers = 1
        if cluster and workers < 1:
            raise StackError(f"a cluster needs at least one Trino worker, not {workers}")
        trino_port = int(get("C360_TRINO_PORT", "18080"))
        internal_port = int(get("C360_TRINO_INTERNAL_PORT", str(trino_port + 1)))
        return cls(
            stack_dir=stack_dir,
            cache_dir=Path(get("C360_CACHE_DIR", "~/.cache/c360")).expanduser().resolve(),
            warehouse_setting=get("C360_WAREHOUSE", "./data/warehouse"),
            catalog_name=get("C360_CATALOG_NAME", "c360"),
            pg_port=int(get("C360_PG_PORT", "55432")),
            trino_port=trino_port,
            trino_internal_port=internal_port,
            pg_password=get("C360_PG_PASSWORD", DEV_SECRETS["C360_PG_PASSWORD"]),
            trino_password=get("C360_TRINO_PASSWORD", DEV_SECRETS["C360_TRINO_PASSWORD"]),
            bi_password=get("C360_TRINO_BI_PASSWORD", DEV_SECRETS["C360_TRINO_BI_PASSWORD"]),
            java_home=Path(get("C360_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")),
            trino_heap=get("C360_TRINO_HEAP", "3G"),
            cluster=cluster,
            workers=workers if cluster else 0,
            worker_port=int(get("C360_TRINO_WORKER_PORT", str(internal_port + 1))),
            s3_port=int(get("C360_S3_PORT", "19000")),
            coordinator_heap=get("C360_TRINO_COORDINATOR_HEAP", "2G"),
            worker_heap=get("C360_TRINO_WORKER_HEAP", "3G"),
        )

    @property
    def profile(self) -> str:
        return "cluster" if self.cluster else "local"

    @property
    def profile_file(self) -> Path:
        return self.stack_dir / "profile.json"

    def default_secrets_in_use(self) -> list[str]:
        """The secrets' variables still at their development default."""
        values = {
            "C360_PG_PASSWORD": self.pg_password,
            "C360_TRINO_PASSWORD": self.trino_password,
            "C360_TRINO_BI_PASSWORD": self.bi_password,
        }
        return [name for name, value in values.items() if value == DEV_SECRETS[name]]

    # -- warehouse
    @property
    def warehouse(self) -> Path:
        """The local warehouse folder (local profile)."""
        if self.warehouse_setting.startswith("s3://"):
            raise StackError(
                f"C360_WAREHOUSE={self.warehouse_setting} is on an object store: that is the "
                f"cluster profile (`c360 stack up --cluster`); unset it for the local one"
            )
        return Path(self.warehouse_setting).expanduser().resolve()

    @property
    def s3_warehouse(self) -> str:
        """s3://bucket/prefix of the cluster profile (C360_WAREHOUSE when it is one)."""
        setting = self.warehouse_setting
        uri = setting if setting.startswith("s3://") else DEFAULT_S3_WAREHOUSE
        return uri.rstrip("/")

    @property
    def bucket(self) -> str:
        return urlparse(self.s3_warehouse).netloc

    @property
    def warehouse_uri(self) -> str:
        return self.s3_warehouse if self.cluster else self.warehouse.as_uri()

    @property
    def warehouse_env(self) -> str:
        """What C360_WAREHOUSE must be for the other commands."""
        return self.s3_warehouse if self.cluster else str(self.warehouse)

    @property
    def catalog_uri(self) -> str:
        password = quote(self.pg_password, safe="")
        return f"postgresql+psycopg2://{PG_USER}:{password}@127.0.0.1:{self.pg_port}/{PG_DATABASE}"

    # -- PostgreSQL layout: everything under pg_root is owned by the postgres OS user
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

    # -- object store layout
    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def objectstore_root(self) -> Path:
        return self.stack_dir / "objectstore"

    @property
    def objectstore_data(self) -> Path:
        return self.objectstore_root / "data"

    @property
    def objectstore_credentials(self) -> Path:
        return self.objectstore_root / "credentials.json"

    @property
    def objectstore_pid_file(self) -> Path:
        return self.run_dir / "objectstore.pid"

    @property
    def objectstore_log(self) -> Path:
        return self.log_dir / "objectstore.log"

    @property
    def minio_binary(self) -> Path:
        return self.cache_dir / "minio" / MINIO_VERSION / "minio"

    # -- Trino layout
    @property
    def run_dir(self) -> Path:
        return self.stack_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.stack_dir / "logs"

    @property
    def trino_dir(self) -> Path:
        return self.stack_dir / "trino"

    @property
    def coordinator(self) -> TrinoNode:
        return TrinoNode(
            name="trino",
            coordinator=True,
            http_port=self.trino_internal_port,
            heap=self.coordinator_heap if self.cluster else self.trino_heap,
            root=self.trino_dir,
            pid_file=self.run_dir / "trino.pid",
            server_log=self.log_dir / "trino-server.log",
            launcher_log=self.log_dir / "trino-launcher.log",
        )

    def worker(self, index: int) -> TrinoNode:
        name = f"trino-worker-{index}"
        return TrinoNode(
            name=name,
            coordinator=False,
            http_port=self.worker_port + index - 1,
            heap=self.worker_heap,
            root=self.trino_dir / f"worker-{index}",
            pid_file=self.run_dir / f"{name}.pid",
            server_log=self.log_dir / f"{name}-server.log",
            launcher_log=self.log_dir / f"{name}-launcher.log",
        )

    @property
    def worker_nodes(self) -> list[TrinoNode]:
        return [self.worker(i) for i in range(1, self.workers + 1)]

    @property
    def trino_etc(self) -> Path:
        return self.coordinator.etc

    @property
    def trino_tls_pem(self) -> Path:
        """Private key + self-signed certificate of the HTTPS endpoint (Trino reads the PEM)."""
        return self.trino_dir / "tls" / "trino.pem"

    @property
    def trino_tls_cert(self) -> Path:
        """The certificate alone: what clients trust (`verify=` in the Python client)."""
        return self.trino_dir / "tls" / "trino-cert.pem"

    @property
    def trino_shared_secret_file(self) -> Path:
        """The nodes' internal-communication secret (the same on every node, kept across starts)."""
        return self.trino_dir / "shared-secret"

    @property
    def trino_download_dir(self) -> Path:
        return self.cache_dir / "trino"

    @property
    def trino_home(self) -> Path:
        return self.trino_download_dir / f"trino-server-{TRINO_VERSION}"


def read_profile(stack_dir: Path) -> dict:
    """The profile recorded by the last `up` in ``stack_dir`` ({} when none)."""
    try:
        return json.loads((stack_dir / "profile.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
