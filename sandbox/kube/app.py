"""The kube family: the bastion (an HTTP CONNECT proxy) in front of every sandbox Autopilot cluster's API and of
the sandbox's `*.googleapis.com` front end (sandbox/gcp/googleapis.py).

A cluster's endpoint is a private address that is never dialled. When the container stand-in marks a cluster
RUNNING it calls `register_cluster`, which starts that cluster's Kubernetes API on a loopback TLS port and maps the
endpoint to it; kubeconfigs carry this family's URL as `proxy-url`, so kubectl-style clients and the sandbox's
helm reach the cluster the way they reach a private GKE endpoint through a bastion.
"""

from __future__ import annotations

import threading

from ..web import ApiError, App, connect_tunnel
from .cluster import ClusterApi
from . import releases
from .workloads import WorkloadController


class KubeApp(App):
    family = "kube"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.clusters = {}  # container key -> ClusterApi
        self.lock = threading.Lock()
        self.workloads = WorkloadController(sandbox)

    def endpoint_info(self):
        return {"kube_proxy_url": self.sandbox.url("kube")}

    def register_cluster(self, key, endpoint):
        with self.lock:
            api = self.clusters.get(key)
            if api is None:
                api = ClusterApi(self.sandbox, key, endpoint)
                self.workloads.attach(api)
                self.clusters[key] = api
        self.sandbox.map_address(endpoint, 443, "127.0.0.1", api.server.port, "gke:%s" % key)
        return {"ca_certificate": api.ca_b64}

    def unregister_cluster(self, key):
        with self.lock:
            api = self.clusters.pop(key, None)
        if api is not None:
            self.workloads.detach(api)
            self.sandbox.unmap_address(api.endpoint, 443)
            api.stop()

    def stopping(self):
        self.workloads.stop_all()
        for key in list(self.clusters):
            self.unregister_cluster(key)

    def dispatch(self, req):
        raise ApiError(400, "this is the sandbox's bastion: use it as an HTTP proxy (CONNECT host:443), e.g. as "
                            "a kubeconfig proxy-url", reason="badRequest")

    def summary(self):
        with self.lock:
            apis = list(self.clusters.values())
        out = {}
        for rel in releases.describe(apis):
            out["release %s/%s" % (rel["namespace"], rel["name"])] = "%s (%s)" % (
                "ready" if rel["ready"] else "not ready", rel["message"])
        for ing in self.workloads.describe()["ingresses"]:
            if ing["ip"]:
                out["ingress %s/%s" % (ing["namespace"], ing["name"])] = ", ".join(
                    "https://%s" % h for h in ing["hosts"]) + " (IP %s)" % ing["ip"]
        return out

    def inventory(self):
        out = {}
        with self.lock:
            clusters = list(self.clusters.values())
        for api in clusters:
            for kind, names in api.inventory().items():
                out.setdefault(kind, []).extend(names)
        return out

    def admin(self, req, path):
        if path == "kube/releases":
            with self.lock:
                apis = list(self.clusters.values())
            return releases.describe(apis)
        if path == "kube/workloads":
            return self.workloads.describe()
        return None

    # ---- CONNECT ---------------------------------------------------------------------
    def connect(self, handler, host, port):
        return connect_tunnel(handler, self.sandbox, host, port)
