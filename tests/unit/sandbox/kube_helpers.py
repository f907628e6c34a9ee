"""A sandbox GKE cluster for a test module: registered under a fresh name, reached with a kubeconfig the way the
collection's own gcp_gke_kubeconfig writes one (the cluster's CA, the deployer's token, the sandbox's proxy)."""

import json
import time


def kubeconfig_for(sandbox, info, address):
    token = sandbox.apps["gcp"].auth.mint("deployer@p.iam.gserviceaccount.com")
    return {"apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": "https://%s" % address,
                                                   "certificate-authority-data": info["ca_certificate"],
                                                   "proxy-url": sandbox.url("kube")}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}


def kube_cluster(sandbox, tmp_path_factory, prefix, address):
    """Generator for a module-scoped fixture: yields {kubeconfig (path), api, key, kc}; unregisters afterwards."""
    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/%s-%d" % (prefix, int(time.time() * 1000))
    info = kube.register_cluster(key, address)
    kc = kubeconfig_for(sandbox, info, address)
    path = tmp_path_factory.mktemp("kube-" + prefix) / "kubeconfig.json"
    path.write_text(json.dumps(kc))
    try:
        yield {"kubeconfig": str(path), "api": kube.clusters[key], "key": key, "kc": kc}
    finally:
        kube.unregister_cluster(key)
