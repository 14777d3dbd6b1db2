"""``c360 maintain``: the maintenance job's run config and the table it prints."""

from c360_assets.defs.automation.maintenance import MAINTENANCE_JOB
from c360_assets.tools.runner import QUIET

STEP = "maintain_tables"


def run_config(keep_days: float, min_file_age_hours: float) -> dict:
    config = {"keep_days": keep_days, "min_file_age_hours": min_file_age_hours}
    return {"ops": {STEP: {"config": config}}, **QUIET}


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f}"


def print_report(output: dict) -> None:
    """One line per table: snapshots, data files, data MB and files on disk, before -> after."""
    print(f"{MAINTENANCE_JOB} ({output['engine']}, {output['seconds']:.1f} s)")
    header = (
        f"  {'table':<40} {'snapshots':>11} {'data files':>11} {'data MB':>15} "
        f"{'disk files':>13} {'compacted':>9} {'orphans':>7}"
    )
    print(header)
    totals = {"disk_files_before": 0, "disk_files_after": 0}
    for table, m in output["tables"].items():
        disk = (
            f"{m['disk_files_before']}->{m['disk_files_after']}"
            if "disk_files_before" in m
            else "-"
        )
        for key in totals:
            totals[key] += m.get(key, 0)
        print(
            f"  {table:<40} {m['snapshots_before']:>5}->{m['snapshots_after']:<5} "
            f"{m['data_files_before']:>5}->{m['data_files_after']:<5} "
            f"{_mb(m['data_bytes_before']):>7}->{_mb(m['data_bytes_after']):<7} {disk:>13} "
            f"{m['partitions_compacted']:>9} {m['orphan_files_removed']:>7}"
        )
    print(f"  files on disk: {totals['disk_files_before']} -> {totals['disk_files_after']}")
