"""The origin locked to Cloudflare: the ingress's load balancer applies the Cloud Armor policy its BackendConfig names.

A prefect-server release is stood up without its process (a stub backend takes the release's port), so what is
tested is the sandbox's GCLB: the global IP, the BackendConfig lookup, the policy, and Cloudflare's edge in front.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from googleapiclient.errors import HttpError

from sandbox.cloudflare.app import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

from .gcp_helpers import client, enable, wait_compute

DEFAULT = 2147483647
NS = "lock"
ZONE = "skyforge.example"


@pytest.fixture(scope="module")
def compute(sandbox):
    enable(sandbox, "compute.googleapis.com")
    return client(sandbox, "compute")


@pytest.fixture(scope="module")
def backend():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(dict(self.headers.items()))
            body = b"prefect says hi"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def release(sandbox, compute, backend):
    from sandbox.kube.releases import ServerRelease

    project = sandbox.config.project
    wait_compute(compute, project, compute.globalAddresses().insert(project=project, body={"name": "lock-ip"}).execute())
    ip = compute.globalAddresses().get(project=project, address="lock-ip").execute()["address"]
    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/lock-%d" % int(time.time() * 1000)
    kube.register_cluster(key, "172.16.9.3")
    api = kube.clusters[key]
    api.put_object("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    values = {"service": {"annotations": {"cloud.google.com/backend-config": '{"default": "prefect-server-backend"}'}},
              "ingress": {"enabled": True, "host": {"hostname": "lock." + ZONE},
                          "annotations": {"kubernetes.io/ingress.global-static-ip-name": "lock-ip"}}}
    rel = ServerRelease(kube.releases, api, NS, {"name": "prefect-server", "version": 1, "config": values,
                                                 "chart": {"metadata": {"name": "prefect-server"}, "values": {}}})
    rel.port = backend[0]
    kube.releases.running[(key, NS, "prefect-server")] = rel
    rel.expose_ingress(values["ingress"])
    yield {"ip": ip, "api": api, "rel": rel, "key": (key, NS, "prefect-server")}
    kube.releases.stop((key, NS, "prefect-server"))
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
    assert "no BackendConfig for service port exists" in release["rel"].armor_message
    backend_config(release["api"], None)
    assert direct(sandbox, release["ip"], "203.0.113.9")[0] == 200
    assert release["rel"].armor_message is None


def test_policy_refuses_direct_hits_and_admits_cloudflare(sandbox, compute, release, backend, module_runner, cf_args):
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
    assert "does not exist" in release["rel"].armor_message
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
    del backend[1][:]
    spoof = {"X-Sandbox-Client-IP": "192.0.2.1", "X-Sandbox-Source-IP": "10.9.9.9"}
    with urllib.request.urlopen(urllib.request.Request(url + "/api/health", headers=spoof), timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"prefect says hi"
    seen = backend[1][-1]
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
    sandbox.apps["kube"].releases.stop(release["key"])
    with pytest.raises(LookupError):
        sandbox.resolve(release["ip"], 80)
    wait_compute(compute, project, compute.securityPolicies().delete(project=project,
                                                                     securityPolicy="lock-cf-only").execute())
