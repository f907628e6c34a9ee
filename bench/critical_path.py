"""Critical path of a converge, from the sandbox's operation timeline.

The platform can finish no sooner than its longest chain of dependent cloud operations. Each timeline entry is an
operation the sandbox ran ({kind, resource, start, end}); DEPENDS says which kinds must finish before a kind can
start. The critical path is the longest chain through the operations that actually ran.
"""

from __future__ import annotations

import json
import sys

# kind -> kinds it waits for (prefix match: "compute.address" covers global and regional addresses).
DEPENDS = {
    "compute.network": ["serviceusage.enable"],
    "compute.subnetwork": ["compute.network"],
    "compute.firewall": ["compute.network"],
    "compute.address": ["compute.network", "compute.subnetwork"],
    "servicenetworking.connection": ["compute.address"],
    "compute.router": ["compute.address", "compute.subnetwork"],
    "compute.instance": ["compute.router", "compute.address", "secretmanager", "iam.serviceaccount"],
    "container.cluster.create": ["compute.subnetwork"],
    "sqladmin.instance.create": ["servicenetworking.connection"],
    "sqladmin.database": ["sqladmin.instance.create"],
    # Cloud SQL runs one operation at a time per instance (another is refused "operation in progress"), so the user
    # waits for the database.
    "sqladmin.user": ["sqladmin.instance.create", "sqladmin.database"],
    "helm.release": ["container.cluster.create", "sqladmin.user", "sqladmin.database", "helm.release"],
    "tfc.plan": ["compute.instance"],
    "tfc.apply": ["tfc.plan"],
}


def _deps_of(kind):
    for prefix, deps in DEPENDS.items():
        if kind == prefix or kind.startswith(prefix + "."):
            return deps
    return []


def _matches(kind, dep):
    return kind == dep or kind.startswith(dep + ".") or kind.startswith(dep)


def critical_path(timeline):
    """(seconds, [entries]) of the longest chain of dependent operations."""
    ops = sorted((e for e in timeline if e.get("end") and not e.get("error")), key=lambda e: e["end"])
    best = {}
    for i, op in enumerate(ops):
        duration = max(0.0, op["end"] - op["start"])
        best[i] = (duration, [op])
        for j in range(i):
            prev = ops[j]
            if prev["end"] > op["start"] + 1e-6:
                continue
            if any(_matches(prev["kind"], dep) for dep in _deps_of(op["kind"])):
                cand = best[j][0] + duration
                if cand > best[i][0]:
                    best[i] = (cand, best[j][1] + [op])
    if not best:
        return 0.0, []
    return max(best.values(), key=lambda v: v[0])


def serial_waits(timeline, chain):
    """Operations off the critical path that ran while nothing else did: waits we paid in series."""
    on_path = {id(e) for e in chain}
    out = []
    for op in timeline:
        if id(op) in on_path or not op.get("end"):
            continue
        overlapping = [o for o in timeline if o is not op and o.get("end") and o["start"] < op["end"] and o["end"] > op["start"]]
        if not overlapping:
            out.append(op)
    return out


def overhead(chain, started, ended):
    """Where the wall time off the critical path went: before its first operation, between its operations (the
    Ansible tasks that ran after one finished and before the next one started), and after its last one."""
    if not chain:
        return {"before": ended - started, "gaps": [], "after": 0.0}
    gaps = [(a["kind"], b["kind"], max(0.0, b["start"] - a["end"])) for a, b in zip(chain, chain[1:])]
    return {"before": max(0.0, chain[0]["start"] - started), "gaps": gaps, "after": max(0.0, ended - chain[-1]["end"])}


def run_spans(timeline):
    """{run id: (start, end)} of each HCP Terraform run, from its queue, plan and apply operations."""
    spans = {}
    for op in timeline:
        if not op["kind"].startswith("tfc.") or not op.get("end") or not str(op.get("resource", "")).startswith("run-"):
            continue
        start, end = spans.get(op["resource"], (op["start"], op["end"]))
        spans[op["resource"]] = (min(start, op["start"]), max(end, op["end"]))
    return spans


def graph_critical_path(durations, depends_on):
    """(seconds, [names]) of the longest chain of components through depends_on, each weighing its duration.

    No schedule, however parallel, converges the graph faster than this chain.
    """
    best = {}

    def longest(name, seen=()):
        if name in seen:
            raise ValueError("dependency cycle through %s" % name)
        if name not in best:
            before = max((longest(dep, seen + (name,)) for dep in depends_on.get(name, ())), default=(0.0, []),
                         key=lambda v: v[0])
            best[name] = (before[0] + durations[name], before[1] + [name])
        return best[name]

    return max((longest(name) for name in durations), default=(0.0, []), key=lambda v: v[0])


def main(path):
    with open(path) as fh:
        timeline = json.load(fh)
    seconds, chain = critical_path(timeline)
    print("critical path: %.2fs over %d operations" % (seconds, len(chain)))
    for op in chain:
        print("  %-32s %-50s %.2fs" % (op["kind"], op.get("resource", "")[:50], op["end"] - op["start"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
