"""``c360 generate``: determinism, and that every injected pathology is where the summary says."""

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from c360_assets.tools.generate import (
    MALFORMED_KINDS,
    PRODUCTS,
    GenerateOptions,
    add_cli_arguments,
    generate_landing,
    generate_late_batch,
    generate_peak_day,
    run_from_args,
)

START = dt.date(2026, 10, 1)
# 48 days: two invoice runs (Oct 1, Nov 1), lateness up to 45 days, two files per day
PARAMS = {"customers": 100, "start": START, "days": 48, "events_per_day": 3000, "seed": 11}
OPTIONS = GenerateOptions(events_per_file=2000)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FILE_DAY = re.compile(r"events_(\d{4}-\d{2}-\d{2})_")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("landing")
    summary = generate_landing(out, progress=False, options=OPTIONS, **PARAMS)
    return out, summary


def utc_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts).astimezone(dt.UTC).date()


def classify(text: str) -> tuple[str, dict | None]:
    """The contract's reading of one usage line, independent of the generator."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return "bad_json", None
    if not isinstance(record, dict):
        return "bad_json", None
    if any(f not in record for f in ("event_id", "tenant_id", "product", "occurred_at")):
        return "missing_field", record
    quantity = record.get("quantity", 1)
    if not all(isinstance(record[f], str) for f in ("event_id", "tenant_id", "product")):
        return "wrong_type", record
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return "wrong_type", record
    if not isinstance(record["occurred_at"], str) or not RFC3339.match(record["occurred_at"]):
        return "wrong_type", record
    if quantity < 0:
        return "negative_quantity", record
    return "valid", record


def usage_lines(folder: Path, pattern: str = "*.jsonl.gz"):
    """(file name, file day, line number, text) in name order."""
    for path in sorted((folder / "usage_events").glob(pattern)):
        day = dt.date.fromisoformat(FILE_DAY.match(path.name).group(1))
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                assert text.endswith("\n")
                yield path.name, day, number, text.rstrip("\n")


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def read_rows(folder: Path, source: str) -> list[dict]:
    rows = []
    for path in sorted((folder / source).iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                rows += [
                    {k: (v if v != "" else None) for k, v in r.items()}
                    for r in csv.DictReader(handle)
                ]
        else:
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def latest(rows: list[dict], key: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in rows:
        if row[key] not in out or row["updated_at"] > out[row[key]]["updated_at"]:
            out[row[key]] = row
    return out


# -- determinism ---------------------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes_whatever_the_threads(tmp_path):
    small = {"customers": 60, "start": START, "days": 12, "events_per_day": 600, "seed": 3}
    a = generate_landing(
        tmp_path / "a",
        progress=False,
        options=GenerateOptions(events_per_file=1000, threads=1),
        **small,
    )
    b = generate_landing(
        tmp_path / "b",
        progress=False,
        options=GenerateOptions(events_per_file=1000, threads=2),
        **small,
    )
    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert first == second and len(first) > 30
    for key in ("files", "rows", "usage", "billing", "crm", "entities"):
        assert a[key] == b[key]
    other = generate_landing(
        tmp_path / "c",
        progress=False,
        options=GenerateOptions(events_per_file=1000),
        **{**small, "seed": 4},
    )
    assert digests(tmp_path / "c") != first and other["usage"]["events"] != a["usage"]["events"]


def test_a_rerun_changes_nothing_and_never_overwrites_other_content(tmp_path):
    small = {"customers": 20, "start": START, "days": 3, "events_per_day": 200, "seed": 5}
    generate_landing(tmp_path, progress=False, **small)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = generate_landing(tmp_path, progress=False, **small)
    assert again["files_unchanged"] == len(before)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before
    with pytest.raises(FileExistsError):
        generate_landing(tmp_path, progress=False, **{**small, "seed": 6})
    assert not [p for p in tmp_path.rglob("*.tmp")]


# -- usage events --------------------------------------------------------------------------------


def test_every_usage_line_is_valid_or_an_injected_malformed_kind(landing):
    folder, summary = landing
    usage = summary["usage"]
    kinds: Counter = Counter()
    noisy = without_quantity = 0
    offsets: Counter = Counter()
    for _, _, _, text in usage_lines(folder):
        kind, record = classify(text)
        kinds[kind] += 1
        if kind != "valid":
            continue
        assert record["product"] in PRODUCTS
        assert set(record) <= {"event_id", "tenant_id", "product", "quantity", "occurred_at"}
        noisy += record["tenant_id"] != record["tenant_id"].strip().lower()
        without_quantity += "quantity" not in record
        offset = record["occurred_at"][23:]
        offsets["Z" if offset == "Z" else "+00:00" if offset == "+00:00" else "local"] += 1
    assert set(kinds) <= {"valid", *MALFORMED_KINDS}
    assert kinds["valid"] == usage["valid_rows"]
    assert {k: kinds[k] for k in MALFORMED_KINDS} == usage["malformed"]
    assert all(usage["malformed"][k] > 0 for k in MALFORMED_KINDS)
    assert sum(kinds.values()) == usage["lines"] == summary["rows"]["usage_events"]
    assert noisy == usage["noisy_tenant_ids"] > 0
    assert without_quantity == usage["without_quantity"] > 0
    assert min(offsets.values()) > 0.05 * kinds["valid"]  # Z, +00:00 and local offsets all mixed
    lines = usage["lines"]
    assert 0.0005 < usage["malformed_total"] / lines < 0.002  # configured: 0.001


def test_redeliveries_and_late_events_match_the_summary(landing):
    folder, summary = landing
    usage = summary["usage"]
    seen: dict[str, tuple[str, str, dt.date]] = {}  # event_id -> (text, first file, file day)
    dup_same = dup_later = late = 0
    lateness = []
    by_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, day, _, text in usage_lines(folder):
        kind, record = classify(text)
        if kind != "valid":
            continue
        event_id = record["event_id"]
        if event_id in seen:
            first_text, first_file, _ = seen[event_id]
            assert text == first_text  # a re-delivery carries the same payload, byte for byte
            if name == first_file:
                dup_same += 1
            else:
                dup_later += 1
            continue
        seen[event_id] = (text, name, day)
        occurred = utc_day(record["occurred_at"])
        assert occurred <= day
        if day > occurred:
            late += 1
            lateness.append((day - occurred).days)
        stats = by_day[str(occurred)]
        stats[0] += 1
        stats[1] += record.get("quantity", 1)
    assert len(seen) == usage["events"]
    assert dup_same == usage["duplicate_rows_same_file"] > 0
    assert dup_later == usage["duplicate_rows_later_file"] > 0
    assert late == usage["late_events"]
    assert max(lateness) <= 45 and max(lateness) > 20 and Counter(lateness)[1] > 0
    assert {d: {"events": e, "units": u} for d, (e, u) in sorted(by_day.items())} == usage["by_day"]
    assert sum(u for _, u in by_day.values()) == usage["units"]
    events = usage["events"]
    assert 0.002 < usage["duplicate_rows"] / events < 0.006  # configured: 0.004
    # 1 % arrive late; those that would arrive after the window are not written yet
    assert 0.005 < late / events < 0.0125
    spiked = {s["usage_date"] for s in usage["spikes"]}
    assert len(spiked) >= 3 and spiked <= set(usage["by_day"])


def test_tenant_ids_resolve_after_trim_and_lower_case(landing):
    folder, summary = landing
    billed = {
        r["tenant_id"].strip().lower()
        for r in read_rows(folder, "billing/customers")
        if r["tenant_id"]
    }
    used = Counter()
    for _, _, _, text in usage_lines(folder):
        kind, record = classify(text)
        if kind == "valid":
            used[record["tenant_id"].strip().lower()] += 1
    assert all(re.fullmatch(r"ten_[0-9a-f]{8}", t) for t in used)
    unbilled = set(used) - billed
    assert unbilled and len(unbilled) < 0.2 * len(used)  # tenants without a billing customer
    assert summary["entities"]["tenants_without_billing"] >= len(unbilled)


# -- billing -------------------------------------------------------------------------------------


def test_invoices_tie_out_except_the_reported_faults(landing):
    folder, summary = landing
    billing = summary["billing"]
    versions = read_rows(folder, "billing/invoices")
    invoices = latest(versions, "invoice_id")
    lines = read_rows(folder, "billing/invoice_line_items")
    credits = read_rows(folder, "billing/credit_notes")
    refunds = read_rows(folder, "billing/refunds")
    assert len(versions) == billing["invoice_versions"] > len(invoices)  # re-exports
    assert Counter(i["status"] for i in invoices.values()).keys() >= {"open", "paid", "draft"}

    header_bad = sorted(
        i for i, r in invoices.items() if r["subtotal_minor"] + r["tax_minor"] != r["total_minor"]
    )
    assert header_bad == billing["header_mismatch_invoice_ids"] != []

    line_sum: Counter = Counter()
    for line in lines:
        line_sum[line["invoice_id"]] += int(line["amount_minor"])
        assert line["kind"] in ("subscription", "usage", "one_off")
        assert (line["product"] is not None) == (line["kind"] == "usage")
        assert int(line["quantity"]) * int(line["unit_amount_minor"]) == int(line["amount_minor"])
    assert {line["kind"] for line in lines} == {"subscription", "usage", "one_off"}
    orphans = sorted(set(line_sum) - set(invoices))
    assert orphans == billing["orphan_line_invoice_ids"] != []
    lines_bad = sorted(i for i, r in invoices.items() if line_sum[i] != r["subtotal_minor"])
    assert lines_bad == billing["line_mismatch_invoice_ids"] != []

    docs: Counter = Counter()
    for doc in credits + refunds:
        assert doc["invoice_id"] in invoices
        assert doc["currency"] == invoices[doc["invoice_id"]]["currency"]
        docs[doc["invoice_id"]] += int(doc["amount_minor"])
    over = sorted(i for i, amount in docs.items() if amount > invoices[i]["total_minor"])
    assert over == billing["over_credited_invoice_ids"] != []
    # some credit notes are issued in a later month than their invoice
    assert any(c["issued_at"][:7] > invoices[c["invoice_id"]]["issued_at"][:7] for c in credits)
    end = dt.datetime.combine(START + dt.timedelta(days=PARAMS["days"]), dt.time(), dt.UTC)
    stamps = [v["updated_at"] for v in versions] + [c["issued_at"] for c in credits]
    stamps += [r["refunded_at"] for r in refunds]
    assert all(dt.datetime.fromisoformat(s) < end for s in stamps)


def test_usage_is_billed_in_arrears_at_the_plan_price(landing):
    """Usage lines bill the month before their invoice's at the price of the subscription
    version in force at that month's end (except the planted wrong prices, one off)."""
    folder, summary = landing
    invoices = latest(read_rows(folder, "billing/invoices"), "invoice_id")
    versions = defaultdict(list)
    for version in read_rows(folder, "billing/subscriptions"):
        versions[version["billing_customer_id"]].append(version)
    leaks = summary["billing"]["revenue_leaks"]
    wrong_price = {r["invoice_id"] for r in leaks["rows"] if "wrong_price" in r["causes"]}
    lines_seen, products = 0, Counter()
    for line in read_rows(folder, "billing/invoice_line_items"):
        if line["kind"] != "usage" or line["invoice_id"] not in invoices:
            continue
        invoice = invoices[line["invoice_id"]]
        month_end = invoice["issued_at"][:8] + "01"
        assert line["service_period_start"][:7] < month_end[:7]  # arrears: the month before
        assert line["service_period_end"][:10] == month_end
        in_force = max(
            (v for v in versions[invoice["billing_customer_id"]] if v["updated_at"] < month_end),
            key=lambda v: v["updated_at"],
        )
        price = int(in_force["overage_unit_price_minor"])
        if line["invoice_id"] in wrong_price:
            assert abs(int(line["unit_amount_minor"]) - price) == 1
        else:
            assert int(line["unit_amount_minor"]) == price
        products[line["invoice_id"], line["product"]] += 1
        lines_seen += 1
    assert lines_seen > 5 and set(products.values()) == {1}  # one line per product
    # the planted leaks: each kind at least once, in the one judged month (October; November
    # is billed after the window)
    assert leaks["judged_months"] == ["2026-10-01"]
    assert min(leaks["planted"][k] for k in ("never_billed", "short_line", "wrong_price")) >= 1
    assert all(r["causes"] for r in leaks["rows"])


def test_subscriptions_customers_and_fx(landing):
    folder, summary = landing
    subs = read_rows(folder, "billing/subscriptions")
    by_id = defaultdict(list)
    for s in subs:
        by_id[s["subscription_id"]].append(s)
        assert s["status"] in ("active", "canceled", "past_due")
        assert (s["ended_at"] is not None) == (s["status"] == "canceled")
    assert any(len({v["plan_code"] for v in vs}) > 1 for vs in by_id.values())  # plan changes
    assert any(v["status"] == "canceled" for vs in by_id.values() for v in vs)
    customers = read_rows(folder, "billing/customers")
    assert {c["currency"] for c in customers} == {"USD", "EUR", "GBP"}
    assert any(c["tenant_id"] is None for c in customers)
    assert any(c["crm_account_id"] is None for c in customers)
    fx = read_rows(folder, "billing/fx_rates")
    assert len(fx) == 3 * PARAMS["days"]
    assert {r["usd_per_unit"] for r in fx if r["currency"] == "USD"} == {"1.0000"}
    assert all(re.fullmatch(r"\d+\.\d{4}", r["usd_per_unit"]) for r in fx)
    assert summary["entities"]["billing_customers_without_crm"] > 0


# -- CRM -----------------------------------------------------------------------------------------


def test_crm_snapshots(landing):
    folder, summary = landing
    snapshots = sorted((folder / "crm/accounts").glob("accounts_snapshot_*.csv"))
    assert len(snapshots) == summary["crm"]["snapshots"] == PARAMS["days"]
    history: dict[str, list[dict]] = defaultdict(list)
    for path in snapshots:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                history[row["crm_account_id"]].append(row)
    billing_ids = {r["billing_customer_id"] for r in read_rows(folder, "billing/customers")}
    noisy = versions = 0
    tracked = ("segment", "region", "owner_name", "account_name", "billing_customer_id")
    for rows in history.values():
        for row in rows:
            assert row["segment"] in ("SMB", "Mid-Market", "Enterprise")
            assert row["region"] in ("NA", "EMEA", "APAC", "LATAM")
            assert RFC3339.match(row["updated_at"]) and row["updated_at"] <= row["snapshot_at"]
            link = row["billing_customer_id"]
            if link:
                assert link.strip().lower() in billing_ids
                noisy += link != link.strip().lower()
        for before, after in zip(rows, rows[1:], strict=False):
            if before["updated_at"] == after["updated_at"]:
                assert all(before[f] == after[f] for f in tracked)
            else:
                assert after["updated_at"] > before["updated_at"]
                versions += any(before[f] != after[f] for f in ("segment", "region", "owner_name"))
    assert noisy > 0 and versions > 0
    assert summary["crm"]["owner_changes"] > 0


# -- extra batches -------------------------------------------------------------------------------


def test_peak_day_and_late_batch_add_new_files_only(landing, tmp_path):
    folder, base = landing
    before = digests(folder)
    peak = generate_peak_day(folder, events=5000, progress=False, options=OPTIONS, **PARAMS)
    late = generate_late_batch(
        folder, events_per_origin_day=300, progress=False, options=OPTIONS, **PARAMS
    )
    after = digests(folder)
    assert {k: after[k] for k in before} == before  # nothing rewritten
    added = sorted(set(after) - set(before))
    assert len(added) == peak["files"] + late["files"]
    peak_day = str(START + dt.timedelta(days=PARAMS["days"]))
    assert list(peak["by_day"]) == [peak_day] and peak["by_day"][peak_day]["events"] > 4000
    assert peak["duplicate_rows_same_file"] > 0 and peak["late_events"] == 0

    base_lines = {}
    for _, _, _, text in usage_lines(folder, "events_????-??-??_part*.jsonl.gz"):
        kind, record = classify(text)
        if kind == "valid":
            base_lines[record["event_id"]] = text
    new_by_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    redelivered = 0
    for _, day, _, text in usage_lines(folder, "events_*_late1_part*.jsonl.gz"):
        kind, record = classify(text)
        if kind != "valid":
            continue
        if record["event_id"] in base_lines:
            assert base_lines[record["event_id"]] == text
            redelivered += 1
            continue
        occurred = utc_day(record["occurred_at"])
        assert 1 <= (day - occurred).days <= 45
        new_by_day[str(occurred)][0] += 1
        new_by_day[str(occurred)][1] += record.get("quantity", 1)
    assert len(late["origin_days"]) == 3 and sorted(new_by_day) == late["origin_days"]
    assert {d: {"events": e, "units": u} for d, (e, u) in new_by_day.items()} == late["by_day"]
    assert redelivered == late["duplicate_rows"] > 0
    assert late["late_events"] == sum(e for e, _ in new_by_day.values())
    assert base["usage"]["events"] > 0


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(
        [
            "--out", str(tmp_path / "landing"), "--customers", "15", "--start", "2026-10-01",
            "--days", "2", "--events-per-day", "100", "--seed", "9", "--no-progress",
            "--summary-json", str(tmp_path / "summary.json"),
        ]
    )  # fmt: skip
    summary = run_from_args(args)
    assert "landing zone in" in capsys.readouterr().out
    assert json.loads((tmp_path / "summary.json").read_text())["usage"] == summary["usage"]
    assert summary["files"]["usage_events"] == 2
