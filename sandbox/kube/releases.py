"""Helm's release records as stored in a cluster, read generically.

Helm keeps each release revision as a `helm.sh/release.v1` Secret. The sandbox no longer runs anything from a
release's chart values: what runs is what the rendered objects say (workloads.py). This module only decodes the
records (for the admin view) and reports, per release, whether the Deployments Helm labelled
as that release's (`app.kubernetes.io/instance`) are ready, as `helm --wait` judges them.
"""

from __future__ import annotations

import base64
import gzip
import json


def decode_release(secret):
    raw = base64.b64decode(secret["data"]["release"])
    return json.loads(gzip.decompress(base64.b64decode(raw)))


def offline_env():
    """Environment that keeps a local process on loopback: outbound HTTP goes to a closed loopback port."""
    dead = "http://127.0.0.1:9"
    return {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "ALL_PROXY": dead,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "DO_NOT_TRACK": "1"}


def deployment_ready(dep):
    status = dep.get("status") or {}
    replicas = (dep.get("spec") or {}).get("replicas", 1)
    return status.get("observedGeneration", 0) >= dep["metadata"].get("generation", 1) and \
        status.get("readyReplicas", 0) >= replicas and status.get("updatedReplicas", 0) >= replicas


def describe(apis):
    """The newest deployed revision of every release in the clusters, with its workloads' readiness."""
    out = []
    for api in apis:
        latest = {}
        for secret in api.find("secrets"):
            if secret.get("type") != "helm.sh/release.v1":
                continue
            rel = decode_release(secret)
            key = (rel["namespace"], rel["name"])
            if key not in latest or rel["version"] > latest[key]["version"]:
                latest[key] = rel
        for (ns, name), rel in sorted(latest.items()):
            if rel["info"]["status"] != "deployed":
                continue
            deps = api.find("deployments", ns, {"app.kubernetes.io/instance": name})
            messages = [c.get("message", "") for d in deps for c in (d.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Available" and c.get("status") != "True"]
            ready = bool(deps) and all(deployment_ready(d) for d in deps)
            out.append({"cluster": api.key, "namespace": ns, "name": name, "chart": rel["chart"]["metadata"]["name"],
                        "revision": rel["version"], "ready": ready,
                        "deployments": [d["metadata"]["name"] for d in deps],
                        "message": "; ".join(messages) or ("ready" if ready else "no workload reported ready")})
    return out
