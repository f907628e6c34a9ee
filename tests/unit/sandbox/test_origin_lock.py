"""The origin locked to Cloudflare: the ingress's load balancer applies the Cloud Armor policy its BackendConfig names.

The chart's Service and Ingress are stood up with a stub backend pod in place of the server, so what is tested is
the sandbox's GCLB: the global IP, the BackendConfig lookup, the policy, and Cloudflare's edge in front.
"""

import json
import time
import urllib.error
import urllib.request

import pytest
from googleapiclient.errors import HttpError

from sandbox.cloudflare.app import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
from sandbox.images import installed

from .gcp_helpers import client, enable, wait_compute

DEFAULT = 2147483647
NS = "lock"
ZONE = "skyforge.example"


@pytest.fixture(scope="module")
def compute(sandbox):
    enable(sandbox, "compute.googleapis.com")
    return client(sandbox, "compute")


# The backend pod: answers every GET with "prefect says hi" and logs the headers it received, one JSON line each.
BACKEND = r"""
import json, sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        print(json.dumps(dict(self.headers.items())), flush=True)
        body = b"prefect says hi"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer((sys.argv[1], 4200), H).serve_forever()
"""


@pytest.fixture(scope="module")
def release(sandbox, compute):
    """The objects the prefect-server chart renders for the origin (Service with its BackendConfig annotation,
    Ingress with the static-IP annotation), with a stub backend pod in place of the server."""
    project = sandbox.config.project
    wait_compute(compute, project, compute.globalAddresses().insert(project=project, body={"name": "lock-ip"}).execute())
    ip = compute.globalAddresses().get(project=project, address="lock-ip").execute()["address"]
    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/lock-%d" % int(time.time() * 1000)
    kube.register_cluster(key, "172.16.9.3")
    api = kube.clusters[key]
    api.put_object("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    labels = {"app.kubernetes.io/name": "prefect-server", "app.kubernetes.io/instance": "prefect-server"}
    api.put_object("services", NS, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "prefect-server", "namespace": NS,
                     "annotations": {"cloud.google.com/backend-config": '{"default": "prefect-server-backend"}'}},
        "spec": {"type": "ClusterIP", "selector": labels,
                 "ports": [{"name": "server-svc-port", "port": 4200, "targetPort": 4200, "protocol": "TCP"}]}})
    api.put_object("deployments", NS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "prefect-server", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "stub", "image": "prefecthq/prefect:%s" % installed("prefect"),
                "command": ["python", "-c", BACKEND], "args": ["0.0.0.0"]}]}}}})
    api.put_object("ingresses", NS, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "prefect-server", "namespace": NS,
                     "annotations": {"kubernetes.io/ingress.global-static-ip-name": "lock-ip"}},
        "spec": {"rules": [{"host": "lock." + ZONE, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "prefect-server", "port": {"name": "server-svc-port"}}}}]}}]}})
    kube.workloads.wake()
    lb_key = (key, NS, "prefect-server")
    deadline = time.time() + 30
    while time.time() < deadline:
        lb = kube.workloads.ingresses.get(lb_key)
        if lb is not None and lb.ip and any(p.ready() for s in kube.workloads.deployments.values() for p in s["pods"]):
            break
        time.sleep(0.1)
    pod = kube.workloads.deployments[lb_key]["pods"][0]
    while time.time() < deadline and direct(sandbox, ip)[0] != 200:  # the stub has no readinessProbe
        time.sleep(0.1)

    def seen():
        with open(pod.containers[0].log_path) as fh:
            return [json.loads(line) for line in fh if line.startswith("{")]

    yield {"ip": ip, "api": api, "lb": lambda: kube.workloads.ingresses[lb_key], "seen": seen, "key": key}
    kube.unregister_cluster(key)


def direct(sandbox, ip, source=None, port=80):
    """A request straight to the global IP, from `source` (unset: a loopback client, i.e. an outsider)."""
    host, lport = sandbox.resolve(ip, port)
    req = urllib.request.Request("http://%s:%d/api/health" % (host, lport),
                                 headers={"X-Sandbox-Source-IP": source} if source else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def backend_config(api, policy_name):
    api.put_object("backendconfigs", NS, {"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig",
                                          "metadata": {"name": "prefect-server-backend", "namespace": NS},
                                          "spec": {"securityPolicy": {"name": policy_name}} if policy_name else {}})


def test_without_a_policy_every_source_passes_and_a_missing_backendconfig_is_reported(sandbox, release):
    assert direct(sandbox, release["ip"]) == (200, b"prefect says hi")
    assert "no BackendConfig for service port exists" in release["lb"]().armor_message
    backend_config(release["api"], None)
    assert direct(sandbox, release["ip"], "203.0.113.9")[0] == 200
    assert release["lb"]().armor_message is None


def test_policy_refuses_direct_hits_and_admits_cloudflare(sandbox, compute, release, module_runner, cf_args):
    project = sandbox.config.project
    cf = CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6
    rules = [{"priority": 1000 + i, "action": "allow",
              "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": cf[i * 10:(i + 1) * 10]}}}
             for i in range(3)]
    rules.append({"priority": DEFAULT, "action": "deny(403)",
                  "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}})
    wait_compute(compute, project, compute.securityPolicies().insert(
        project=project, body={"name": "lock-cf-only", "rules": rules}).execute())
    backend_config(release["api"], "nope-not-there")
    assert direct(sandbox, release["ip"])[0] == 200, "a policy GCP cannot find is not applied"
    assert "does not exist" in release["lb"]().armor_message
    backend_config(release["api"], "lock-cf-only")

    status, body = direct(sandbox, release["ip"])
    assert status == 403 and b"403 Forbidden" in body, "a direct hit on the IP is refused"
    assert direct(sandbox, release["ip"], "203.0.113.9", port=443)[0] == 403
    assert direct(sandbox, release["ip"], "2001:db8::1")[0] == 403
    assert direct(sandbox, release["ip"], "173.245.48.1") == (200, b"prefect says hi")
    assert direct(sandbox, release["ip"], "2400:cb00::1")[0] == 200

    # Through Cloudflare: the edge connects from its own address, inside Cloudflare's ranges.
    module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="lock", type="A", content=release["ip"],
                                                proxied=True))
    url = json.load(urllib.request.urlopen(sandbox.url("cloudflare") + "/_sandbox/edge"))["lock." + ZONE]
    spoof = {"X-Sandbox-Client-IP": "192.0.2.1", "X-Sandbox-Source-IP": "10.9.9.9"}
    with urllib.request.urlopen(urllib.request.Request(url + "/api/health", headers=spoof), timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"prefect says hi"
    seen = release["seen"]()[-1]
    assert seen["CF-Connecting-IP"] == "192.0.2.1" and "X-Sandbox-Source-IP" not in seen
    assert seen["X-Forwarded-For"].endswith("162.158.1.17"), "the load balancer appends the edge's address"

    # Tightened to one range, the same edge address is now refused: the policy in force is read per request.
    wait_compute(compute, project, compute.securityPolicies().removeRule(
        project=project, securityPolicy="lock-cf-only", priority=1000).execute())
    assert direct(sandbox, release["ip"], "173.245.48.1")[0] == 403
    assert direct(sandbox, release["ip"], "162.158.1.17")[0] == 200

    # A policy that a load balancer uses cannot be deleted; once the release is gone it can.
    with pytest.raises(HttpError) as exc:
        compute.securityPolicies().delete(project=project, securityPolicy="lock-cf-only").execute()
    err = json.loads(exc.value.content)["error"]
    assert exc.value.resp.status == 400 and err["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    assert "backendServices/k8s1-sandbox-lock-prefect-server" in err["message"]
    release["api"].remove_object("ingresses", NS, "prefect-server")
    sandbox.apps["kube"].workloads.wake()
    deadline = time.time() + 10
    while time.time() < deadline and (release["ip"], 80) in sandbox.address_map:
        time.sleep(0.1)
    with pytest.raises(LookupError):
        sandbox.resolve(release["ip"], 80)
    wait_compute(compute, project, compute.securityPolicies().delete(project=project,
                                                                     securityPolicy="lock-cf-only").execute())
