"""``c360 generate``: a deterministic synthetic landing zone (CONTRACT section 2).

Everything is computed in DuckDB SQL from ``hash(seed, ...)`` of integer keys, so the same
arguments give byte-identical files (same DuckDB version), whatever the thread count, and nothing
is ever a Python loop per record. Usage events are produced in chunks of ``events_per_file`` rows;
each chunk is gzip-compressed on a worker thread while DuckDB builds the next, so memory stays
bounded by a few chunks whatever the volume. Every file is written under a temporary name and
renamed into place; a file that already exists with other bytes is never overwritten.

The synthetic world
-------------------
* ``customers`` customers, each a CRM account with 1-3 product tenants. Every billed tenant has its
  own billing customer (``billing/customers.tenant_id``) and subscription; all billing customers
  of a customer carry its ``crm_account_id``, and the CRM account points at the primary one
  (``crm/accounts.billing_customer_id``). The link is sometimes on one side only (``billing``
  ``crm_account_id`` null, or the CRM field null), and the CRM side is typed by people
  (``" CUS_AB12..."``). Gaps on purpose: tenants without a billing customer (sandboxes, customers
  never billed), billing customers without a CRM account, offline-contract billing customers without
  a tenant, CRM prospects without billing.
* Usage volume is Pareto-skewed across customers (a few large, many small), with a weekday pattern
  and a daily curve peaking in the NA/EMEA afternoon. Each tenant uses a subset of ``PRODUCTS``.
  A few steady mid-size tenants get a one-day spike (5-10x; listed in the summary). Canceled
  subscriptions stop their usage, except a quarter that keep calling the API; some new customers
  call it during a trial before their subscription starts.
* ``occurred_at`` is written with ``Z``, ``+00:00`` or the tenant's local offset (``-05:00``,
  ``+05:30``, ``+09:00``...): the same instant, the UTC day counts.
* Pathologies, each at a seeded rate (``GenerateOptions``): re-deliveries (same ``event_id``, same
  bytes) in the same file and in a later day's file; events arriving 1-45 days late in a later
  day's files; malformed lines (``MALFORMED_KINDS``: truncated / single-quoted JSON, a missing
  required field, ``"quantity": "lots"`` or an unparseable ``occurred_at``, a negative quantity);
  noisy ``tenant_id`` (upper case and/or surrounding spaces); valid events without ``quantity``
  (default 1) and with quantity 0.
* Billing: invoices on the 1st of each month inside the window (subscription fee in advance, usage
  in arrears: a customer's units of the previous month, all its tenants pooled, above the
  ``included_units`` of the plan in force at that month's end, at that plan's price, on that
  subscription's invoice, one line per product; computed from the generated events), and a
  first prorated invoice (+ a one-off setup fee above the starter plan) for subscriptions
  started in the window. A month without a plan at its end is not billed. Revenue leaks are
  planted at ``leak_rate`` (a month never billed, a usage line short, a price one off the
  plan's; and tenants that keep calling after their cancellation): ``billing.revenue_leaks`` in
  the summary lists every judged customer-month not billed as its plan says, and why. Invoices
  are re-exported on each status change (draft -> open -> paid / void / uncollectible, latest
  ``updated_at`` wins); a few stay draft. Credit notes 1-7 weeks after the invoice, refunds after
  payment. Deliberate faults, reported by id in the summary: header total != subtotal + tax, a
  line missing from the export (lines != subtotal), lines whose invoice header never arrives
  (orphans), credits + refunds > total. Subscriptions get plan changes, past-due spells and
  cancellations as new versions of the same ``subscription_id``.
* CRM: one snapshot file every ``crm_snapshot_every_days`` (1, or 7 above 20,000 customers, and
  always the last day). Over the window accounts change owner, segment or region (a new dim
  version), their name, or only their ``updated_at``; some get their billing link later; a few are
  deleted (``is_deleted = true`` for two weeks, then gone); a few rows are missing from a snapshot.
* Billing and FX files are daily (invoices, line items, credit notes, refunds) or monthly
  (customers, subscriptions: the first file is the full export as of the window start; fx_rates),
  in ``.jsonl`` or ``.csv``. All document dates fall inside the window.

Extra batches for a benchmark (same ``customers``/``start``/``days``/``events_per_day``/``seed``
as the landing zone they extend; they only add new files):

* ``generate_peak_day``: one more day (default: the day after the window) of ``events`` events,
  files ``usage_events/events_<day>_peak_partNNNN.jsonl.gz``, with same-file re-deliveries and
  malformed lines at the configured rates.
* ``generate_late_batch``: a batch arriving on ``arrival_day`` (default: the day after the window)
  with ``events_per_origin_day`` new events on each of ``origin_days`` (default: 3 earlier days,
  2, 10 and 40 days before the arrival, clipped to the window), re-deliveries of already-delivered
  events of those days, and malformed lines: files ``events_<arrival>_late<batch>_partNNNN...``.

Both return a summary with the events and units they add per UTC day. Billing and CRM are not
touched by them.
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import struct
import time
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from c360_assets.lib.sqlquote import literal

if TYPE_CHECKING:
    import duckdb

PRODUCTS = ("fraud_score", "device_intel", "kyc_check", "aml_screening")
MALFORMED_KINDS = ("bad_json", "missing_field", "wrong_type", "negative_quantity")
# plan code, monthly fee (minor), included units per product, overage price (minor), setup fee
PLANS = (
    ("starter", 2_900, 500, 5, 0),
    ("growth", 49_900, 20_000, 3, 25_000),
    ("scale", 249_900, 250_000, 2, 50_000),
    ("enterprise", 1_500_000, 2_500_000, 1, 250_000),
)
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
# Local UTC offsets (minutes) tenants of a region write their timestamps in.
REGION_OFFSETS = {
    "NA": (-300, -240, -360, -420, -480),
    "EMEA": (0, 60, 120, 180),
    "APAC": (330, 480, 540, 600),
    "LATAM": (-180, -300, -240),
}
CREDIT_REASONS = ("service_outage", "billing_error", "goodwill", "duplicate_charge", "sla_breach")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
EPOCH = dt.date(1970, 1, 1)
MAX_CUSTOMERS = 2_000_000  # keeps every integer key below 2**31
CRM_DAILY_UP_TO = 20_000  # customers; above this, CRM snapshots are weekly by default

# Event streams: (origin day, stream, seq) identifies an event; the stream keeps ids disjoint.
ONTIME, LATE, MALFORMED, PEAK, PEAK_MALFORMED = 0, 1, 2, 3, 4
SPIKE_BASE = 16  # + index of the spike within its day
LATE_BATCH_BASE = 128  # + 2 * batch (events), + 2 * batch + 1 (malformed)

ACCOUNT_PREFIXES = (
    "Northwind", "Blue Harbor", "Silver Ridge", "Kestrel", "Granite", "Summit", "Evergreen",
    "Lighthouse", "Redwood", "Atlas", "Harbor Point", "Crescent", "Ironwood", "Bright Path",
    "Pioneer", "Cobalt", "Maple Leaf", "Zenith", "Orchid", "Falcon", "Sterling", "Aurora",
    "Meridian", "Juniper", "Copperline", "Nordic", "Sakura", "Andes", "Sahara", "Baltic",
    "Zürich", "São Paulo", "Łódź", "Kōbe", "Riverside", "Oakmont", "Tidewater", "Blackstone",
    "Greenfield", "Starling",
)  # fmt: skip
ACCOUNT_NOUNS = (
    "Payments", "Lending", "Bank", "Credit Union", "Capital", "Pay", "Finance", "Wallet",
    "Exchange", "Commerce", "Markets", "Insurance", "Remit", "Brokerage", "Ledger", "Checkout",
    "Trust", "Savings", "Money", "Cards",
)  # fmt: skip
ACCOUNT_SUFFIXES = (
    "", "", "", "", " Inc.", ", Inc.", " LLC", " Ltd", " GmbH", " S.A.", " plc", " AG",
    " Pty Ltd", " K.K.", " S.A. de C.V.", " B.V.",
)  # fmt: skip
FIRST_NAMES = (
    "Dana", "Alex", "Priya", "Marcus", "Elena", "Tom", "Aisha", "Kenji", "Sofia", "Liam",
    "Chloé", "Mateo", "Hannah", "Ravi", "Zoë", "Jonas", "Amara", "Diego", "Mei", "Oliver",
    "Fatima", "Lucas", "Ingrid", "Samuel", "Yuki", "Nora", "José", "Grace", "Arjun", "Leah",
    "Mohammed", "Clara", "Ethan", "Sanna", "Victor", "Olivia", "Tariq", "Maya", "Hugo", "Ada",
)  # fmt: skip
LAST_NAMES = (
    "Whitfield", "Nakamura", "Okafor", "Schmidt", "García", "O'Brien", "Kowalski", "Patel",
    "Johansson", "Rossi", "Dubois", "Chen", "Murphy", "Silva", "Novak", "Haddad", "Fischer",
    "Kim", "Andersen", "Moreau", "Costa", "Walsh", "Ivanova", "Brennan", "Tanaka", "Mensah",
    "Larsen", "Romero", "Byrne", "Singh", "Hoffmann", "Adeyemi", "Lindqvist", "Reyes", "Bauer",
    "Sato", "Keller", "Morales", "Quinn", "Yilmaz", "Laurent", "Ferreira", "Sørensen", "Ahmed",
    "Weber", "Castillo", "Doyle", "Park", "Engel", "Vargas",
)  # fmt: skip


@dataclass(frozen=True)
class GenerateOptions:
    """Knobs with sensible defaults; rates are per record unless said otherwise."""

    duplicate_rate: float = 0.004  # re-delivered rows per on-time event (half same file)
    late_rate: float = 0.01  # share of a day's events that arrive 1..max_late_days days later
    max_late_days: int = 45
    malformed_rate: float = 0.001  # malformed lines per line written
    noisy_id_rate: float = 0.01  # valid events whose tenant_id has odd case / spaces
    events_per_file: int = 1_000_000
    crm_snapshot_every_days: int | None = None  # None: 1, or 7 above 20,000 customers
    spikes: int | None = None  # spike tenant-days; None: days // 5 (none under 10 days)
    # planted revenue leaks of each kind (never billed, a line short, a wrong price) per
    # customer-month billed on a clean invoice (at least one each when 3 or more are)
    leak_rate: float = 0.03
    compresslevel: int = 1  # gzip level of the usage files (1: fast; 6: ~20 % smaller)
    # DuckDB threads; None: DuckDB's default. The files do not depend on it.
    threads: int | None = None


@dataclass(frozen=True)
class _Spec:
    customers: int
    start: dt.date
    days: int
    events_per_day: int
    seed: int
    opts: GenerateOptions

    @property
    def d0(self) -> int:
        return (self.start - EPOCH).days

    @property
    def d_end(self) -> int:
        return self.d0 + self.days

    @property
    def prospects(self) -> int:
        return max(1, self.customers // 20)

    @property
    def change_scale(self) -> float:
        """Lifecycle probabilities are given per 90 days."""
        return min(1.0, self.days / 90)

    def validate(self) -> None:
        if not 1 <= self.customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be in 1..{MAX_CUSTOMERS}")
        if self.days < 1 or self.events_per_day < 1:
            raise ValueError("days and events_per_day must be >= 1")
        if self.opts.events_per_file < 1000:
            raise ValueError("events_per_file must be >= 1000")
        for name in ("duplicate_rate", "late_rate", "malformed_rate", "noisy_id_rate", "leak_rate"):
            if not 0 <= getattr(self.opts, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5)")
        if not 1 <= self.opts.max_late_days <= 45:
            raise ValueError("max_late_days must be in 1..45")


@dataclass(frozen=True)
class _Seg:
    """A run of events ``seq in [lo, hi)`` of one (origin day, stream), as written in one file."""

    stream: int
    origin: int
    lo: int
    hi: int
    nref: int  # events in the whole (origin, stream): places seq on the day's curve
    fixed_lo: int | None = None  # sampling position of a fixed tenant (spikes)
    dup: bool = False  # a re-delivery of an event already delivered
    bad: bool = False  # malformed lines
    spread: bool = False  # arrival spread over the file's window (late rows, later re-deliveries)

    def slice(self, part: int, parts: int) -> _Seg:
        n = self.hi - self.lo
        return replace(self, lo=self.lo + n * part // parts, hi=self.lo + n * (part + 1) // parts)


# -- small helpers ------------------------------------------------------------------------------


def _rand(seed: int, *parts: object) -> int:
    """A 64-bit deterministic pseudo-random integer (planning metadata only, not per event)."""
    data = repr((seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _unit(seed: int, *parts: object) -> float:
    return _rand(seed, *parts) / 2**64


def _day(d: int) -> dt.date:
    return EPOCH + dt.timedelta(days=d)


def _sql_list(values: Iterable[object]) -> str:
    return "[" + ", ".join(literal(v) if isinstance(v, str) else str(v) for v in values) + "]"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("Ø", "O"))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def _stochastic_round(x: float, u: float) -> int:
    return int(math.floor(x + u))


def _month_starts(d0: int, d_end: int) -> list[int]:
    """Epoch days of the first days of months in [d0, d_end)."""
    out = []
    day = _day(d0)
    first = day.replace(day=1)
    if first < day:
        first = (first + dt.timedelta(days=32)).replace(day=1)
    while (first - EPOCH).days < d_end:
        out.append((first - EPOCH).days)
        first = (first + dt.timedelta(days=32)).replace(day=1)
    return out


class _Publisher:
    """Writes files under a temporary name and renames them into place, never editing a file."""

    def __init__(self) -> None:
        self.unchanged = 0

    def publish(self, tmp: Path, final: Path) -> None:
        if final.exists():
            if (
                final.stat().st_size == tmp.stat().st_size
                and final.read_bytes() == tmp.read_bytes()
            ):
                tmp.unlink()
                self.unchanged += 1
                return
            tmp.unlink()
            raise FileExistsError(
                f"{final} exists with other content; landing files are never edited in place "
                "(generate into an empty directory, or with the same arguments)"
            )
        os.replace(tmp, final)

    @staticmethod
    def tmp_for(final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.{os.getpid()}.tmp")


# -- the generator ------------------------------------------------------------------------------


class _Generator:
    def __init__(self, landing_dir: Path, spec: _Spec, progress: bool) -> None:
        import duckdb

        spec.validate()
        self.landing = Path(landing_dir)
        self.spec = spec
        self.seed = spec.seed
        self.progress = progress
        self.publisher = _Publisher()
        self.con: duckdb.DuckDBPyConnection = duckdb.connect()
        if spec.opts.threads:
            self.con.execute(f"SET threads = {int(spec.opts.threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        # row estimates of range() runs are unreliable: keep ASOF a sort-merge join, never a loop
        self.con.execute("SET asof_loop_join_threshold = 0")
        self._macros()
        self.total_weight = 0
        self.files: dict[str, int] = defaultdict(int)
        self.rows: dict[str, int] = defaultdict(int)

    # ---- SQL plumbing
    def _run(self, sql: str) -> None:
        self.con.execute(sql)

    def _all(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def _macros(self) -> None:
        s = self.seed
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        b62 = " || ".join(
            f"substr('{alphabet}', 1 + ((x) // {62**k} % 62)::INTEGER, 1)" for k in range(4, -1, -1)
        )
        for macro in (
            f"hx(a, b, c, d) AS hash({s}, a, b, c, d)",
            f"ux(a, b, c, d) AS (hash({s}, a, b, c, d) % 1000000007) / 1000000007.0",
            # a bijection of [0, 2**32) (xor-shift-multiply rounds): distinct keys, distinct ids
            "mix1(v) AS (xor(v, v >> 16) * 73244475) % 4294967296",
            "mix2(x, salt) AS mix1(mix1(xor((x)::BIGINT, (salt)::BIGINT)))",
            "scr(x, salt) AS xor(mix2(x, salt), mix2(x, salt) >> 16)",
            # the same on [0, 2**28)
            "mix28a(v) AS (xor(v, v >> 14) * 10007) % 268435456",
            "mix28b(x, salt) AS mix28a(mix28a(xor((x)::BIGINT, (salt)::BIGINT)))",
            "mix28(x, salt) AS xor(mix28b(x, salt), mix28b(x, salt) >> 14)",
            "hex8(x) AS lpad(lower(hex(x)), 8, '0')",
            "hex4(h) AS lpad(lower(hex((h) % 65536)), 4, '0')",
            f"b62(x) AS {b62}",
            "pick(lst, h) AS list_element(lst, 1 + ((h) % len(lst))::INTEGER)",
            "ts_z(ms) AS strftime(make_timestamp((ms)::BIGINT * 1000), '%Y-%m-%dT%H:%M:%SZ')",
            "ts_ms_z(ms) AS strftime(make_timestamp((ms)::BIGINT * 1000), '%Y-%m-%dT%H:%M:%S.%gZ')",
            "ts_utc(ms) AS strftime(make_timestamp((ms)::BIGINT * 1000),"
            " '%Y-%m-%dT%H:%M:%S+00:00')",
            "day_txt(ms) AS strftime(make_timestamp((ms)::BIGINT * 1000), '%Y-%m-%d')",
            "month_txt(ms) AS strftime(make_timestamp((ms)::BIGINT * 1000), '%Y-%m')",
            "month_ms(ms) AS epoch_ms(date_trunc('month', make_timestamp((ms)::BIGINT * 1000)))",
            "next_month_ms(ms) AS epoch_ms(date_trunc('month', make_timestamp((ms)::BIGINT * 1000))"
            " + INTERVAL 1 MONTH)",
            # a time drawn in [lo, hi), or NULL when the range is empty
            "within(lo, hi, u) AS CASE WHEN (lo) < (hi)"
            " THEN ((lo) + floor((u) * ((hi) - (lo))))::BIGINT END",
            # ids: pure functions of integer keys, so every source agrees on them
            "tenant_id(k) AS 'ten_' || hex8(scr(k, 1592366319))",
            "bc_id(k) AS 'cus_' || hex8(scr(k, 2868466484)) || hex4(hx(30, k, 0, 0))",
            "sub_id(k) AS 'sub_' || hex8(scr(k, 1103515245)) || hex4(hx(31, k, 0, 0))",
            "crm_id(c) AS '0015g00000' || b62(((c)::BIGINT * 387420489 + 12345) % 916132832)",
            "inv_id(k) AS 'in_' || hex8(scr(k, 3735928559)) || hex4(hx(32, k, 0, 0))",
        ):
            self._run(f"CREATE OR REPLACE MACRO {macro}")

    # ---- the universe: customers, tenants, sampling table
    def build_universe(self) -> None:
        sp = self.spec
        n_all = sp.customers + sp.prospects
        d0_ms, d_end_ms = sp.d0 * DAY_MS, sp.d_end * DAY_MS
        sc = sp.change_scale
        offsets = {r: _sql_list(REGION_OFFSETS[r]) for r in REGIONS}
        # even a tiny world has one customer without CRM account, one never billed, and one
        # with an offline billing customer (no tenant)
        must = [-1, -1, -1]
        if sp.customers >= 10:
            first = _rand(self.seed, "must") % (sp.customers - 2)
            must = [first, first + 1, first + 2]
        self._run(f"""
        CREATE OR REPLACE TABLE cust AS
        WITH base AS (
            SELECT c, c >= {sp.customers} AS prospect,
                -- Pareto(1.16) weights: the 80/20 rule
                least(2000000, floor(1000 * pow(1.0 - ux(1, c, 0, 0), -1 / 1.16)))::BIGINT
                    AS weight,
                ux(2, c, 0, 0) AS u_n, ux(3, c, 0, 0) AS u_r, ux(4, c, 0, 0) AS u_s,
                ux(5, c, 0, 0) AS u_cur, ux(6, c, 0, 0) AS u_crm, ux(7, c, 0, 0) AS u_bill,
                ux(8, c, 0, 0) AS u_link, ux(9, c, 0, 0) AS u_new, ux(10, c, 0, 0) AS u_created,
                ux(12, c, 0, 0) AS u_tax, ux(14, c, 0, 0) AS u_trial, ux(16, c, 0, 0) AS u_offline
            FROM range({n_all}) r(c)
        ), b AS (
            SELECT *,
                CASE WHEN prospect THEN 0 WHEN u_n < 0.6 THEN 1 WHEN u_n < 0.88 THEN 2 ELSE 3
                END AS n_tenants,
                CASE WHEN u_r < 0.45 THEN 0 WHEN u_r < 0.75 THEN 1 WHEN u_r < 0.9 THEN 2 ELSE 3
                END AS region_idx,
                CASE WHEN u_s < 0.05 THEN (hx(15, c, 0, 0) % 3)::INTEGER
                     WHEN weight >= 15000 THEN 2 WHEN weight >= 4000 THEN 1 ELSE 0
                END AS segment_idx,
                prospect OR (u_crm >= 0.02 AND c <> {must[0]}) AS has_crm,
                NOT prospect AND u_bill >= 0.03 AND c <> {must[1]} AS has_billing,
                CASE WHEN u_link < 0.85 THEN 'both' WHEN u_link < 0.92 THEN 'crm_only'
                     ELSE 'billing_only' END AS link_mode,
                NOT prospect AND u_new < 0.10 AS is_new
            FROM base
        ), c AS (
            SELECT *,
                CASE WHEN is_new THEN {sp.d0} + floor(u_created * greatest(1, {sp.days} - 3))
                     ELSE {sp.d0} - 30 - floor(u_created * 510) END::BIGINT AS created_day
            FROM b
        )
        SELECT c, prospect, weight, n_tenants, region_idx, segment_idx, has_crm, has_billing,
            link_mode, is_new,
            has_billing AND (u_offline < 0.01 OR c = {must[2]}) AS offline_bc,
            list_element({_sql_list(REGIONS)}, region_idx + 1) AS region,
            list_element({_sql_list(SEGMENTS)}, segment_idx + 1) AS segment,
            CASE WHEN region_idx <> 1 THEN 'USD' WHEN u_cur < 0.65 THEN 'EUR' ELSE 'GBP'
            END AS currency,
            CASE WHEN region_idx = 1 THEN 2000 WHEN region_idx = 0 AND u_tax < 0.5 THEN 800 ELSE 0
            END AS tax_bp,
            created_day * {DAY_MS} + floor(ux(17, c, 0, 0) * {DAY_MS})::BIGINT AS created_ms,
            CASE WHEN is_new AND u_trial < 0.3 THEN 1 + (hx(18, c, 0, 0) % 7)::INTEGER ELSE 0
            END AS trial_days,
            crm_id(c) AS crm_account_id
        FROM c
        """)
        self._run(f"""
        CREATE OR REPLACE TABLE ten AS
        WITH t AS (
            SELECT c.*, k, c.c * 4 + k AS tkey, k = 3 AS offline,
                ux(20, c.c, k, 0) AS u_billed, ux(21, c.c, k, 0) AS u_cancel,
                ux(23, c.c, k, 0) AS u_zombie, ux(24, c.c, k, 0) AS u_change,
                ux(25, c.c, k, 0) AS u_pd, ux(26, c.c, k, 0) AS u_plan
            FROM cust c, range(4) r(k)
            WHERE NOT c.prospect AND (k < c.n_tenants OR (k = 3 AND c.offline_bc))
        ), w AS (
            SELECT *,
                CASE WHEN offline THEN 0
                     ELSE greatest(1, CASE k WHEN 0 THEN weight WHEN 1 THEN weight * 3 // 10
                                              ELSE weight // 10 END) END AS tweight,
                offline OR (has_billing AND (k = 0 OR u_billed >= 0.05)) AS billed,
                created_ms + k * 600000 AS start_ms,
                ux(27, c, k, 1) < 0.7 AS use_device, ux(27, c, k, 2) < 0.45 AS use_kyc,
                ux(27, c, k, 3) < 0.10 AS use_aml
            FROM t
        ), l AS (
            SELECT *,
                CASE WHEN billed AND u_cancel < {0.04 * sc} THEN
                    within(greatest(start_ms, {d0_ms}) + {DAY_MS}, {d_end_ms - 2 * DAY_MS},
                           ux(22, c, k, 0)) END AS cancel_ms,
                CASE WHEN billed AND NOT offline AND u_change < {0.06 * sc} THEN
                    within(greatest(start_ms, {d0_ms}) + {DAY_MS}, {d_end_ms - DAY_MS},
                           ux(28, c, k, 0)) END AS change_ms,
                CASE WHEN billed AND u_pd < {0.02 * sc} THEN
                    within(greatest(start_ms, {d0_ms}) + {DAY_MS}, {d_end_ms - DAY_MS},
                           ux(29, c, k, 0)) END AS pd_ms,
                10 + 6 * use_device::INTEGER + 4 * use_kyc::INTEGER + 2 * use_aml::INTEGER AS pw
            FROM w
        )
        SELECT c, k, tkey, offline, billed, tweight AS weight, region, currency, tax_bp,
            has_crm, link_mode, crm_account_id, start_ms,
            CASE WHEN offline THEN NULL ELSE tenant_id(tkey) END AS tenant_id,
            10.0 / pw AS p1, (10.0 + 6 * use_device::INTEGER) / pw AS p2,
            (10.0 + 6 * use_device::INTEGER + 4 * use_kyc::INTEGER) / pw AS p3,
            pick(CASE region_idx WHEN 0 THEN {offsets["NA"]} WHEN 1 THEN {offsets["EMEA"]}
                 WHEN 2 THEN {offsets["APAC"]} ELSE {offsets["LATAM"]} END,
                 hx(11, c, k, 0)) AS off_min,
            cancel_ms,
            CASE WHEN cancel_ms IS NOT NULL THEN
                least(cancel_ms + floor(ux(22, c, k, 1) * 20 * {DAY_MS})::BIGINT,
                      {d_end_ms - HOUR_MS})
            END AS ended_ms,
            change_ms, pd_ms,
            CASE WHEN pd_ms IS NOT NULL THEN
                pd_ms + (3 + (hx(29, c, k, 1) % 8)::BIGINT) * {DAY_MS} + {HOUR_MS} END AS pd_end_ms,
            u_plan,
            (start_ms // {DAY_MS}) - CASE WHEN billed THEN trial_days ELSE 0 END AS active_from,
            CASE WHEN cancel_ms IS NOT NULL AND u_zombie >= 0.25 THEN
                (least(cancel_ms + floor(ux(22, c, k, 1) * 20 * {DAY_MS})::BIGINT,
                       {d_end_ms - HOUR_MS}) // {DAY_MS}) - 1
                ELSE 2147483647 END AS active_to,
            cancel_ms IS NOT NULL AND u_zombie < 0.25 AS zombie
        FROM l
        """)
        self.total_weight = self._all("SELECT sum(weight) FROM ten WHERE NOT offline")[0][0]
        w_total, e = self.total_weight, sp.events_per_day
        # plan tier sized on the expected monthly units of the tenant's main product
        self._run(f"""
        CREATE OR REPLACE TABLE ten2 AS
        SELECT *,
            CASE WHEN offline THEN 2 + (hx(34, tkey, 0, 0) % 2)::INTEGER
                 WHEN x > 250000 THEN 3 WHEN x > 20000 THEN 2 WHEN x > 500 THEN 1 ELSE 0
            END AS tier
        FROM (SELECT *, {e} * 30.4 * weight / {w_total} * p1 * 1.1 * (0.15 + 1.05 * u_plan) AS x
              FROM ten)
        """)
        self._run("""
        CREATE OR REPLACE TABLE ten AS
        SELECT * EXCLUDE (u_plan, x),
            CASE WHEN change_ms IS NULL THEN tier WHEN tier < 3 THEN tier + 1 ELSE 2 END AS new_tier
        FROM ten2
        """)
        self._run("DROP TABLE ten2")
        self._run("""
        CREATE OR REPLACE TABLE tcum AS
        SELECT (sum(weight) OVER (ORDER BY tkey ROWS UNBOUNDED PRECEDING) - weight)::BIGINT AS lo,
            tkey, weight, tenant_id, p1, p2, p3, off_min,
            CASE WHEN off_min < 0 THEN '-' ELSE '+' END
                || lpad((abs(off_min) // 60)::VARCHAR, 2, '0') || ':'
                || lpad((abs(off_min) % 60)::VARCHAR, 2, '0') AS off_txt,
            active_from, active_to, billed
        FROM ten WHERE NOT offline
        ORDER BY lo
        """)

    # ---- usage events: the per-day plan
    def _day_counts(self, d: int) -> tuple[int, int, int]:
        """(organic events, on-time events, late events) whose UTC day is ``d``."""
        weekday = _day(d).weekday()
        season = 1.10 if weekday < 5 else (0.78 if weekday == 5 else 0.72)
        n = max(1, round(self.spec.events_per_day * season))
        n_late = _stochastic_round(n * self.spec.opts.late_rate, _unit(self.seed, "late", d))
        return n, n - n_late, n_late

    def _late_blocks(self, d: int, n_late: int) -> list[tuple[int, int, int]]:
        """(lag, lo, hi) in the late stream of day d: lags 1..max, weight 1/lag."""
        max_lag = self.spec.opts.max_late_days
        weights = [1 / lag for lag in range(1, max_lag + 1)]
        total = sum(weights)
        counts = [int(n_late * w / total) for w in weights]
        cumulative = list(itertools.accumulate(w / total for w in weights))
        for i in range(n_late - sum(counts)):  # the remainder: drawn, so the tail shows up
            u = _unit(self.seed, "lag", d, i)
            counts[min(bisect.bisect_left(cumulative, u), max_lag - 1)] += 1
        out, lo = [], 0
        for lag, count in enumerate(counts, start=1):
            if count:
                out.append((lag, lo, lo + count))
            lo += count
        return out

    def _dup_blocks(self, d: int, n_on: int, stream: int = ONTIME) -> list[tuple[int, int, int]]:
        """(lag, lo, hi) runs of on-time events of day d delivered again ``lag`` days later."""
        n_dup = _stochastic_round(
            n_on * self.spec.opts.duplicate_rate, _unit(self.seed, "dup", stream, d)
        )
        if n_dup <= 0:
            return []
        k = min(4, n_dup)
        segment = n_on // k
        out = []
        for b in range(k):
            size = min(segment, n_dup * (b + 1) // k - n_dup * b // k)
            offset = _rand(self.seed, "dupoff", stream, d, b) % max(1, segment - size + 1)
            if stream != ONTIME or b % 2 == 0:
                lag = 0
            else:
                lag = 1 + _rand(self.seed, "duplag", d, b) % (7 if b == 1 else 21)
            lo = b * segment + offset
            out.append((lag, lo, lo + size))
        return out

    def _spikes(self) -> dict[int, list[tuple[int, int, int, str]]]:
        """Per origin day: (stream, sampling position, events, tenant_id) of spike tenant-days."""
        sp = self.spec
        n_spikes = sp.opts.spikes if sp.opts.spikes is not None else sp.days // 5
        if sp.days < 10:
            n_spikes = 0
        out: dict[int, list[tuple[int, int, int, str]]] = defaultdict(list)
        w_total = self.total_weight
        for j in range(n_spikes):
            day = sp.d0 + 7 + _rand(self.seed, "spikeday", j) % (sp.days - 7)
            n_day = self._day_counts(day)[0]
            rows = self._all(f"""
                SELECT lo, weight, tenant_id FROM tcum
                WHERE billed AND active_from <= {day - 7} AND active_to >= {sp.d_end}
                ORDER BY (weight * {n_day} BETWEEN {20 * w_total} AND {5000 * w_total}) DESC,
                    hx(91, {j}, tkey, 0), tkey
                LIMIT 1""")
            if not rows or len(out[day]) >= LATE_BATCH_BASE - SPIKE_BASE:
                continue
            lo, weight, tenant = rows[0]
            expected = n_day * weight / w_total
            factor = 5 + _rand(self.seed, "spikefactor", j) % 6
            extra = max(100, min(round(expected * (factor - 1)), max(100, n_day // 20)))
            out[day].append((SPIKE_BASE + len(out[day]), lo, extra, tenant))
        return out

    def _plan_days(self) -> dict[int, list[_Seg]]:
        """For each arrival day of the window: the segments of events its files carry."""
        sp = self.spec
        arrivals: dict[int, list[_Seg]] = defaultdict(list)
        self.same_file_dups: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.spike_plan = self._spikes()
        for d in range(sp.d0, sp.d_end):
            _, n_on, n_late = self._day_counts(d)
            arrivals[d].insert(0, _Seg(ONTIME, d, 0, n_on, n_on))
            for lag, lo, hi in self._late_blocks(d, n_late):
                if d + lag < sp.d_end:
                    arrivals[d + lag].append(_Seg(LATE, d, lo, hi, n_late, spread=True))
            for lag, lo, hi in self._dup_blocks(d, n_on):
                if lag == 0:
                    self.same_file_dups[d].append((lo, hi))
                elif d + lag < sp.d_end:
                    arrivals[d + lag].append(_Seg(ONTIME, d, lo, hi, n_on, dup=True, spread=True))
            for stream, lo_w, extra, _ in self.spike_plan.get(d, []):
                arrivals[d].append(_Seg(stream, d, 0, extra, extra, fixed_lo=lo_w))
        return arrivals

    # ---- usage events: writing
    def _chunk_sql(self, segs: list[_Seg], file_day: int, part: int, parts: int) -> list[str]:
        """Two statements: the events' keys and tenants (``evbase``), then their lines."""
        runs = " UNION ALL ".join(
            f"SELECT {s.stream}::BIGINT AS stream, {s.origin}::BIGINT AS origin, "
            f"{s.nref}::BIGINT AS nref, {s.dup} AS dup, {s.bad} AS bad, {s.spread} AS spread, "
            f"seq, "
            + (
                f"(hx({s.origin}::BIGINT, {s.stream}::BIGINT, seq, 1) % {self.total_weight})"
                "::BIGINT"
                if s.fixed_lo is None
                else f"{s.fixed_lo}::BIGINT"
            )
            + f" AS hu FROM range({s.lo}, {s.hi}) q(seq)"
            for s in segs
        )
        noisy_bp = round(self.spec.opts.noisy_id_rate * 10000)
        # position in [0, 1) of the day's events -> time of day (fraction), peaking at 15:00 UTC
        warp = "({x} + 0.625 - 0.55 / (2 * pi()) * sin(2 * pi() * {x}))"
        # pieces of malformed lines, inlined so that only those rows compute them
        p_eid = """'"event_id":"evt_' || eid || '"'"""
        p_ten = """'"tenant_id":"' || ten_txt || '"'"""
        p_prod = """'"product":"' || product || '"'"""
        p_ts = """'"occurred_at":"' || ts_txt || '"'"""
        return [
            f"""
        CREATE OR REPLACE TEMP TABLE evbase AS
        SELECT r.*, t.tkey, t.tenant_id, t.p1, t.p2, t.p3, t.off_min, t.off_txt
        FROM ({runs}) r ASOF JOIN tcum t ON r.hu >= t.lo
        WHERE r.origin BETWEEN t.active_from AND t.active_to
        """,
            f"""
        CREATE OR REPLACE TEMP TABLE chunk AS
        WITH a AS (
            SELECT *,
                hx(origin, stream, seq, 2) AS h2, hx(origin, stream, seq, 3) AS h3,
                hx(origin, stream, seq, 4) AS h4, hx(origin, stream, seq, 5) AS h5,
                hx(origin, stream, seq, 6) AS h6, hx(origin, stream, seq, 7) AS h7
            FROM evbase
        ), b AS (
            SELECT *,
                {warp.format(x="x")} AS tt,
                CASE WHEN u3 < p1 THEN 'fraud_score' WHEN u3 < p2 THEN 'device_intel'
                     WHEN u3 < p3 THEN 'kyc_check' ELSE 'aml_screening' END AS product
            FROM (SELECT *, (seq + (h2 % 1000000) / 1e6) / nref AS x, (h3 % 1000000) / 1e6 AS u3,
                      ({part} + ((h6 >> 32) % 1000000) / 1e6) / {parts} AS xs
                  FROM a)
        ), c AS (
            SELECT *,
                origin * {DAY_MS} + floor({DAY_MS} * (tt - floor(tt)))::BIGINT AS occ_ms,
                CASE WHEN h4 % 1000 < 5 THEN 0
                     WHEN product = 'device_intel' AND h4 % 1000 < 300 THEN 2 + (h4 >> 16) % 9
                     WHEN product = 'kyc_check' AND h4 % 1000 < 100 THEN 2 + (h4 >> 16) % 3
                     ELSE 1 END::BIGINT AS qty,
                NOT bad AND h6 % 10000 < {noisy_bp} AS noisy,
                (h7 % 4)::INTEGER AS mk, ((h7 >> 8) % 60)::INTEGER AS mv
            FROM b
        ), d AS (
            SELECT *,
                qty = 1 AND (h4 >> 40) % 100 < 4 AS omit_qty,
                -- 16 hex digits: 'e' + 28 bits of (day, stream) + 32 bits of seq, both bijective
                lower(hex((((3758096384 + mix28(origin * 256 + stream, 91813237))::UBIGINT << 32)
                    | xor(scr(seq, 3266489917), (hx(origin, stream, 0, 8) % 4294967296)::BIGINT)
                        ::UBIGINT))) AS eid,
                CASE WHEN NOT noisy THEN tenant_id
                    WHEN (h6 >> 16) % 4 = 0 THEN upper(tenant_id)
                    WHEN (h6 >> 16) % 4 = 1 THEN ' ' || tenant_id
                    WHEN (h6 >> 16) % 4 = 2 THEN tenant_id || '  '
                    ELSE ' ' || upper(tenant_id) || ' ' END AS ten_txt,
                strftime(make_timestamp(
                        (occ_ms + CASE WHEN h5 % 100 < 65 THEN 0 ELSE off_min END * 60000) * 1000),
                        '%Y-%m-%dT%H:%M:%S.%g')
                    || CASE WHEN h5 % 100 < 55 THEN 'Z' WHEN h5 % 100 < 65 THEN '+00:00'
                            ELSE off_txt END AS ts_txt,
                -- rows of other days arrive within this file's window of the daily curve
                CASE WHEN spread THEN {file_day * DAY_MS}
                        + floor({DAY_MS} * ({warp.format(x="xs")} - floor({warp.format(x="xs")})))
                            ::BIGINT
                     ELSE occ_ms + ((h6 >> 32) % 120000)::BIGINT
                        + CASE WHEN dup THEN 60000 + ((h7 >> 32) % 3600000)::BIGINT ELSE 0 END
                END AS arr
            FROM c
        ), e AS (
            SELECT *,
                concat('{{"event_id":"evt_', eid, '","tenant_id":"', ten_txt, '","product":"',
                    product, CASE WHEN omit_qty THEN '",' ELSE '","quantity":' || qty || ',' END,
                    '"occurred_at":"', ts_txt, '"}}') AS valid
            FROM d
        )
        SELECT origin, stream, seq, dup, spread, arr, tkey, product, noisy, omit_qty,
            CASE WHEN bad THEN list_element({_sql_list(MALFORMED_KINDS)}, mk + 1) ELSE 'valid'
            END AS cls,
            CASE WHEN bad THEN 0 ELSE qty END AS qty,
            NOT bad AND NOT dup AND origin < {file_day} AS late,
            CASE WHEN NOT bad THEN valid
                WHEN mk = 0 AND mv % 2 = 0 THEN left(valid, length(valid) // 2 + mv % 7)
                WHEN mk = 0 THEN replace(valid, '"', '''')
                WHEN mk = 1 THEN '{{' || concat_ws(',',
                    CASE WHEN mv % 4 = 0 THEN NULL ELSE {p_eid} END,
                    CASE WHEN mv % 4 = 1 THEN NULL ELSE {p_ten} END,
                    CASE WHEN mv % 4 = 2 THEN NULL ELSE {p_prod} END,
                    '"quantity":' || qty,
                    CASE WHEN mv % 4 = 3 THEN NULL ELSE {p_ts} END) || '}}'
                WHEN mk = 2 AND mv % 4 = 3 THEN '{{' || concat_ws(',', {p_eid}, {p_ten}, {p_prod},
                    '"quantity":' || qty, '"occurred_at":"yesterday"') || '}}'
                WHEN mk = 2 THEN '{{' || concat_ws(',', {p_eid}, {p_ten}, {p_prod},
                    '"quantity":"' || list_element(['lots', 'a few', '12 units'], mv % 4 + 1)
                        || '"',
                    {p_ts}) || '}}'
                ELSE '{{' || concat_ws(',', {p_eid}, {p_ten}, {p_prod},
                    '"quantity":-' || (1 + (h7 >> 16) % 50), {p_ts}) || '}}'
            END || chr(10) AS line
        FROM e
        """,
        ]

    def _write_events(
        self, parts_by_file: list[tuple[Path, int, int, int, list[_Seg]]], desc: str
    ) -> dict[str, Any]:
        """Writes usage files; each entry: (path, file day, part, parts, segments)."""
        from tqdm import tqdm

        stats = _UsageStats()
        planned = sum(s.hi - s.lo for *_, segs in parts_by_file for s in segs)
        level = self.spec.opts.compresslevel
        with (
            tqdm(
                total=planned, desc=desc, unit="ev", unit_scale=True, disable=not self.progress
            ) as bar,
            concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool,
        ):
            # compression overlaps the next chunk; at most two chunks wait (bounded memory)
            pending: list[concurrent.futures.Future] = []
            for path, file_day, part, parts, segs in parts_by_file:
                segs = [s for s in segs if s.hi > s.lo]
                if not segs:
                    continue
                for sql in self._chunk_sql(segs, file_day, part, parts):
                    self._run(sql)
                stats.add(
                    self._all("""
                    SELECT cls, dup, spread, late, noisy, omit_qty, origin,
                        count(*), sum(qty)::BIGINT
                    FROM chunk GROUP BY ALL""")
                )
                self._run("""
                    INSERT INTO usage_stage
                    SELECT tkey, product,
                        date_trunc('month', DATE '1970-01-01' + origin::INTEGER)::DATE AS month,
                        sum(qty)::BIGINT, count(*)
                    FROM chunk WHERE cls = 'valid' AND NOT dup GROUP BY ALL""")
                table = self.con.sql(
                    "SELECT line FROM chunk ORDER BY arr, origin, stream, seq, dup"
                ).to_arrow_table()
                n = table.num_rows
                if n == 0:
                    continue
                while len(pending) >= 2:
                    pending.pop(0).result()
                pending.append(pool.submit(self._gzip_to, table, path, level))
                self.files["usage_events"] += 1
                self.rows["usage_events"] += n
                bar.update(n)
                self._fold_usage(force=False)
            for future in pending:
                future.result()
        return stats.summary()

    def _gzip_to(self, table: Any, path: Path, level: int) -> None:
        tmp = self.publisher.tmp_for(path)
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip container, mtime 0
        with tmp.open("wb") as out:
            for chunk in table.column(0).chunks:
                out.write(comp.compress(_string_bytes(chunk)))
            out.write(comp.flush())
        self.publisher.publish(tmp, path)

    def _init_usage_acc(self) -> None:
        self._run("""CREATE OR REPLACE TABLE usage_stage
            (tkey BIGINT, product VARCHAR, month DATE, units BIGINT, events BIGINT)""")
        self._run("CREATE OR REPLACE TABLE usage_month AS SELECT * FROM usage_stage")
        self._staged = 0

    def _fold_usage(self, force: bool) -> None:
        """Keeps usage per (tenant, product, month) exact without an ever-growing table."""
        self._staged += 1
        if not force and self._staged < 16:
            return
        self._run("""
            CREATE OR REPLACE TABLE usage_month AS
            SELECT tkey, product, month, sum(units)::BIGINT AS units, sum(events)::BIGINT AS events
            FROM (SELECT * FROM usage_month UNION ALL SELECT * FROM usage_stage)
            GROUP BY ALL""")
        self._run("DELETE FROM usage_stage")
        self._staged = 0

    def _file_jobs(
        self,
        file_day: int,
        segs: list[_Seg],
        bad_stream: int,
        same_file: Iterable[tuple[int, int]] = (),
        tag: str = "",
    ) -> list[tuple[Path, int, int, int, list[_Seg]]]:
        """Slices what arrives on ``file_day`` into part files of ~``events_per_file`` lines.

        Malformed lines (stream ``bad_stream``) are added at the configured rate. ``segs[0]`` is
        the day's main run; the ``same_file`` runs of it are delivered a second time in the file
        that holds their first delivery.
        """
        same_file = list(same_file)
        rows = sum(s.hi - s.lo for s in segs) + sum(hi - lo for lo, hi in same_file)
        u = _unit(self.seed, "bad", bad_stream, file_day)
        m = _stochastic_round(rows * self.spec.opts.malformed_rate, u)
        if m:
            segs = [*segs, _Seg(bad_stream, file_day, 0, m, m, bad=True, spread=True)]
        parts = max(1, math.ceil((rows + m) / self.spec.opts.events_per_file))
        jobs = []
        for p in range(parts):
            part_segs = [s.slice(p, parts) for s in segs]
            main = part_segs[0]
            for lo, hi in same_file:
                lo, hi = max(lo, main.lo), min(hi, main.hi)
                if hi > lo:
                    part_segs.append(replace(main, lo=lo, hi=hi, dup=True))
            name = f"events_{_day(file_day)}{tag}_part{p:04d}.jsonl.gz"
            jobs.append((self.landing / "usage_events" / name, file_day, p, parts, part_segs))
        return jobs

    def write_usage(self) -> dict[str, Any]:
        sp = self.spec
        arrivals = self._plan_days()
        jobs = []
        for a in range(sp.d0, sp.d_end):
            jobs += self._file_jobs(a, arrivals[a], MALFORMED, self.same_file_dups[a])
        self._init_usage_acc()
        summary = self._write_events(jobs, "usage_events")
        self._fold_usage(force=True)
        summary["spikes"] = [
            {"usage_date": str(_day(d)), "tenant_id": tenant, "extra_events": extra}
            for d, items in sorted(self.spike_plan.items())
            for _, _, extra, tenant in items
        ]
        return summary

    # ---- billing
    def write_billing(self) -> dict[str, Any]:
        sp = self.spec
        d0_ms, d_end_ms = sp.d0 * DAY_MS, sp.d_end * DAY_MS
        sc = sp.change_scale
        plans = ", ".join(
            f"({i}, '{code}', {fee}, {inc}, {price}, {setup})"
            for i, (code, fee, inc, price, setup) in enumerate(PLANS)
        )
        self._run(f"""CREATE OR REPLACE TABLE plans AS SELECT * FROM (VALUES {plans})
            v(tier, plan_code, fee, included, price, setup)""")
        # billing customers: one per billed tenant (+ offline ones), a 2nd version when linked late
        self._run(f"""
        CREATE OR REPLACE TABLE bc AS
        WITH b AS (
            SELECT tkey, c, k, currency, start_ms, tenant_id,
                CASE WHEN NOT has_crm THEN NULL
                     WHEN k = 0 AND link_mode = 'crm_only' THEN NULL
                     ELSE crm_account_id || CASE WHEN ux(35, tkey, 0, 0) < 0.01 THEN ' ' ELSE '' END
                END AS crm,
                ux(36, tkey, 0, 0) AS u_late, ux(37, tkey, 0, 0) AS u_case
            FROM ten WHERE billed
        ), l AS (
            SELECT *,
                CASE WHEN crm IS NOT NULL AND u_late < {0.03 * sc} THEN
                    within(greatest(start_ms, {d0_ms}) + {HOUR_MS}, {d_end_ms - HOUR_MS},
                           ux(38, tkey, 0, 0)) END AS link_ms
            FROM b
        )
        SELECT tkey, bc_id(tkey) AS billing_customer_id,
            CASE WHEN u_case < 0.01 THEN upper(tenant_id) ELSE tenant_id END AS tenant_id,
            CASE WHEN link_ms IS NULL THEN crm END AS crm_account_id,
            currency, start_ms AS created_ms, start_ms AS updated_ms
        FROM l
        UNION ALL
        SELECT tkey, bc_id(tkey), CASE WHEN u_case < 0.01 THEN upper(tenant_id) ELSE tenant_id END,
            crm, currency, start_ms, link_ms
        FROM l WHERE link_ms IS NOT NULL
        """)
        # subscription versions: the state at each change time up to the cancellation
        self._run(f"""
        CREATE OR REPLACE TABLE subv AS
        WITH t AS (
            SELECT tkey, start_ms AS doc_ms FROM ten WHERE billed
            UNION ALL SELECT tkey, change_ms FROM ten WHERE change_ms IS NOT NULL
            UNION ALL SELECT tkey, pd_ms FROM ten WHERE pd_ms IS NOT NULL
            UNION ALL SELECT tkey, pd_end_ms FROM ten WHERE pd_ms IS NOT NULL
            UNION ALL SELECT tkey, cancel_ms FROM ten WHERE cancel_ms IS NOT NULL
        )
        SELECT n.tkey, t.doc_ms AS updated_ms, n.start_ms,
            CASE WHEN n.change_ms <= t.doc_ms THEN n.new_tier ELSE n.tier END AS tier,
            CASE WHEN n.cancel_ms <= t.doc_ms THEN 'canceled'
                 WHEN n.pd_ms <= t.doc_ms AND t.doc_ms < n.pd_end_ms THEN 'past_due'
                 ELSE 'active' END AS status,
            CASE WHEN n.cancel_ms <= t.doc_ms THEN n.ended_ms END AS ended_ms
        FROM t JOIN ten n USING (tkey)
        WHERE t.doc_ms < {d_end_ms} AND (n.cancel_ms IS NULL OR t.doc_ms <= n.cancel_ms)
        """)
        months = _month_starts(sp.d0, sp.d_end)
        month_rows = []
        for i, m in enumerate(months):
            md = _day(m)
            prev = (md - dt.timedelta(days=1)).replace(day=1)
            nxt = (md + dt.timedelta(days=32)).replace(day=1)
            prev_ms, next_ms = (prev - EPOCH).days * DAY_MS, (nxt - EPOCH).days * DAY_MS
            month_rows.append(f"({i}, {m * DAY_MS}, {prev_ms}, {next_ms})")
        months_sql = (
            f"SELECT * FROM (VALUES {', '.join(month_rows)}) v(i, m_ms, prev_ms, next_ms)"
            if month_rows
            else "SELECT 0 AS i, 0::BIGINT AS m_ms, 0::BIGINT AS prev_ms, 0::BIGINT AS next_ms "
            "WHERE false"
        )
        self._run(f"CREATE OR REPLACE TABLE months AS {months_sql}")
        # invoice candidates: a regular one on the 1st of each month (the fee in advance, the
        # usage of the month before in arrears), an initial prorated one for a subscription
        # started in the window
        self._run(f"""
        CREATE OR REPLACE TABLE inv0 AS
        WITH s AS (SELECT * FROM ten WHERE billed)
        SELECT s.tkey * 256 + 1 + 2 * m.i AS inv_key, s.tkey, 'regular' AS typ,
            m.m_ms + {HOUR_MS} + floor(ux(40, s.tkey, m.i, 0) * 4 * {HOUR_MS})::BIGINT AS issue_ms,
            m.m_ms AS period_start, m.next_ms AS period_end,
            CASE WHEN s.change_ms <= m.m_ms THEN s.new_tier ELSE s.tier END AS tier,
            false AS setup_line
        FROM s, months m
        WHERE s.start_ms < m.m_ms AND (s.ended_ms IS NULL OR s.ended_ms > m.m_ms)
        UNION ALL
        SELECT s.tkey * 256, s.tkey, 'initial', s.start_ms + 600000,
            (s.start_ms // {DAY_MS}) * {DAY_MS}, next_month_ms(s.start_ms), s.tier, true
        FROM s WHERE s.start_ms >= {d0_ms}
        """)
        # the invoices issued in the window; their statuses and faults are decided before their
        # lines, so that planted revenue leaks stay clear of the faulty invoices
        self._run(f"""
        CREATE OR REPLACE TABLE inv AS
        SELECT i.*, t.tax_bp, t.currency,
            ux(41, i.inv_key, 0, 0) AS u1, ux(42, i.inv_key, 0, 0) AS u2,
            ux(43, i.inv_key, 0, 0) AS u3
        FROM inv0 i JOIN ten t ON t.tkey = i.tkey
        WHERE i.issue_ms < {d_end_ms}
        """)
        # a few invoices stay draft (at least one when there are 20 or more)
        n_inv = self._all("SELECT count(*) FROM inv")[0][0]
        k_stuck = 0 if n_inv < 20 else max(1, round(n_inv * 0.005))
        self._run(f"""
        CREATE OR REPLACE TABLE inv_stuck AS
        SELECT inv_key FROM inv
        QUALIFY row_number() OVER (ORDER BY hx(44, inv_key, 0, 0), inv_key) <= {k_stuck}
        """)
        # status history: (draft ->) open -> paid | void | uncollectible, inside the window
        self._run(f"""
        CREATE OR REPLACE TABLE invv0 AS
        WITH i AS (SELECT *, inv_key IN (SELECT inv_key FROM inv_stuck) AS stuck FROM inv)
        SELECT inv_key, 'draft' AS status, greatest({d0_ms}, issue_ms - {6 * HOUR_MS}) AS upd
        FROM i WHERE stuck
        UNION ALL
        SELECT inv_key, 'draft', issue_ms - {6 * HOUR_MS} FROM i
        WHERE NOT stuck AND u1 < 0.015 AND issue_ms - {6 * HOUR_MS} >= {d0_ms}
        UNION ALL SELECT inv_key, 'open', issue_ms FROM i WHERE NOT stuck
        UNION ALL
        SELECT inv_key,
            CASE WHEN u2 < 0.01 THEN 'void' WHEN u2 < 0.03 THEN 'uncollectible' ELSE 'paid' END,
            issue_ms + CASE WHEN u2 < 0.01 THEN {HOUR_MS} + floor(u3 * 47 * {HOUR_MS})
                            WHEN u2 < 0.03 THEN {30 * DAY_MS} + floor(u3 * 10 * {DAY_MS})
                            ELSE {HOUR_MS} + floor(u3 * u3 * 20 * {DAY_MS}) END::BIGINT
        FROM i WHERE NOT stuck AND u2 < 0.91
        """)
        self._run(f"CREATE OR REPLACE TABLE invv AS SELECT * FROM invv0 WHERE upd < {d_end_ms}")
        self._run("""
        CREATE OR REPLACE TABLE invf AS
        SELECT inv_key, arg_max(status, upd) AS final_status, min(upd) AS first_upd,
            max(CASE WHEN status = 'paid' THEN upd END) AS paid_ms
        FROM invv GROUP BY ALL
        """)
        # deliberate faults, disjoint, among paid invoices (so every kind is well defined)
        n_eligible = self._all(f"""SELECT count(*) FROM invf
            WHERE final_status = 'paid' AND paid_ms < {d_end_ms - 3 * DAY_MS}""")[0][0]

        def k_of(rate: float) -> int:
            return 0 if n_eligible < 10 else max(1, round(n_eligible * rate))

        kh, kl, ko, kc = k_of(0.002), k_of(0.002), k_of(0.001), k_of(0.001)
        self._run(f"""
        CREATE OR REPLACE TABLE picks AS
        SELECT inv_key, CASE WHEN rn <= {kh} THEN 'header' WHEN rn <= {kh + kl} THEN 'lines'
                             WHEN rn <= {kh + kl + ko} THEN 'orphan' ELSE 'overcredit' END AS fault
        FROM (SELECT inv_key, row_number() OVER (ORDER BY hx(50, inv_key, 0, 0), inv_key) AS rn
              FROM invf WHERE final_status = 'paid' AND paid_ms < {d_end_ms - 3 * DAY_MS})
        WHERE rn <= {kh + kl + ko + kc}
        """)
        self._bill_usage()
        self._run(f"""
        CREATE OR REPLACE TABLE lines0 AS
        WITH i AS (
            SELECT inv.*, p.fee, p.setup FROM inv JOIN plans p USING (tier)
        )
        SELECT inv_key, 1 AS line_no, 'one_off' AS kind, NULL AS product, 1::BIGINT AS quantity,
            setup::BIGINT AS unit_amount, setup::BIGINT AS amount, NULL::BIGINT AS sp_start,
            NULL::BIGINT AS sp_end
        FROM i WHERE setup_line AND setup > 0
        UNION ALL
        SELECT inv_key, 2, 'subscription', NULL, 1, amt, amt, period_start, period_end
        FROM (SELECT *, CASE WHEN typ = 'initial'
                  THEN fee * ((period_end - period_start) // {DAY_MS})
                       // ((period_end - month_ms(period_start)) // {DAY_MS})
                  ELSE fee END::BIGINT AS amt FROM i)
        UNION ALL
        SELECT * FROM usage_lines
        """)
        # headers: totals from the lines
        self._run("""
        CREATE OR REPLACE TABLE hdr AS
        WITH i AS (
            SELECT inv.*, l.subtotal, (l.subtotal * inv.tax_bp + 5000) // 10000 AS tax
            FROM inv
            JOIN (SELECT inv_key, sum(amount)::BIGINT AS subtotal FROM lines0 GROUP BY ALL) l
                USING (inv_key)
        )
        SELECT i.*, f.final_status, f.first_upd, f.paid_ms, p.fault,
            i.subtotal + i.tax + CASE WHEN p.fault = 'header'
                THEN (1 + hx(51, i.inv_key, 0, 0) % 99)::BIGINT
                     * CASE WHEN hx(52, i.inv_key, 0, 0) % 2 = 0 OR i.subtotal < 1000 THEN 1
                            ELSE -1 END
                ELSE 0 END AS total
        FROM i JOIN invf f USING (inv_key) LEFT JOIN picks p USING (inv_key)
        """)
        self._run("""
        CREATE OR REPLACE TABLE out_invoices AS
        SELECT day_txt(v.upd) AS file_key, inv_id(h.inv_key) AS invoice_id,
            bc_id(h.tkey) AS billing_customer_id, v.status, h.currency,
            ts_z(h.period_start) AS period_start, ts_z(h.period_end) AS period_end,
            ts_z(h.issue_ms) AS issued_at, h.subtotal AS subtotal_minor, h.tax AS tax_minor,
            h.total AS total_minor, ts_z(v.upd) AS updated_at, v.upd AS sort_ms, h.inv_key
        FROM invv v JOIN hdr h USING (inv_key)
        WHERE h.fault IS DISTINCT FROM 'orphan'
        """)
        self._run("""
        CREATE OR REPLACE TABLE out_lines AS
        SELECT day_txt(h.first_upd) AS file_key,
            'il_' || hex8(scr(l.inv_key, 1013904223)) || lpad(l.line_no::VARCHAR, 2, '0')
                AS line_item_id,
            inv_id(l.inv_key) AS invoice_id, l.kind, l.product, l.quantity,
            l.unit_amount AS unit_amount_minor, l.amount AS amount_minor,
            ts_utc(l.sp_start) AS service_period_start, ts_utc(l.sp_end) AS service_period_end,
            h.first_upd AS sort_ms, l.inv_key, l.line_no
        FROM lines0 l JOIN hdr h USING (inv_key)
        WHERE NOT (h.fault IS NOT DISTINCT FROM 'lines'
                   AND l.line_no = (SELECT max(x.line_no) FROM lines0 x
                                    WHERE x.inv_key = l.inv_key))
        """)
        # credit notes and refunds (never both on one ordinary invoice)
        self._run(f"""
        CREATE OR REPLACE TABLE docs AS
        WITH h AS (
            SELECT *, ux(60, inv_key, 0, 0) AS uc, ux(61, inv_key, 0, 0) AS uv FROM hdr
            WHERE final_status NOT IN ('draft', 'void')
        )
        SELECT 'credit' AS doc, inv_key, currency,
            issue_ms + {7 * DAY_MS} + floor(uv * 43 * {DAY_MS})::BIGINT AS doc_ms,
            greatest(1, total * (5 + hx(62, inv_key, 0, 0) % 96)::BIGINT // 100) AS amount,
            pick({_sql_list(CREDIT_REASONS)}, hx(63, inv_key, 0, 0)) AS reason
        FROM h WHERE fault IS NULL AND uc < 0.03
        UNION ALL
        SELECT 'refund', inv_key, currency,
            paid_ms + {DAY_MS} + floor(uv * 29 * {DAY_MS})::BIGINT,
            CASE WHEN uv < 0.6 THEN total
                 ELSE greatest(1, total * (10 + hx(64, inv_key, 0, 0) % 81)::BIGINT // 100) END,
            NULL
        FROM h WHERE fault IS NULL AND uc >= 0.03 AND uc < 0.045 AND paid_ms IS NOT NULL
        UNION ALL
        SELECT 'credit', inv_key, currency, paid_ms + {DAY_MS}, total, 'billing_error'
        FROM h WHERE fault = 'overcredit'
        UNION ALL
        SELECT 'refund', inv_key, currency, paid_ms + {DAY_MS} + {12 * HOUR_MS},
            greatest(1, total // 2), NULL
        FROM h WHERE fault = 'overcredit'
        """)
        self._run(f"DELETE FROM docs WHERE doc_ms >= {d_end_ms} OR amount <= 0")
        summary_faults = {
            fault: [
                r[0]
                for r in self._all(f"""SELECT inv_id(inv_key) FROM picks WHERE fault = '{fault}'
                    ORDER BY 1""")
            ]
            for fault in ("header", "lines", "orphan", "overcredit")
        }
        # FX: a seeded random walk in basis points per day (USD = 1)
        self._run(f"""
        CREATE OR REPLACE TABLE fx AS
        SELECT d, cur,
            CASE WHEN cur = 'USD' THEN 10000
                 ELSE base + sum(((hx(70, d, ci, 0) % 61)::BIGINT - 30))
                     OVER (PARTITION BY cur ORDER BY d ROWS UNBOUNDED PRECEDING) END AS bp
        FROM range({sp.d0}, {sp.d_end}) r(d),
            (VALUES ('EUR', 1, 10850), ('GBP', 2, 12700), ('USD', 0, 10000)) c(cur, ci, base)
        """)
        first_month = _day(sp.d0).strftime("%Y-%m")
        exports = [
            # (source folder, file prefix, format, table or query, order)
            (
                "billing/customers",
                "customers",
                "jsonl",
                f"""
                SELECT greatest(month_txt(updated_ms), '{first_month}') AS file_key,
                    billing_customer_id, tenant_id, crm_account_id, currency,
                    ts_z(created_ms) AS created_at, ts_z(updated_ms) AS updated_at
                FROM bc WHERE updated_ms < {d_end_ms}
                    AND (updated_ms >= {d0_ms} OR updated_ms = created_ms)
                """,
                "updated_at, billing_customer_id",
            ),
            (
                "billing/subscriptions",
                "subscriptions",
                "jsonl",
                f"""
                SELECT greatest(month_txt(s.updated_ms), '{first_month}') AS file_key,
                    sub_id(s.tkey) AS subscription_id, bc_id(s.tkey) AS billing_customer_id,
                    p.plan_code, s.status, p.fee AS monthly_fee_minor,
                    p.included AS included_units, p.price AS overage_unit_price_minor,
                    ts_z(s.start_ms) AS started_at, ts_z(s.ended_ms) AS ended_at,
                    ts_z(s.updated_ms) AS updated_at
                FROM subv s JOIN plans p USING (tier)
                """,
                "updated_at, subscription_id",
            ),
            (
                "billing/invoices",
                "invoices",
                "jsonl",
                "SELECT * FROM out_invoices",
                "sort_ms, inv_key",
            ),
            (
                "billing/invoice_line_items",
                "invoice_line_items",
                "csv",
                "SELECT * FROM out_lines",
                "sort_ms, inv_key, line_no",
            ),
            (
                "billing/credit_notes",
                "credit_notes",
                "csv",
                """
                SELECT day_txt(doc_ms) AS file_key,
                    'cn_' || hex8(scr(inv_key, 1664525)) || '01' AS credit_note_id,
                    inv_id(inv_key) AS invoice_id, amount AS amount_minor, currency, reason,
                    ts_utc(doc_ms) AS issued_at, doc_ms AS sort_ms, inv_key
                FROM docs WHERE doc = 'credit'""",
                "sort_ms, inv_key",
            ),
            (
                "billing/refunds",
                "refunds",
                "jsonl",
                """
                SELECT day_txt(doc_ms) AS file_key,
                    're_' || hex8(scr(inv_key, 22695477)) || '01' AS refund_id,
                    inv_id(inv_key) AS invoice_id, amount AS amount_minor, currency,
                    ts_z(doc_ms) AS refunded_at, doc_ms AS sort_ms, inv_key
                FROM docs WHERE doc = 'refund'""",
                "sort_ms, inv_key",
            ),
            (
                "billing/fx_rates",
                "fx_rates",
                "csv",
                f"""
                SELECT month_txt(d * {DAY_MS}) AS file_key, day_txt(d * {DAY_MS}) AS rate_date,
                    cur AS currency,
                    (bp // 10000)::VARCHAR || '.' || lpad((bp % 10000)::VARCHAR, 4, '0')
                        AS usd_per_unit
                FROM fx""",
                "rate_date, currency",
            ),
        ]
        for folder, prefix, fmt, query, order in exports:
            self._export(folder, prefix, fmt, query, order)
        counts = dict(
            self._all("""
            SELECT 'invoices', count(DISTINCT inv_key) FROM out_invoices
            UNION ALL SELECT 'invoice_versions', count(*) FROM out_invoices
            UNION ALL SELECT 'stuck_drafts', count(*) FROM invf WHERE final_status = 'draft'
            UNION ALL SELECT 'void', count(*) FROM invf WHERE final_status = 'void'
            UNION ALL SELECT 'credit_notes', count(*) FROM docs WHERE doc = 'credit'
            UNION ALL SELECT 'refunds', count(*) FROM docs WHERE doc = 'refund'
            UNION ALL SELECT 'subscription_versions', count(*) FROM subv
            UNION ALL SELECT 'canceled_subscriptions', count(*) FROM ten WHERE cancel_ms IS NOT NULL
            UNION ALL SELECT 'plan_changes', count(*) FROM ten WHERE change_ms IS NOT NULL
            """)
        )
        return {
            **counts,
            "revenue_leaks": self._revenue_leaks(),
            "header_mismatch_invoice_ids": summary_faults["header"],
            "line_mismatch_invoice_ids": summary_faults["lines"],
            "orphan_line_invoice_ids": summary_faults["orphan"],
            "over_credited_invoice_ids": summary_faults["overcredit"],
        }

    def _bill_usage(self) -> None:
        """``usage_lines``: each customer's usage of a month, billed in arrears as its plan says.

        A customer (as the lakehouse resolves it: its CRM account, or a billing customer no CRM
        account is linked to) pools the usage of all its tenants; the plan is the subscription
        version in force at the month's last instant (the highest fee among several, then the
        latest start); the units beyond its included units are billed at its price on that
        subscription's invoice of the next month, one line per product (the allowance is used
        up in ``PRODUCTS`` order), service period = the usage month. A month without a plan at
        its end is not billed. A seeded share (``leak_rate``) of the customer-months billed on
        a clean invoice (counted, no deliberate fault) is billed wrong on purpose (``plant``):
        never billed, one line short by some units, or every line at a price one off the plan's.
        """
        products = _sql_list(PRODUCTS)
        self._run("""
        CREATE OR REPLACE TABLE tenant_account AS
        SELECT tkey, CASE WHEN NOT billed THEN 'unknown'
                          WHEN has_crm THEN 'crm:' || crm_account_id
                          ELSE 'billing:' || bc_id(tkey) END AS account
        FROM ten
        """)
        self._run("""
        CREATE OR REPLACE TABLE acct_usage AS
        SELECT a.account, u.month, u.product, sum(u.units)::BIGINT AS units
        FROM usage_month u JOIN tenant_account a USING (tkey)
        GROUP BY ALL
        """)
        # the plan at each usage month's end: the version in effect then (valid_from < end),
        # started, not ended before the end
        self._run("""
        CREATE OR REPLACE TABLE plan_end AS
        WITH am AS (
            SELECT DISTINCT account, month,
                epoch_ms((month + INTERVAL 1 MONTH)::TIMESTAMP) AS t_ms
            FROM acct_usage
        ), v AS (
            SELECT am.account, am.month, am.t_ms, s.tkey, s.tier, s.status, s.start_ms,
                s.ended_ms
            FROM am JOIN tenant_account a USING (account) JOIN subv s USING (tkey)
            WHERE s.updated_ms < am.t_ms
            QUALIFY row_number() OVER (
                PARTITION BY am.account, am.month, s.tkey ORDER BY s.updated_ms DESC) = 1
        )
        SELECT v.account, v.month, v.t_ms, v.tkey AS plan_tkey, p.included, p.price
        FROM v JOIN plans p USING (tier)
        WHERE v.start_ms < v.t_ms AND (v.ended_ms IS NULL OR v.t_ms <= v.ended_ms)
            AND NOT (v.status = 'canceled' AND v.ended_ms IS NULL)
        QUALIFY row_number() OVER (
            PARTITION BY v.account, v.month
            ORDER BY v.tier DESC, v.start_ms DESC, sub_id(v.tkey)) = 1
        """)
        self._run(f"""
        CREATE OR REPLACE TABLE overage AS
        SELECT *, greatest(0, least(units, cum - included))::BIGINT AS qty
        FROM (
            SELECT u.account, u.month, u.product, u.units, p.plan_tkey, p.t_ms, p.included,
                p.price,
                sum(u.units) OVER (PARTITION BY u.account, u.month
                                   ORDER BY list_position({products}, u.product)) AS cum
            FROM acct_usage u JOIN plan_end p USING (account, month)
        )
        """)
        # the customer-months to bill, on the plan's regular invoice of the next month
        self._run("""
        CREATE OR REPLACE TABLE bill AS
        SELECT o.account, o.month, i.inv_key, any_value(o.price) AS price,
            sum(o.qty)::BIGINT AS overage, max(o.qty) AS max_qty,
            any_value(f.final_status) NOT IN ('draft', 'void')
                AND any_value(pk.inv_key) IS NULL AS clean
        FROM overage o
        JOIN months m ON m.m_ms = o.t_ms
        JOIN inv i ON i.inv_key = o.plan_tkey * 256 + 1 + 2 * m.i
        JOIN invf f ON f.inv_key = i.inv_key
        LEFT JOIN picks pk ON pk.inv_key = i.inv_key
        GROUP BY o.account, o.month, i.inv_key
        HAVING sum(o.qty) > 0
        """)
        eligible = self._all("SELECT count(*) FROM bill WHERE clean AND max_qty >= 2")[0][0]
        k = 0 if eligible < 3 else max(1, round(eligible * self.spec.opts.leak_rate))
        self._run(f"""
        CREATE OR REPLACE TABLE plant AS
        SELECT inv_key, account, month,
            CASE WHEN rn <= {k} THEN 'never_billed' WHEN rn <= {2 * k} THEN 'short_line'
                 ELSE 'wrong_price' END AS leak,
            1 + (hx(96, inv_key, 0, 0) % least(max_qty - 1, 100))::BIGINT AS short_units,
            CASE WHEN price = 1 OR hx(97, inv_key, 0, 0) % 2 = 0 THEN 1 ELSE -1 END AS price_delta
        FROM (SELECT *, row_number() OVER (ORDER BY hx(95, inv_key, 0, 0), inv_key) AS rn
              FROM bill WHERE clean AND max_qty >= 2)
        WHERE rn <= {3 * k}
        """)
        self._run(f"""
        CREATE OR REPLACE TABLE usage_lines AS
        WITH l AS (
            SELECT b.inv_key, o.product, o.qty, o.price, o.month, o.t_ms,
                row_number() OVER (PARTITION BY b.inv_key
                                   ORDER BY o.qty DESC, list_position({products}, o.product))
                    AS size_rank
            FROM overage o JOIN bill b USING (account, month)
            WHERE o.qty > 0
        ), q AS (
            SELECT l.*,
                (l.qty - CASE WHEN p.leak = 'short_line' AND l.size_rank = 1
                              THEN p.short_units ELSE 0 END)::BIGINT AS quantity,
                (l.price + CASE WHEN p.leak = 'wrong_price' THEN p.price_delta ELSE 0 END)::BIGINT
                    AS unit_amount
            FROM l LEFT JOIN plant p USING (inv_key)
            WHERE p.leak IS DISTINCT FROM 'never_billed'
        )
        SELECT inv_key, 3 + list_position({products}, product) AS line_no, 'usage' AS kind,
            product, quantity, unit_amount, quantity * unit_amount AS amount,
            epoch_ms(month::TIMESTAMP) AS sp_start, t_ms AS sp_end
        FROM q
        """)

    def _revenue_leaks(self) -> dict[str, Any]:
        """What the lakehouse's usage-billing reconciliation must find, from what was written.

        For every customer-month whose billing run happened in the window (a counted invoice
        issued on or after the first instant of the next month) and that is not billed as its
        plan says: the customer (``crm:<account>``, ``billing:<id>`` or ``unknown``), the status
        the contract gives it, the units and minor units, and why (``causes``): a planted leak
        (``never_billed``, ``short_line``, ``wrong_price``, ``usage_after_cancellation``: a
        tenant calling the API after its subscription ended), or a pathology of the data
        (``void_invoice``, ``draft_invoice``, ``missing_invoice``, ``missing_line``,
        ``no_billing_customer``, ``plan_ended``, ``usage_before_subscription``).
        """
        counted = "h.final_status NOT IN ('draft', 'void') AND h.fault IS DISTINCT FROM 'orphan'"
        latest = self._all(f"SELECT max(issue_ms) FROM hdr h WHERE {counted}")[0][0]
        if latest is None:
            return {"latest_billing_run": None, "judged_months": [], "planted": {}, "rows": []}
        self._run(f"""
        CREATE OR REPLACE TABLE billed_lines AS
        SELECT a.account, make_timestamp(l.sp_start * 1000)::DATE AS month,
            sum(l.quantity)::BIGINT AS units, sum(l.amount)::BIGINT AS minor
        FROM out_lines o JOIN lines0 l USING (inv_key, line_no) JOIN hdr h USING (inv_key)
        JOIN tenant_account a ON a.tkey = h.tkey
        WHERE l.kind = 'usage' AND {counted}
        GROUP BY ALL
        """)
        rows = self.con.execute(f"""
        WITH metered AS (
            SELECT account, month, sum(units)::BIGINT AS units FROM acct_usage GROUP BY ALL
        ), keyed AS (
            SELECT account, month FROM metered UNION SELECT account, month FROM billed_lines
        ), r AS (
            SELECT k.account, k.month, epoch_ms((k.month + INTERVAL 1 MONTH)::TIMESTAMP) AS t_ms,
                coalesce(u.units, 0) AS metered, p.price, p.plan_tkey,
                CASE WHEN p.plan_tkey IS NOT NULL
                     THEN greatest(0, coalesce(u.units, 0) - p.included) END AS exp_units,
                coalesce(b.units, 0) AS billed_units, coalesce(b.minor, 0) AS billed_minor
            FROM keyed k LEFT JOIN metered u USING (account, month)
            LEFT JOIN plan_end p USING (account, month)
            LEFT JOIN billed_lines b USING (account, month)
        ), s AS (
            SELECT *, exp_units * price AS exp_minor, billed_minor - exp_units * price AS gap,
                CASE WHEN plan_tkey IS NULL AND (metered > 0 OR billed_units > 0)
                        THEN 'no_subscription'
                     WHEN plan_tkey IS NULL THEN 'ok'
                     WHEN exp_units > 0 AND billed_units = 0 THEN 'unbilled'
                     WHEN billed_minor < exp_units * price THEN 'underbilled'
                     WHEN billed_minor > exp_units * price THEN 'overbilled'
                     ELSE 'ok' END AS status
            FROM r WHERE t_ms <= {latest}
        ), ended AS (
            SELECT a.account, n.ended_ms, n.zombie
            FROM ten n JOIN tenant_account a USING (tkey) WHERE n.ended_ms IS NOT NULL
        )
        SELECT s.account, strftime(s.month, '%Y-%m-%d') AS month, s.status,
            s.metered, s.exp_units, s.exp_minor, s.billed_units, s.billed_minor, s.gap,
            inv_id(b.inv_key) AS invoice_id,
            list_sort(list_distinct(list_value(
                pl.leak,
                CASE WHEN f.final_status = 'void' THEN 'void_invoice'
                     WHEN f.final_status = 'draft' THEN 'draft_invoice' END,
                CASE pk.fault WHEN 'orphan' THEN 'missing_invoice'
                              WHEN 'lines' THEN 'missing_line' END,
                CASE WHEN s.plan_tkey IS NOT NULL THEN NULL
                     WHEN s.account = 'unknown' THEN 'no_billing_customer'
                     WHEN EXISTS (SELECT 1 FROM ended e WHERE e.account = s.account
                                  AND e.zombie AND e.ended_ms < s.t_ms)
                        THEN 'usage_after_cancellation'
                     WHEN EXISTS (SELECT 1 FROM ended e WHERE e.account = s.account
                                  AND e.ended_ms < s.t_ms) THEN 'plan_ended'
                     ELSE 'usage_before_subscription' END
            ))) AS causes
        FROM s
        LEFT JOIN bill b USING (account, month)
        LEFT JOIN plant pl USING (account, month)
        LEFT JOIN invf f ON f.inv_key = b.inv_key
        LEFT JOIN picks pk ON pk.inv_key = b.inv_key
        WHERE s.status <> 'ok'
        ORDER BY s.month, s.account
        """).fetchall()
        names = (
            "customer", "month", "status", "metered_units", "expected_overage_units",
            "expected_overage_minor", "billed_units", "billed_overage_minor", "amount_gap_minor",
            "invoice_id", "causes",
        )  # fmt: skip
        leaks = [dict(zip(names, row, strict=True)) for row in rows]
        for leak in leaks:
            leak["causes"] = [c for c in leak["causes"] if c is not None]
        planted = ("never_billed", "short_line", "wrong_price", "usage_after_cancellation")
        judged = self._all(f"""SELECT DISTINCT strftime(month, '%Y-%m-%d') FROM acct_usage
            WHERE epoch_ms((month + INTERVAL 1 MONTH)::TIMESTAMP) <= {latest} ORDER BY 1""")
        return {
            "latest_billing_run": dt.datetime.fromtimestamp(latest / 1000, dt.UTC).isoformat(),
            "judged_months": [m for (m,) in judged],
            "planted": {kind: sum(kind in leak["causes"] for leak in leaks) for kind in planted},
            "rows": leaks,
        }

    def _export(self, folder: str, prefix: str, fmt: str, query: str, order: str) -> None:
        """One file per ``file_key`` (a day or a month) of ``query``, columns minus helpers."""
        from tqdm import tqdm

        self._run(f"CREATE OR REPLACE TEMP TABLE export AS {query}")
        helpers = {"file_key", "sort_ms", "inv_key", "line_no"}
        columns = [
            name
            for (name,) in self._all("SELECT column_name FROM (DESCRIBE export)")
            if name not in helpers
        ]
        keys = self._all("SELECT file_key, count(*) FROM export GROUP BY 1 ORDER BY 1")
        options = "FORMAT json" if fmt == "jsonl" else "FORMAT csv, HEADER true"
        for key, n in tqdm(keys, desc=folder, unit="file", disable=not self.progress, leave=False):
            final = self.landing / folder / f"{prefix}_{key}.{fmt}"
            tmp = self.publisher.tmp_for(final)
            cols = ", ".join(f'"{c}"' for c in columns)
            self._run(f"""COPY (SELECT {cols} FROM export WHERE file_key = {literal(key)}
                ORDER BY {order}) TO {literal(str(tmp))} ({options})""")
            self.publisher.publish(tmp, final)
            self.files[folder] += 1
            self.rows[folder] += n

    # ---- CRM
    def write_crm(self) -> dict[str, Any]:
        sp = self.spec
        d0_ms, d_end_ms = sp.d0 * DAY_MS, sp.d_end * DAY_MS
        sc = sp.change_scale
        n_owners = max(8, min(len(FIRST_NAMES) * len(LAST_NAMES), sp.customers // 400))
        owners = []
        for r in range(n_owners):
            j = (r * 37 + 11) % (len(FIRST_NAMES) * len(LAST_NAMES))
            first, last = FIRST_NAMES[j % len(FIRST_NAMES)], LAST_NAMES[j // len(FIRST_NAMES)]
            email = f"{_ascii(first).lower()}.{_ascii(last).lower()}@sales.example.com"
            owners.append((r, f"{first} {last}", email))
        self._run("CREATE OR REPLACE TABLE owners (idx INTEGER, name VARCHAR, email VARCHAR)")
        self.con.executemany("INSERT INTO owners VALUES (?, ?, ?)", owners)
        name = (
            "CASE WHEN hx({s}, c, 1, 0) % 400 = 0 THEN 'The \"' || pick({p}, hx({s}, c, 2, 0))"
            " || '\" Group' ELSE pick({p}, hx({s}, c, 2, 0)) || ' ' || pick({n}, hx({s}, c, 3, 0))"
            " || pick({x}, hx({s}, c, 4, 0)) END"
        )
        lists = {
            "p": _sql_list(ACCOUNT_PREFIXES),
            "n": _sql_list(ACCOUNT_NOUNS),
            "x": _sql_list(ACCOUNT_SUFFIXES),
        }
        self._run(f"""
        CREATE OR REPLACE TABLE acct AS
        WITH a AS (
            SELECT c, crm_account_id, region_idx, segment_idx,
                {name.format(s=80, **lists)} AS name0,
                {name.format(s=81, **lists)} AS name1,
                (hx(82, c, 0, 0) % {n_owners})::INTEGER AS owner0,
                CASE WHEN is_new THEN created_ms - floor(ux(83, c, 0, 0) * 20 * {DAY_MS})::BIGINT
                     ELSE created_ms - floor(ux(83, c, 0, 0) * 60 * {DAY_MS})::BIGINT
                END AS crm_created,
                CASE WHEN has_billing AND link_mode IN ('both', 'crm_only') THEN
                    CASE (hx(84, c, 0, 0) % 100)::INTEGER
                        WHEN 0 THEN upper(bc_id(c * 4)) WHEN 1 THEN ' ' || bc_id(c * 4)
                        WHEN 2 THEN bc_id(c * 4) || ' ' WHEN 3 THEN ' ' || upper(bc_id(c * 4))
                        WHEN 4 THEN upper(bc_id(c * 4)) || '  ' WHEN 5 THEN '  ' || bc_id(c * 4)
                        ELSE bc_id(c * 4) END
                END AS bcid
            FROM cust WHERE has_crm
        ), b AS (
            SELECT *,
                CASE WHEN crm_created < {d0_ms}
                     THEN crm_created + floor(ux(85, c, 0, 0) * ({d0_ms} - crm_created))::BIGINT
                     ELSE crm_created END AS base_upd,
                greatest(crm_created, {d0_ms}) + {HOUR_MS} AS lo_ms
            FROM a
        )
        SELECT *,
            (owner0 + 1 + hx(86, c, 0, 0) % ({n_owners} - 1))::INTEGER % {n_owners} AS owner1,
            CASE segment_idx WHEN 0 THEN 1 WHEN 2 THEN 1
                 ELSE CASE WHEN ux(87, c, 0, 0) < 0.75 THEN 2 ELSE 0 END END AS segment1_idx,
            ((region_idx + 1 + hx(88, c, 0, 0) % 3) % 4)::INTEGER AS region1_idx,
            {self._change("owner", 0.12 * sc, 1)},
            {self._change("segment", 0.04 * sc, 2)},
            {self._change("region", 0.015 * sc, 3)},
            {self._change("name", 0.03 * sc, 4)},
            {self._change("touch", 0.05 * sc, 5)},
            CASE WHEN bcid IS NOT NULL AND ux(89, c, 6, 0) < {0.02 * sc}
                 THEN within(lo_ms, {d_end_ms - HOUR_MS}, ux(89, c, 6, 1)) END AS link_ms,
            {self._change("deleted", 0.01 * sc, 7)}
        FROM b
        """)
        every = sp.opts.crm_snapshot_every_days or (1 if sp.customers <= CRM_DAILY_UP_TO else 7)
        snap_days = list(range(sp.d0, sp.d_end, every))
        if snap_days[-1] != sp.d_end - 1:
            snap_days.append(sp.d_end - 1)
        from tqdm import tqdm

        segments, regions = _sql_list(SEGMENTS), _sql_list(REGIONS)
        for si, day in enumerate(tqdm(snap_days, desc="crm/accounts", disable=not self.progress)):
            t = day * DAY_MS + 23 * HOUR_MS + 30 * 60000

            def eff(col: str, t: int = t) -> str:
                return f"({col}_ms <= {t} AND {col}_ms < coalesce(deleted_ms, 9000000000000000000))"

            final = self.landing / "crm/accounts" / f"accounts_snapshot_{_day(day)}.csv"
            tmp = self.publisher.tmp_for(final)
            query = f"""
            SELECT crm_account_id,
                CASE WHEN {eff("name")} THEN name1 ELSE name0 END AS account_name,
                o.name AS owner_name, o.email AS owner_email,
                list_element({segments},
                    CASE WHEN {eff("segment")} THEN segment1_idx ELSE segment_idx END + 1)
                    AS segment,
                list_element({regions},
                    CASE WHEN {eff("region")} THEN region1_idx ELSE region_idx END + 1) AS region,
                CASE WHEN link_ms IS NULL OR link_ms <= {t} THEN bcid END AS billing_customer_id,
                coalesce(deleted_ms <= {t}, false) AS is_deleted,
                ts_ms_z(greatest(base_upd,
                    CASE WHEN {eff("owner")} THEN owner_ms END,
                    CASE WHEN {eff("segment")} THEN segment_ms END,
                    CASE WHEN {eff("region")} THEN region_ms END,
                    CASE WHEN {eff("name")} THEN name_ms END,
                    CASE WHEN {eff("touch")} THEN touch_ms END,
                    CASE WHEN link_ms <= {t} AND link_ms < coalesce(deleted_ms, 9000000000000000000)
                         THEN link_ms END,
                    CASE WHEN deleted_ms <= {t} THEN deleted_ms END)) AS updated_at,
                ts_ms_z({t}) AS snapshot_at
            FROM acct a
            JOIN owners o ON o.idx = CASE WHEN {eff("owner")} THEN owner1 ELSE owner0 END
            WHERE crm_created <= {t}
                AND (deleted_ms IS NULL OR {t} < deleted_ms + 14 * {DAY_MS})
                AND NOT ({si} > 0 AND (deleted_ms IS NULL OR {t} < deleted_ms)
                         AND ux(90, c, {si}, 0) < 0.002)
            ORDER BY crm_account_id
            """
            n = self._all(f"COPY ({query}) TO {literal(str(tmp))} (FORMAT csv, HEADER true)")[0][0]
            self.publisher.publish(tmp, final)
            self.files["crm/accounts"] += 1
            self.rows["crm/accounts"] += n
        counts = dict(
            self._all(f"""
            SELECT 'accounts', count(*) FROM acct
            UNION ALL SELECT 'owner_changes', count(owner_ms) FROM acct
            UNION ALL SELECT 'segment_changes', count(segment_ms) FROM acct
            UNION ALL SELECT 'region_changes', count(region_ms) FROM acct
            UNION ALL SELECT 'name_changes', count(name_ms) FROM acct
            UNION ALL SELECT 'deleted', count(*) FROM acct
                WHERE deleted_ms <= {snap_days[-1] * DAY_MS + 23 * HOUR_MS + 30 * 60000}
            """)
        )
        return {**counts, "snapshots": len(snap_days), "snapshot_every_days": every}

    def _change(self, name: str, probability: float, salt: int) -> str:
        d_end_ms = self.spec.d_end * DAY_MS
        return (
            f"CASE WHEN ux(89, c, {salt}, 0) < {probability} THEN "
            f"within(lo_ms, {d_end_ms - HOUR_MS}, ux(89, c, {salt}, 1)) END AS {name}_ms"
        )

    def entity_counts(self) -> dict[str, int]:
        return dict(
            self._all("""
            SELECT 'customers', count(*) FROM cust WHERE NOT prospect
            UNION ALL SELECT 'crm_prospects', count(*) FROM cust WHERE prospect
            UNION ALL SELECT 'tenants', count(*) FROM ten WHERE NOT offline
            UNION ALL SELECT 'tenants_without_billing', count(*) FROM ten WHERE NOT billed
            UNION ALL SELECT 'billing_customers', count(*) FROM ten WHERE billed
            UNION ALL SELECT 'billing_customers_without_tenant', count(*) FROM ten WHERE offline
            UNION ALL SELECT 'billing_customers_without_crm', count(*) FROM ten
                WHERE billed AND NOT has_crm
            UNION ALL SELECT 'tenants_using_after_cancel', count(*) FROM ten WHERE zombie
            """)
        )

    def close(self) -> None:
        self.con.close()


class _UsageStats:
    def __init__(self) -> None:
        self.lines = self.valid_rows = self.units = self.dup_same = self.dup_later = 0
        self.late = self.noisy = self.no_quantity = 0
        self.malformed = dict.fromkeys(MALFORMED_KINDS, 0)
        self.by_day: dict[int, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, rows: list[tuple]) -> None:
        for cls, dup, spread, late, noisy, omit, origin, n, units in rows:
            self.lines += n
            if cls != "valid":
                self.malformed[cls] += n
                continue
            self.valid_rows += n
            self.noisy += n if noisy else 0
            self.no_quantity += n if omit else 0
            if dup:
                if spread:
                    self.dup_later += n
                else:
                    self.dup_same += n
                continue
            self.late += n if late else 0
            self.units += units
            self.by_day[origin][0] += n
            self.by_day[origin][1] += units

    def summary(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "valid_rows": self.valid_rows,
            "events": self.valid_rows - self.dup_same - self.dup_later,
            "units": self.units,
            "duplicate_rows": self.dup_same + self.dup_later,
            "duplicate_rows_same_file": self.dup_same,
            "duplicate_rows_later_file": self.dup_later,
            "late_events": self.late,
            "noisy_tenant_ids": self.noisy,
            "without_quantity": self.no_quantity,
            "malformed": dict(self.malformed),
            "malformed_total": sum(self.malformed.values()),
            "by_day": {
                str(_day(d)): {"events": v[0], "units": v[1]}
                for d, v in sorted(self.by_day.items())
            },
        }


def _string_bytes(arr: Any) -> memoryview:
    """The concatenated UTF-8 bytes of a (large_)string Arrow array without nulls."""
    import pyarrow as pa

    if pa.types.is_large_string(arr.type):
        fmt, width = "<q", 8
    else:
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.large_string())
            return _string_bytes(arr)
        fmt, width = "<i", 4
    _, offsets, data = arr.buffers()
    start = struct.unpack_from(fmt, offsets, arr.offset * width)[0]
    end = struct.unpack_from(fmt, offsets, (arr.offset + len(arr)) * width)[0]
    return memoryview(data)[start:end]


# -- public API ---------------------------------------------------------------------------------


def generate_landing(
    landing_dir: Path,
    *,
    customers: int,
    start: dt.date,
    days: int,
    events_per_day: int,
    seed: int = 7,
    progress: bool = True,
    options: GenerateOptions | None = None,
) -> dict:
    """Writes a full landing zone (usage events, billing, CRM) for ``days`` days from ``start``.

    ``events_per_day`` is the mean number of distinct events per UTC day before pathologies (the
    weekday pattern is +10 % Monday-Friday, -22 %/-28 % on weekends). Returns a summary: files and
    rows per source, the usage counts (lines, distinct events, units, duplicates, late events,
    malformed lines by kind, noisy ids, events and units per UTC day, spikes), billing counts and
    the ids of the deliberately faulty invoices, CRM counts, entity counts, timings.
    """
    spec = _Spec(customers, start, days, events_per_day, seed, options or GenerateOptions())
    t0 = time.perf_counter()
    gen = _Generator(landing_dir, spec, progress)
    try:
        gen.build_universe()
        t1 = time.perf_counter()
        usage = gen.write_usage()
        t2 = time.perf_counter()
        billing = gen.write_billing()
        t3 = time.perf_counter()
        crm = gen.write_crm()
        t4 = time.perf_counter()
        entities = gen.entity_counts()
    finally:
        gen.close()
    return {
        "landing_dir": str(landing_dir),
        "params": {
            "customers": customers,
            "start": str(start),
            "days": days,
            "events_per_day": events_per_day,
            "seed": seed,
            "options": asdict(spec.opts),
        },
        "files": dict(gen.files),
        "rows": dict(gen.rows),
        "files_unchanged": gen.publisher.unchanged,
        "usage": usage,
        "billing": billing,
        "crm": crm,
        "entities": entities,
        "seconds": {
            "universe": round(t1 - t0, 2),
            "usage_events": round(t2 - t1, 2),
            "billing": round(t3 - t2, 2),
            "crm": round(t4 - t3, 2),
            "total": round(t4 - t0, 2),
        },
        "usage_lines_per_second": round(usage["lines"] / max(t2 - t1, 1e-9)),
    }


def generate_peak_day(
    landing_dir: Path,
    *,
    customers: int,
    start: dt.date,
    days: int,
    events_per_day: int,
    events: int,
    day: dt.date | None = None,
    seed: int = 7,
    progress: bool = True,
    options: GenerateOptions | None = None,
) -> dict:
    """Adds one day of ``events`` events (default day: ``start + days``) as new usage files.

    The landing zone's arguments (``customers``, ``start``, ``days``, ``events_per_day``,
    ``seed``, ``options``) rebuild the same tenants. Files:
    ``usage_events/events_<day>_peak_partNNNN.jsonl.gz``; their event ids are new. Same-file
    re-deliveries and malformed lines come at the configured rates; no late events. Returns the
    usage summary of the batch (``by_day`` has the day's distinct events and units).
    """
    spec = _Spec(customers, start, days, events_per_day, seed, options or GenerateOptions())
    gen = _Generator(landing_dir, spec, progress)
    try:
        gen.build_universe()
        d = (day - EPOCH).days if day else spec.d_end
        same_file = [(lo, hi) for _, lo, hi in gen._dup_blocks(d, events, stream=PEAK)]
        jobs = gen._file_jobs(
            d, [_Seg(PEAK, d, 0, events, events)], PEAK_MALFORMED, same_file, "_peak"
        )
        gen._init_usage_acc()
        t0 = time.perf_counter()
        summary = gen._write_events(jobs, f"peak {_day(d)}")
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        summary["files"] = gen.files["usage_events"]
    finally:
        gen.close()
    return summary


def generate_late_batch(
    landing_dir: Path,
    *,
    customers: int,
    start: dt.date,
    days: int,
    events_per_day: int,
    events_per_origin_day: int,
    origin_days: list[dt.date] | None = None,
    arrival_day: dt.date | None = None,
    batch: int = 1,
    redeliver_rate: float = 0.01,
    seed: int = 7,
    progress: bool = True,
    options: GenerateOptions | None = None,
) -> dict:
    """Adds a late batch: new events on earlier days, arriving together in new files.

    ``origin_days`` default to the days 2, 10 and 40 days before ``arrival_day`` (default
    ``start + days``), clipped into the window (so up to 3 distinct days); each must be at most
    ``max_late_days`` before the arrival. Per origin day: ``events_per_origin_day`` new events
    (new ids), re-deliveries of ``redeliver_rate`` x that many events already delivered for the
    day (identical lines: they must change nothing), and malformed lines at the configured rate.
    Files: ``usage_events/events_<arrival>_late<batch>_partNNNN.jsonl.gz``; ``batch`` (1..63)
    keeps ids and names of several batches apart. Returns the usage summary of the batch:
    ``by_day`` holds the distinct new events and units per origin day (what the pipeline must add).
    """
    spec = _Spec(customers, start, days, events_per_day, seed, options or GenerateOptions())
    if not 1 <= batch <= 63:
        raise ValueError("batch must be in 1..63")
    gen = _Generator(landing_dir, spec, progress)
    try:
        gen.build_universe()
        a = (arrival_day - EPOCH).days if arrival_day else spec.d_end
        if origin_days:
            origins = sorted({(d - EPOCH).days for d in origin_days})
        else:
            origins = sorted({min(max(a - lag, spec.d0), spec.d_end - 1) for lag in (2, 10, 40)})
        for o in origins:
            if not 1 <= a - o <= spec.opts.max_late_days:
                raise ValueError(f"origin day {_day(o)} is not 1..max_late_days before {_day(a)}")
        stream = LATE_BATCH_BASE + 2 * batch
        segs: list[_Seg] = []
        for o in origins:
            n = events_per_origin_day
            segs.append(_Seg(stream, o, 0, n, n, spread=True))
            if spec.d0 <= o < spec.d_end:
                _, n_on, _ = gen._day_counts(o)
                k = min(n_on, round(n * redeliver_rate))
                if k:
                    lo = _rand(seed, "redeliver", batch, o) % max(1, n_on - k + 1)
                    segs.append(_Seg(ONTIME, o, lo, lo + k, n_on, dup=True, spread=True))
        jobs = gen._file_jobs(a, segs, stream + 1, tag=f"_late{batch}")
        gen._init_usage_acc()
        t0 = time.perf_counter()
        summary = gen._write_events(jobs, f"late batch {batch}")
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        summary["files"] = gen.files["usage_events"]
        summary["arrival_day"] = str(_day(a))
        summary["origin_days"] = [str(_day(o)) for o in origins]
    finally:
        gen.close()
    return summary


# -- CLI ----------------------------------------------------------------------------------------


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``c360 generate``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("C360_LANDING_DIR", "./data/landing")),
        help="landing directory (default: $C360_LANDING_DIR or ./data/landing)",
    )
    parser.add_argument("--customers", type=int, default=2_000, help="customers (CRM accounts)")
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1), help="first UTC day"
    )
    parser.add_argument("--days", type=int, default=90, help="days in the window")
    parser.add_argument(
        "--events-per-day", type=int, default=50_000, help="mean distinct events per UTC day"
    )
    parser.add_argument("--seed", type=int, default=7, help="same seed, same bytes")
    parser.add_argument(
        "--events-per-file",
        type=int,
        default=GenerateOptions.events_per_file,
        help="lines per usage file (a day has as many part files as it needs)",
    )
    parser.add_argument(
        "--crm-snapshot-every-days",
        type=int,
        default=None,
        help="days between CRM snapshots (default: 1, or 7 above 20,000 customers)",
    )
    parser.add_argument(
        "--batch",
        choices=("base", "peak-day", "late-batch"),
        default="base",
        help="base: the whole landing zone; peak-day / late-batch: only add that batch to a "
        "landing zone generated with the same arguments",
    )
    parser.add_argument(
        "--batch-events",
        type=int,
        default=None,
        help="peak-day: events of the day (default 10 x events-per-day); "
        "late-batch: new events per origin day (default events-per-day / 10)",
    )
    parser.add_argument("--batch-id", type=int, default=1, help="late-batch: 1..63")
    parser.add_argument("--summary-json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--no-progress", action="store_true")


def run_from_args(args: argparse.Namespace) -> dict:
    """Runs ``c360 generate`` and prints a short summary."""
    options = GenerateOptions(
        events_per_file=args.events_per_file,
        crm_snapshot_every_days=args.crm_snapshot_every_days,
    )
    common = {
        "customers": args.customers,
        "start": args.start,
        "days": args.days,
        "events_per_day": args.events_per_day,
        "seed": args.seed,
        "progress": not args.no_progress,
        "options": options,
    }
    if args.batch == "peak-day":
        events = args.batch_events or 10 * args.events_per_day
        summary = generate_peak_day(args.out, events=events, **common)
        print(f"peak day: {summary['lines']:,} lines in {summary['files']} file(s)")
    elif args.batch == "late-batch":
        events = args.batch_events or max(1, args.events_per_day // 10)
        summary = generate_late_batch(
            args.out, events_per_origin_day=events, batch=args.batch_id, **common
        )
        print(
            f"late batch {args.batch_id}: {summary['lines']:,} lines for "
            f"{', '.join(summary['origin_days'])}, arriving {summary['arrival_day']}"
        )
    else:
        summary = generate_landing(args.out, **common)
        usage = summary["usage"]
        print(
            f"landing zone in {args.out}: {usage['events']:,} events "
            f"({usage['lines']:,} lines: {usage['duplicate_rows']:,} re-deliveries, "
            f"{usage['late_events']:,} late, {usage['malformed_total']:,} malformed) in "
            f"{summary['files']['usage_events']} files, "
            f"{summary['usage_lines_per_second']:,} lines/s; "
            + ", ".join(f"{k} {v}" for k, v in summary["files"].items() if k != "usage_events")
            + f" files; {summary['seconds']['total']} s"
        )
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
