"""The ``spark`` peer of ``c360 bench``: the peak day's build as a Spark user would write it.

PySpark (its pip package ships the Spark distribution) runs on the machine's default ``java``
(17; ``JAVA_HOME`` if set) in ``local[2]`` with an 8 GB driver, and reads and writes c360's
lakehouse through Apache Iceberg's Spark runtime: an Iceberg ``JdbcCatalog`` on the bench's
PostgreSQL, under the same catalog name, is the catalog pyiceberg's ``SqlCatalog`` writes (the
``iceberg_tables`` schema with ``iceberg_type``, ``jdbc.schema-version=V1``). The two jars it
needs (``SPARK_JARS``) are fetched once with Maven into ``C360_CACHE_DIR/spark/jars``
(``~/.cache/c360/spark/jars``), as the Trino download is.

The work, timed from the first read to the committed write: the day's raw partition of
``raw.usage_events`` deduplicated by c360's rule (see ``sql/usage/stg_usage_events.sql``: an id
delivered more than once keeps its first delivery by (_ingested_at, _source_file,
_source_line); the ids delivered once, nearly all of them, pass straight through; the ids
delivered more than once are found by a count per hash of the id), joined to
``core.int_tenants_resolved`` and aggregated to ``fct_usage_daily``'s grain, then written to the
Iceberg table ``marts.bench_spark_fct_usage_daily`` as an overwrite of that day. The session's
start-up (JVM, jars, catalog) is reported apart as ``session_seconds``.

Memory: ``peak_rss_mb`` is the sum of each process's own peak resident set (``VmHWM``) in the
child's process tree, the Python driver and the Spark JVM it starts, read just before the
session stops: an upper bound on the tree's simultaneous peak.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

SPARK_JARS = (
    "org.apache.iceberg:iceberg-spark-runtime-4.0_2.13:1.10.1",
    "org.postgresql:postgresql:42.7.8",
)
TABLE = "marts.bench_spark_fct_usage_daily"
SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "8g",
    "spark.sql.shuffle.partitions": "16",  # AQE coalesces them further
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",  # loopback only
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}


def jar_dir() -> Path:
    cache = Path(os.environ.get("C360_CACHE_DIR", "~/.cache/c360")).expanduser()
    return cache / "spark" / "jars"


def ensure_jars(echo=print) -> list[Path]:
    """The jars of ``SPARK_JARS``, fetched with Maven into ``jar_dir()`` when missing."""
    folder = jar_dir()
    jars = []
    for coordinate in SPARK_JARS:
        _, artifact, version = coordinate.split(":")
        jar = folder / f"{artifact}-{version}.jar"
        if not jar.exists():
            if not shutil.which("mvn"):
                raise RuntimeError(f"{jar} is missing and Maven (mvn) is not installed to fetch it")
            echo(f"downloading {coordinate} with Maven...")
            folder.mkdir(parents=True, exist_ok=True)
            cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={coordinate}"]
            subprocess.run([*cmd, f"-DoutputDirectory={folder}"], check=True, cwd=folder)
            if not jar.exists():
                raise RuntimeError(f"Maven finished but {jar} is not there")
        jars.append(jar)
    return jars


def catalog_conf(catalog_name: str, catalog_uri: str, warehouse: str) -> dict[str, str]:
    """Spark settings for an Iceberg ``JdbcCatalog`` named like pyiceberg's SQL catalog on the
    same PostgreSQL database (``catalog_uri`` is its SQLAlchemy URL)."""
    from sqlalchemy.engine import make_url

    url = make_url(catalog_uri)
    if not url.drivername.startswith("postgresql"):
        raise ValueError(f"the spark peer needs a PostgreSQL catalog, not {url.drivername}")
    prefix = f"spark.sql.catalog.{catalog_name}"
    return {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        f"{prefix}.uri": f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}",
        f"{prefix}.jdbc.user": url.username or "",
        f"{prefix}.jdbc.password": url.password or "",
        f"{prefix}.jdbc.schema-version": "V1",  # pyiceberg's schema: iceberg_type per row
        f"{prefix}.warehouse": warehouse,
    }


def start_session(jars: list[Path], catalog: dict[str, str]):
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("c360-bench-spark")
    for key, value in {**SPARK_CONF, **catalog, "spark.jars": ",".join(map(str, jars))}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def fct_usage_daily(spark, catalog_name: str, day: dt.date):
    """The day's ``fct_usage_daily`` rows as a DataFrame (nothing runs until it is written)."""
    from pyspark.sql import functions as F

    keys = ["event_date", "event_id"]
    events = (
        spark.table(f"{catalog_name}.raw.usage_events")
        .where(F.col("event_date") == F.lit(day))
        .select(
            "event_date",
            F.trim("event_id").alias("event_id"),
            F.lower(F.trim("tenant_id")).alias("tenant_id"),
            F.lower(F.trim("product")).alias("product"),
            "quantity",
            "_ingested_at",
            "_source_file",
            "_source_line",
        )
        .withColumn("id_hash", F.xxhash64("event_id"))
    )
    # only the ids delivered more than once are reduced to their first delivery; they are found
    # by a count per 64-bit hash of the id (a shuffle of longs, not of strings): a collision
    # only sends a few ids delivered once through the reduction, which groups by the id itself
    hashed = ["event_date", "id_hash"]
    repeated = events.groupBy(*hashed).count().where(F.col("count") > 1).select(*hashed)
    once = events.join(F.broadcast(repeated), hashed, "left_anti")
    first = (
        events.join(F.broadcast(repeated), hashed, "left_semi")
        .groupBy(*keys)
        .agg(
            F.min_by(
                F.struct("tenant_id", "product", "quantity"),
                F.struct("_ingested_at", "_source_file", "_source_line"),
            ).alias("first")
        )
        .select("event_date", "first.tenant_id", "first.product", "first.quantity")
    )
    deduplicated = once.select("event_date", "tenant_id", "product", "quantity").unionByName(first)
    tenants = spark.table(f"{catalog_name}.core.int_tenants_resolved").select(
        "tenant_id", "customer_key"
    )
    return (
        deduplicated.join(tenants, "tenant_id", "left")
        .groupBy(
            F.col("event_date").alias("usage_date"),
            F.coalesce("customer_key", F.lit("unknown")).alias("customer_key"),
            "tenant_id",
            "product",
        )
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum(F.col("quantity").cast("decimal(38,0)")).cast("decimal(38,0)").alias("units"),
        )
    )


def _tree_peak_rss_mb() -> dict[str, float]:
    """``VmHWM`` of this process and of every process below it (the Spark JVM), MB."""
    import psutil

    peaks = {}
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[f"{proc.name()}[{proc.pid}]"] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def task_spark(args: dict) -> dict:
    """Child task: the day build in Spark, written to ``TABLE``; its ``args["columns"]`` to
    ``args["path"]``."""
    import pyarrow.parquet as pq

    from resources.lakehouse import LakehouseResource

    day = dt.date.fromisoformat(args["day"])
    lakehouse = LakehouseResource.from_env()
    name = lakehouse.catalog_name
    catalog = catalog_conf(
        name, lakehouse.catalog_db_uri, lakehouse.catalog.properties["warehouse"]
    )
    jars = ensure_jars()
    t0 = time.perf_counter()
    spark = start_session(jars, catalog)
    try:
        spark.sql(f"select 1 from {name}.core.int_tenants_resolved limit 0").collect()
        session_seconds = time.perf_counter() - t0
        spark.sql(
            f"create table if not exists {name}.{TABLE} (usage_date date, customer_key string, "
            "tenant_id string, product string, events bigint, units decimal(38,0)) "
            "using iceberg partitioned by (usage_date)"
        )
        t1 = time.perf_counter()
        from pyspark.sql import functions as F

        fct_usage_daily(spark, name, day).writeTo(f"{name}.{TABLE}").overwrite(
            F.col("usage_date") == F.lit(day)
        )
        seconds = time.perf_counter() - t1
        written = (
            spark.table(f"{name}.{TABLE}")
            .where(F.col("usage_date") == F.lit(day))
            .select(*args["columns"])
            .toArrow()
        )
        pq.write_table(written, args["path"])
        peaks = _tree_peak_rss_mb()
        versions: dict[str, Any] = {"spark": spark.version, "jars": list(SPARK_JARS)}
    finally:
        spark.stop()
    return {
        "seconds": seconds,
        "session_seconds": session_seconds,
        "rows": written.num_rows,
        "tree_peak_rss_mb": round(sum(peaks.values()), 1),
        "process_peaks_mb": peaks,
        "versions": versions,
    }
