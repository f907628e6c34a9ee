"""`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`: the server-side printing kubectl get asks for.

Columns are the API server's own printers (pkg/printers/internalversion) for the kinds served here; any other kind
gets NAME and AGE, as the default table convertor answers.
"""

from __future__ import annotations

import datetime


def age(stamp):
    if not stamp:
        return "<unknown>"
    then = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    secs = max(0, int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()))
    if secs < 120:
        return "%ds" % secs
    if secs < 600:
        return "%dm%ds" % (secs // 60, secs % 60) if secs % 60 else "%dm" % (secs // 60)
    if secs < 3 * 3600:
        return "%dm" % (secs // 60)
    if secs < 48 * 3600:
        return "%dh" % (secs // 3600)
    return "%dd" % (secs // 86400)


def _col(name, kind="string", fmt="", priority=0):
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


def _deployment(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return ["%d/%d" % (st.get("readyReplicas", 0), spec.get("replicas", 1)), st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0)]


def _pod(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    return ["%d/%d" % (ready, len(spec.get("containers") or [])), reason, restarts]


def _service(o):
    spec = o.get("spec") or {}
    ingress = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or \
        ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    ports = ",".join("%s/%s" % (p.get("port"), p.get("protocol", "TCP")) for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), external, ports or "<none>"]


def _secret(o):
    return [o.get("type", "Opaque"), len(o.get("data") or {})]


def _ingress(o):
    spec = o.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    ips = ",".join(i.get("ip", "") for i in ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
    return [spec.get("ingressClassName") or "<none>", hosts, ips, "80, 443" if spec.get("tls") else "80"]


def _job(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    done = any(c.get("type") == "Complete" and c.get("status") == "True" for c in st.get("conditions") or [])
    failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in st.get("conditions") or [])
    status = "Complete" if done else "Failed" if failed else "Running"
    return [status, "%d/%d" % (st.get("succeeded", 0), spec.get("completions", 1))]


def _event(o):
    inv = o.get("involvedObject") or {}
    return [age(o.get("lastTimestamp") or o.get("eventTime") or (o.get("metadata") or {}).get("creationTimestamp")),
            o.get("type", ""), o.get("reason", ""), "%s/%s" % ((inv.get("kind") or "").lower(), inv.get("name", "")),
            o.get("message", "")]


# resource -> (columns between NAME and AGE, cells function, has AGE)
PRINTERS = {
    "deployments": ([_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer")], _deployment),
    "pods": ([_col("Ready"), _col("Status"), _col("Restarts", "integer")], _pod),
    "services": ([_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)")], _service),
    "secrets": ([_col("Type"), _col("Data", "integer")], _secret),
    "ingresses": ([_col("Class"), _col("Hosts"), _col("Address"), _col("Ports")], _ingress),
    "jobs": ([_col("Status"), _col("Completions")], _job),
}


def table(resource, body, include="Metadata"):
    items = body.get("items") if isinstance(body.get("items"), list) else [body]
    if resource == "events":
        columns = [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")]
        rows = [_event(o) for o in items]
    else:
        extra, cells = PRINTERS.get(resource, ([], lambda o: []))
        columns = [_col("Name", fmt="name")] + extra + [_col("Age")]
        rows = [[o["metadata"]["name"]] + cells(o) + [age(o["metadata"].get("creationTimestamp"))] for o in items]
    out_rows = []
    for obj, cells in zip(items, rows):
        row = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        out_rows.append(row)
    meta = {"resourceVersion": (body.get("metadata") or {}).get("resourceVersion", "")} if "items" in body else {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns,
            "rows": out_rows}
