"""Cloud Run Admin API v1 (the Knative-style surface gcloud's `run jobs` commands use): jobs read as v1 objects.

The jobs are the run v2 jobs (sandbox/gcp/run.py); this module only renders them in v1's shape, as Cloud Run
serves one job under both APIs. `namespaces/<project>/jobs` on the global endpoint lists every region's jobs; on a
regional endpoint (`<region>-run.googleapis.com`) only that region's.
"""

from __future__ import annotations

import json
import re

from ..web import ApiError

V2_V1_CONDITION = {"CONDITION_SUCCEEDED": "True", "CONDITION_FAILED": "False", "CONDITION_RECONCILING": "Unknown",
                   "CONDITION_PENDING": "Unknown"}


def _seconds(duration):
    m = re.fullmatch(r"(\d+)(?:\.\d+)?s", duration or "")
    return m.group(1) if m else None


def _container(c):
    out = {k: c[k] for k in ("name", "image", "command", "args", "workingDir") if c.get(k) is not None}
    env = []
    for var in c.get("env") or []:
        item = {"name": var["name"]}
        ref = (var.get("valueSource") or {}).get("secretKeyRef")
        if ref:
            item["valueFrom"] = {"secretKeyRef": {"name": ref["secret"].rsplit("/", 1)[-1],
                                                  "key": ref.get("version", "latest")}}
        else:
            item["value"] = var.get("value", "")
        env.append(item)
    if env:
        out["env"] = env
    if c.get("resources"):
        out["resources"] = {"limits": dict((c["resources"] or {}).get("limits") or {})}
    return out


def to_v1(app, row):
    """A run v2 job as run v1 renders it."""
    parts = row["name"].split("/")  # projects/<p>/locations/<region>/jobs/<name>
    location, name = parts[3], parts[5]
    tmpl = row.get("template") or {}
    task = tmpl.get("template") or {}
    task_spec = {"containers": [_container(c) for c in task.get("containers") or []],
                 "serviceAccountName": task.get("serviceAccount"), "maxRetries": task.get("maxRetries", 3)}
    timeout = _seconds(task.get("timeout"))
    if timeout:
        task_spec["timeoutSeconds"] = timeout
    exec_annotations = {}
    vpc = task.get("vpcAccess") or {}
    if vpc.get("networkInterfaces"):
        exec_annotations["run.googleapis.com/network-interfaces"] = json.dumps(vpc["networkInterfaces"],
                                                                             separators=(",", ":"))
    if vpc.get("egress"):
        exec_annotations["run.googleapis.com/vpc-access-egress"] = vpc["egress"].lower().replace("_", "-")
    annotations = {"run.googleapis.com/creator": row.get("creator", ""),
                   "run.googleapis.com/lastModifier": row.get("lastModifier", ""),
                   "run.googleapis.com/launch-stage": row.get("launchStage", "GA")}
    labels = dict(row.get("labels") or {})
    labels["cloud.googleapis.com/location"] = location
    cond = row.get("terminalCondition") or {}
    condition = {"type": "Ready", "status": V2_V1_CONDITION.get(cond.get("state"), "Unknown"),
                 "lastTransitionTime": cond.get("lastTransitionTime")}
    if cond.get("message"):
        condition["message"] = cond["message"]
    status = {"observedGeneration": int(row.get("observedGeneration", 1)), "conditions": [condition],
              "executionCount": int(row.get("executionCount", 0) or 0)}
    latest = row.get("latestCreatedExecution")
    if latest:
        ref = {"name": latest["name"].rsplit("/", 1)[-1], "creationTimestamp": latest.get("createTime")}
        if latest.get("completionTime"):
            ref["completionTimestamp"] = latest["completionTime"]
        if latest.get("completionStatus"):
            ref["completionStatus"] = latest["completionStatus"]
        status["latestCreatedExecution"] = ref
    return {
        "apiVersion": "run.googleapis.com/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": app.project_number, "uid": row.get("uid"),
                     "selfLink": "/apis/run.googleapis.com/v1/namespaces/%s/jobs/%s" % (app.project_number, name),
                     "resourceVersion": row.get("etag", "").strip('"'), "generation": int(row.get("generation", 1)),
                     "creationTimestamp": row.get("createTime"), "labels": labels, "annotations": annotations},
        "spec": {"template": {"metadata": {"annotations": exec_annotations} if exec_annotations else {},
                              "spec": {"taskCount": tmpl.get("taskCount", 1), "parallelism": tmpl.get("parallelism", 1),
                                       "template": {"spec": task_spec}}}},
        "status": status,
    }


def register(app):
    def namespace(p):
        ns = p.get("namespacesId") or (p.get("parent") or "").split("/")[-1]
        app.require_project("run", {"project": ns}, None)
        return ns

    def list_(req, p):
        namespace(p)
        region = getattr(req, "endpoint_region", None)
        rows = []
        for key, row in sorted(app.run.jobs.items()):
            if region and key.split("/")[3] != region:
                continue
            rows.append(to_v1(app, row))
        return {"apiVersion": "run.googleapis.com/v1", "kind": "JobsList", "metadata": {}, "items": rows,
                "unreachable": []}

    def get(req, p):
        namespace(p)
        name = (p.get("jobsId") or p.get("name", "").rsplit("/", 1)[-1])
        region = getattr(req, "endpoint_region", None)
        for key, row in sorted(app.run.jobs.items()):
            if key.rsplit("/", 1)[-1] == name and (not region or key.split("/")[3] == region):
                return to_v1(app, row)
        raise ApiError(404, "Resource '%s' of kind 'JOB' in region '%s' in project '%s' does not exist."
                       % (name, region or "-", app.project), reason="notFound", status="NOT_FOUND")

    app.handle("run.namespaces.jobs.list", list_)
    app.handle("run.namespaces.jobs.get", get)
