"""core.int_customer_usage_months on a real embedded lakehouse: the customers with usage in each
month, which int_customer_months reads whole (each customer's first month of usage, the global end
month). A lakehouse built before the table existed gets every month of it on its next run, so the
spine never loses a customer whose usage is all in months that run does not rebuild."""

import datetime as dt

from pyiceberg.expressions import EqualTo

from c360_assets.lib.models import COMPLETE
from c360_assets.lib.sqlmodel import files_by_date
from tests.models.given import key
from tests.records import billing_customer, event

USAGE_MONTHS = "core.int_customer_usage_months"
EARLY = key("billing:cus_1")  # tenant t1: usage in January only
LATE = key("billing:cus_2")  # tenant t2: usage in March only
JAN, FEB, MAR = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)


def usage_months(lake) -> list[tuple]:
    rows = lake.rows(USAGE_MONTHS, ("month", "customer_key"))
    return [(r["month"], r["customer_key"], r["active_days"]) for r in rows]


def spine(lake) -> list[tuple]:
    rows = lake.rows("core.int_customer_months", ("month", "customer_key"))
    return [(r["month"], r["customer_key"]) for r in rows]


def run_after_late_event(lake, number: int, occurred_at: str) -> None:
    """Land one more event of t2 (file ``late<number>.jsonl``, id ``late<number>``) and run:
    the run rebuilds its month, March, alone."""
    event_id = f"late{number}"
    lake.drop(
        "usage_events",
        f"{event_id}.jsonl",
        [event(event_id=event_id, tenant_id="t2", occurred_at=occurred_at)],
    )
    report = lake.run()
    assert sorted(report.rebuilt["monthly"]) == ["2026-03-01"], report.rebuilt


def test_a_lakehouse_built_before_the_usage_months_gets_every_month_on_its_next_run(lake):
    lake.drop(
        "billing/customers",
        "customers.jsonl",
        [
            billing_customer(
                billing_customer_id="cus_1", tenant_id="t1", created_at="2026-01-01T00:00:00Z"
            ),
            billing_customer(
                billing_customer_id="cus_2", tenant_id="t2", created_at="2026-01-01T00:00:00Z"
            ),
        ],
    )
    lake.drop(
        "usage_events",
        "u1.jsonl",
        [
            event(event_id="e1", tenant_id="t1", occurred_at="2026-01-10T10:00:00Z"),
            event(event_id="e2", tenant_id="t1", occurred_at="2026-01-10T11:00:00Z"),
            event(event_id="e3", tenant_id="t1", occurred_at="2026-01-12T10:00:00Z"),
            event(event_id="e4", tenant_id="t2", occurred_at="2026-03-05T10:00:00Z"),
        ],
    )
    lake.run()
    # January: t1 on two days (three events); March: t2 on one day; February: nobody
    assert usage_months(lake) == sorted([(JAN, EARLY, 2), (MAR, LATE, 1)])
    # EARLY from its first usage month through the end month (March, the last with usage)
    expected_spine = sorted([(JAN, EARLY), (FEB, EARLY), (MAR, EARLY), (MAR, LATE)])
    assert spine(lake) == expected_spine

    # a lakehouse upgraded from a release without the table: it has every other table
    lake.lakehouse.catalog.drop_table(USAGE_MONTHS)
    # a late event in March: the run rebuilds March, whose spine reads every month of usage
    run_after_late_event(lake, 1, "2026-03-06T10:00:00Z")
    # January is back although the run built March only: EARLY keeps its March row
    assert usage_months(lake) == sorted([(JAN, EARLY, 2), (MAR, LATE, 2)])
    assert spine(lake) == expected_spine
    # marked complete after its last commit: the next builds write their own months only (below)
    assert lake.lakehouse.table_property(USAGE_MONTHS, COMPLETE) == "true"

    # a first build that stopped between its commits: January missing, no mark
    table = lake.lakehouse.load(USAGE_MONTHS)
    table.delete(EqualTo("month", JAN.isoformat()))
    with table.transaction() as tx:
        tx.remove_properties(COMPLETE)
    run_after_late_event(lake, 2, "2026-03-07T10:00:00Z")
    assert usage_months(lake) == sorted([(JAN, EARLY, 2), (MAR, LATE, 3)])
    assert spine(lake) == expected_spine
    assert lake.lakehouse.table_property(USAGE_MONTHS, COMPLETE) == "true"

    # once marked, a build writes its own month only: January's files are left as they are
    def january_files() -> set[str]:
        found = files_by_date(lake.lakehouse.load(USAGE_MONTHS), "month") or {}
        return {f.file_path for f in found.get(JAN, [])}

    before = january_files()
    assert before
    run_after_late_event(lake, 3, "2026-03-08T10:00:00Z")
    assert january_files() == before
    assert usage_months(lake) == sorted([(JAN, EARLY, 2), (MAR, LATE, 4)])
