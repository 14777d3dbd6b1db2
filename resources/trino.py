"""Trino as a Dagster resource: the serving stack's SQL endpoint (`c360 stack up`).

Nothing connects at import time. `TrinoResource.from_env()` reads the variables that
`c360 stack env` exports (C360_TRINO_HOST/PORT/USER/PASSWORD/HTTP_SCHEME/CA_FILE/CATALOG).
Trino accepts a password only over HTTPS, so with a password the scheme defaults to https and
the stack's self-signed certificate is trusted through `ca_file`.
"""

import os

import dagster as dg
import requests
from trino.auth import BasicAuthentication
from trino.dbapi import Connection, connect

TRINO_CATALOG = "iceberg"  # the Trino catalog over the Iceberg catalog


class TrinoResource(dg.ConfigurableResource):
    host: str = "127.0.0.1"
    port: int = 18080
    user: str = "c360"
    password: str | None = None
    catalog: str = TRINO_CATALOG
    http_scheme: str | None = None
    ca_file: str | None = None
    request_timeout_s: float = 300.0

    @classmethod
    def from_env(cls) -> "TrinoResource":
        env = os.environ
        return cls(
            host=env.get("C360_TRINO_HOST", "127.0.0.1"),
            port=int(env.get("C360_TRINO_PORT", "18080")),
            user=env.get("C360_TRINO_USER", "c360"),
            password=env.get("C360_TRINO_PASSWORD") or None,
            catalog=env.get("C360_TRINO_CATALOG", "iceberg"),
            http_scheme=env.get("C360_TRINO_HTTP_SCHEME") or None,
            ca_file=env.get("C360_TRINO_CA_FILE") or None,
        )

    @property
    def scheme(self) -> str:
        return self.http_scheme or ("https" if self.password else "http")

    def _http_session(self) -> requests.Session | None:
        """A session that trusts `ca_file`, whatever REQUESTS_CA_BUNDLE says.

        requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's `verify`, so the
        stack's self-signed certificate would be rejected on machines that set them.
        """
        if not self.ca_file:
            return None
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        return session

    def connect(self, schema: str | None = None) -> Connection:
        kwargs = {}
        if schema:
            kwargs["schema"] = schema
        return connect(
            host=self.host,
            port=self.port,
            user=self.user,
            catalog=self.catalog,
            http_scheme=self.scheme,
            auth=BasicAuthentication(self.user, self.password) if self.password else None,
            http_session=self._http_session(),
            request_timeout=self.request_timeout_s,
            **kwargs,
        )

    def query(self, sql: str, params: list | tuple | None = None) -> list[tuple]:
        """Run one statement and return all its rows as tuples."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            conn.close()
