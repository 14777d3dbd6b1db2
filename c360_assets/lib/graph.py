"""The asset graph as data: a reviewable snapshot (keys, groups, deps, partitions, checks) and a
mermaid picture for the README. ``c360 graph`` prints either."""

import dagster as dg

from c360_assets.lib.models import SEVERITY_METADATA


def _partitioning(spec_partitions: dg.PartitionsDefinition | None) -> str | None:
    if spec_partitions is None:
        return None
    if isinstance(spec_partitions, dg.DailyPartitionsDefinition):
        return "daily"
    if isinstance(spec_partitions, dg.MonthlyPartitionsDefinition):
        return "monthly"
    return type(spec_partitions).__name__


def _check(spec: dg.AssetCheckSpec) -> dict:
    """Whether a check blocks downstream assets, and the severity of its failures."""
    if SEVERITY_METADATA not in spec.metadata:
        raise ValueError(f"check {spec.key.to_user_string()} declares no severity")
    severity = spec.metadata[SEVERITY_METADATA]
    return {"blocking": spec.blocking, "severity": getattr(severity, "value", severity)}


def graph_snapshot(defs: dg.Definitions) -> dict:
    """asset key -> group, deps, partitioning and checks (blocking, severity); jobs, sensors and
    schedules by name."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": _partitioning(node.partitions_def),
            "checks": {
                k.name: _check(graph.get_check_spec(k))
                for k in sorted(node.check_keys, key=lambda k: k.name)
            },
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
    }


def mermaid(defs: dg.Definitions) -> str:
    """A left-to-right mermaid flowchart, one subgraph per group."""
    snapshot = graph_snapshot(defs)["assets"]
    lines = ["flowchart LR"]
    for group in ("raw", "staging", "core", "marts"):
        members = [k for k, v in snapshot.items() if v["group"] == group]
        if not members:
            continue
        lines.append(f"  subgraph {group}")
        for key in members:
            suffix = {"daily": " ⟨day⟩", "monthly": " ⟨month⟩"}.get(snapshot[key]["partitions"], "")
            lines.append(f'    {key}["{key}{suffix}"]')
        lines.append("  end")
    for key, node in snapshot.items():
        for dep in node["deps"]:
            lines.append(f"  {dep} --> {key}")
    return "\n".join(lines)
