"""The workload runner runs what the stored objects say: pods from Deployments and Jobs, Services, the Ingress.

The objects are shaped as the real prefect-server chart renders them with the prefect_server role's values
(../shared/charts/prefect-server/templates/deployment.yaml, service.yaml, ingress.yaml), or are small generic ones.
"""

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from sandbox.images import installed
from tests.unit.conftest import REPO

NS = "wl"
IMAGE = "prefecthq/prefect:%s-python%d.%d" % ((installed("prefect"),) + sys.version_info[:2])


def wait_for(fn, timeout=30, what="condition", until=bool):
    """fn() once until(fn()) holds; returns that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if until(value):
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def statuses(api, name):
    return [c for p in pods_of(api, name) for c in p["status"].get("containerStatuses", [])]


@pytest.fixture(scope="module")
def api(sandbox):
    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/wl-%d" % int(time.time() * 1000)
    kube.register_cluster(key, "172.16.9.7")
    api = kube.clusters[key]
    api.put_object("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    yield api
    kube.unregister_cluster(key)


def secret(api, name, data):
    api.put_object("secrets", NS, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                   "metadata": {"name": name, "namespace": NS},
                                   "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def deployment(api, name, containers, labels=None, replicas=1, volumes=None):
    labels = labels or {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    api.put_object("deployments", NS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels, "generation": 1, "uid": "uid-" + name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": containers, "volumes": volumes or []}}}})
    api.watchers[-1](api, "ADDED", "deployments", {})


def service(api, name, selector, port, target):
    api.put_object("services", NS, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS, "uid": "svc-" + name},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]}})


def pods_of(api, name):
    return [p for p in api.find("pods", NS) if p["metadata"]["name"].startswith(name + "-")]


def events_of(api, pod):
    return [e for e in api.find("events", NS) if e["involvedObject"]["name"] == pod]


def remove(api, resource, name):
    api.remove_object(resource, NS, name)
    api.watchers[-1](api, "DELETED", resource, {})


# A tiny HTTP server, as a container's command: answers GET with its env's GREETING; /ready once READY_AFTER passed.
ECHO = r'''
import os, sys, time, http.server
start = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/ready" and time.time() - start < float(os.environ.get("READY_AFTER", "0")):
            self.send_response(503); self.end_headers(); return
        body = (os.environ.get("GREETING", "") + "|" + os.environ.get("DB_URL", "") + "|" + os.getcwd()).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
print("listening on", sys.argv[1], sys.argv[2], flush=True)
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
'''


def echo_container(**extra):
    c = {"name": "echo", "image": IMAGE, "command": ["python", "-c", ECHO], "args": ["0.0.0.0", "$(PORT)"],
         "workingDir": "/home/app", "volumeMounts": [{"name": "scratch", "mountPath": "/home/app"}],
         "ports": [{"name": "web", "containerPort": 8080}],
         "env": [{"name": "PORT", "value": "8080"},
                 {"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "echo-secret", "key": "greeting"}}},
                 {"name": "DB_HOST", "value": "10.20.0.5"},
                 {"name": "DB_URL", "value": "postgresql+asyncpg://u:p@$(DB_HOST):5432/db"}],
         "readinessProbe": {"httpGet": {"path": "/ready", "port": "web"}, "periodSeconds": 1}}
    c.update(extra)
    return c


def get(sandbox, host, port, path="/"):
    lhost, lport = sandbox.resolve(host, port)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://%s:%d%s" % (lhost, lport, path), timeout=10) as resp:
        return resp.read().decode()


def test_a_deployment_runs_its_pod_template_and_its_service_routes_to_the_ready_pod(sandbox, api):
    secret(api, "echo-secret", {"greeting": "hello from a secret"})
    sandbox.map_address("10.20.0.5", 5432, "127.0.0.1", 5599, "test: a Cloud SQL private IP")
    service(api, "echo", {"app.kubernetes.io/instance": "echo"}, 80, "web")
    deployment(api, "echo", [echo_container(env=echo_container()["env"] + [{"name": "READY_AFTER", "value": "1"}])],
               volumes=[{"name": "scratch", "emptyDir": {}}])
    dep = wait_for(lambda: api.get_object("deployments", NS, "echo"), what="echo ready",
                   until=lambda d: (d.get("status") or {}).get("readyReplicas") == 1)
    conds = {c["type"]: c for c in dep["status"]["conditions"]}
    assert conds["Available"]["status"] == "True" and conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert dep["status"]["availableReplicas"] == 1 and dep["status"]["observedGeneration"] == 1
    [pod] = pods_of(api, "echo")
    assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"].startswith("127.")
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "echo"
    assert {"Scheduled", "Pulled", "Created", "Started"} <= {e["reason"] for e in events_of(api, pod["metadata"]["name"])}
    # The service FQDN and clusterIP reach the pod, which listened on its own IP (0.0.0.0 in its args).
    body = get(sandbox, "echo.%s.svc.cluster.local" % NS, 80)
    greeting, db_url, cwd = body.split("|")
    assert greeting == "hello from a secret"
    # $(DB_HOST) was expanded, then the mapped private address rewritten to the loopback endpoint standing for it.
    assert db_url == "postgresql+asyncpg://u:p@127.0.0.1:5599/db"
    assert cwd.startswith(sandbox.config.state_dir) and cwd.endswith("/volumes/scratch")
    svc = api.get_object("services", NS, "echo")
    assert get(sandbox, svc["spec"]["clusterIP"], 80).startswith("hello")
    log = [c for p in sandbox.apps["kube"].workloads.describe()["pods"] if p["name"] == pod["metadata"]["name"]
           for c in p["containers"]][0]["log"]
    assert "listening on %s 8080" % pod["status"]["podIP"] in open(log).read()
    remove(api, "deployments", "echo")
    wait_for(lambda: not pods_of(api, "echo"), what="pods gone")
    with pytest.raises(OSError):
        get(sandbox, "echo.%s.svc.cluster.local" % NS, 80)


def test_a_killed_container_is_restarted_and_served_again(sandbox, api):
    secret(api, "echo-secret", {"greeting": "again"})
    service(api, "phoenix", {"app.kubernetes.io/instance": "phoenix"}, 80, 8080)
    deployment(api, "phoenix", [echo_container()], volumes=[{"name": "scratch", "emptyDir": {}}])
    wait_for(lambda: (api.get_object("deployments", NS, "phoenix").get("status") or {}).get("readyReplicas"),
             what="phoenix ready")
    [pod] = sandbox.apps["kube"].workloads.deployments[(api.key, NS, "phoenix")]["pods"]
    os.killpg(pod.containers[0].proc.pid, signal.SIGKILL)
    status = wait_for(lambda: statuses(api, "phoenix")[0], what="restart",
                      until=lambda s: s["restartCount"] == 1 and s["ready"])
    assert status["lastState"]["terminated"]["exitCode"] == -9
    assert get(sandbox, "phoenix.%s.svc.cluster.local" % NS, 80).startswith("again")
    remove(api, "deployments", "phoenix")


def test_a_crashing_container_backs_off_with_a_growing_restart_count(api):
    deployment(api, "crash", [{"name": "c", "image": IMAGE, "command": ["python", "-c", "raise SystemExit(3)"]}])
    status = wait_for(lambda: statuses(api, "crash"), what="restarts",
                      until=lambda s: s and s[0]["restartCount"] >= 2)[0]
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["ready"] is False
    # Without a readiness probe the container is Ready for the moment it runs before each crash, as on a real
    # cluster; under load that moment is long enough to be read, so wait for the Deployment's state between crashes.
    dep = wait_for(lambda: api.get_object("deployments", NS, "crash"), what="the crash loop's unavailability",
                   until=lambda d: {c["type"]: c["status"] for c in d["status"]["conditions"]}["Available"] == "False")
    assert "readyReplicas" not in dep["status"]
    assert any(e["reason"] == "BackOff" for e in events_of(api, pods_of(api, "crash")[0]["metadata"]["name"]))
    remove(api, "deployments", "crash")


def server_deployment(auth_secret, db_secret, tag):
    """prefect-server's Deployment as the chart renders it with the prefect_server role's values."""
    labels = {"app.kubernetes.io/name": "prefect-server", "app.kubernetes.io/instance": "prefect-server",
              "app.kubernetes.io/component": "server"}
    probe = {"initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3,
             "successThreshold": 1}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "prefect-server", "namespace": NS, "labels": labels, "uid": "uid-ps"},
        "spec": {"revisionHistoryLimit": 10, "replicas": 1, "selector": {"matchLabels": labels},
                 "strategy": {"type": "Recreate"},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "serviceAccountName": "prefect-server", "automountServiceAccountToken": True,
                     "containers": [{
                         "name": "prefect-server", "image": "prefecthq/prefect:%s" % tag,
                         "imagePullPolicy": "IfNotPresent",
                         "command": ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"],
                         "args": ["prefect", "server", "start", "--port", "4200"],
                         "workingDir": "/home/prefect", "ports": [{"containerPort": 4200}],
                         "env": [{"name": "HOME", "value": "/home/prefect"},
                                 {"name": "PREFECT_DEBUG_MODE", "value": "false"},
                                 {"name": "PREFECT_LOGGING_SERVER_LEVEL", "value": "WARNING"},
                                 {"name": "PREFECT_SERVER_API_BASE_PATH", "value": "/api"},
                                 {"name": "PREFECT_SERVER_API_HOST", "value": "0.0.0.0"},
                                 {"name": "PREFECT_SERVER_API_PORT", "value": "4200"},
                                 {"name": "PREFECT_UI_API_URL", "value": "https://prefect.example/api"},
                                 {"name": "PREFECT_UI_STATIC_DIRECTORY", "value": "/ui_build"},
                                 {"name": "PREFECT_SERVER_DATABASE_CONNECTION_URL", "valueFrom": {"secretKeyRef": {
                                     "name": db_secret, "key": "connection-string"}}},
                                 {"name": "PREFECT_SERVER_API_AUTH_STRING", "valueFrom": {"secretKeyRef": {
                                     "name": auth_secret, "key": "auth-string"}}}],
                         "startupProbe": dict(probe, initialDelaySeconds=0, failureThreshold=30,
                                              httpGet={"path": "/api/health", "port": 4200}),
                         "livenessProbe": dict(probe, httpGet={"path": "/api/health", "port": 4200}),
                         "readinessProbe": dict(probe, httpGet={"path": "/api/ready", "port": 4200}),
                         "volumeMounts": [{"mountPath": "/home/prefect", "name": "scratch", "subPathExpr": "home"},
                                          {"mountPath": "/tmp", "name": "scratch", "subPathExpr": "tmp"},
                                          {"mountPath": "/ui_build", "name": "scratch", "subPathExpr": "ui-build"}]}],
                     "volumes": [{"name": "scratch", "emptyDir": {}}]}}}}


def test_a_secret_key_the_chart_reads_under_another_name_fails_the_pod_with_the_kubelets_error(sandbox, api, tmp_path):
    # The role's Secret must carry `auth-string`, the key the chart's template reads; here it carries `password`.
    secret(api, "prefect-auth", {"password": "admin:pw"})
    secret(api, "prefect-db", {"connection-string": "sqlite+aiosqlite:///%s/p.db" % tmp_path})
    api.put_object("deployments", NS, server_deployment("prefect-auth", "prefect-db", installed("prefect")))
    api.watchers[-1](api, "ADDED", "deployments", {})
    message = "couldn't find key auth-string in Secret %s/prefect-auth" % NS
    # ContainerCreating comes first (the kubelet has not looked at the Secret yet); the config error follows.
    state = wait_for(lambda: statuses(api, "prefect-server"), what="the kubelet's verdict", timeout=90,
                     until=lambda s: s and s[0]["state"].get("waiting", {}).get("reason") not in (
                         None, "ContainerCreating"))[0]["state"]["waiting"]
    assert state == {"reason": "CreateContainerConfigError", "message": message}
    pod = pods_of(api, "prefect-server")[0]["metadata"]["name"]
    assert any(e["reason"] == "Failed" and e["message"] == "Error: " + message and e["type"] == "Warning"
               for e in events_of(api, pod))
    dep = api.get_object("deployments", NS, "prefect-server")
    available = {c["type"]: c for c in dep["status"]["conditions"]}["Available"]
    assert available["status"] == "False" and message in available["message"]
    # With the key the chart reads, the same pod starts the server.
    secret(api, "prefect-auth", {"auth-string": "admin:pw"})
    wait_for(lambda: "running" in pods_of(api, "prefect-server")[0]["status"]["containerStatuses"][0]["state"],
             what="server running")
    remove(api, "deployments", "prefect-server")


def test_an_image_of_another_prefect_version_is_refused_with_the_reason(api):
    if api.get_object("deployments", NS, "prefect-server"):
        remove(api, "deployments", "prefect-server")  # what an earlier failed test left
    api.put_object("deployments", NS, server_deployment("prefect-auth", "prefect-db", "2.19.0-python3.11"))
    api.watchers[-1](api, "ADDED", "deployments", {})
    waiting = wait_for(lambda: statuses(api, "prefect-server"), what="image refused", timeout=90,
                       until=lambda s: s and s[0]["state"].get("waiting", {}).get("reason") in (
                           "ErrImagePull", "ImagePullBackOff"))[0]["state"]["waiting"]
    pod = pods_of(api, "prefect-server")[0]["metadata"]["name"]
    assert any("Prefect %s is installed here, not 2.19.0" % installed("prefect") in e["message"]
               for e in events_of(api, pod) if e["reason"] == "Failed"), waiting
    remove(api, "deployments", "prefect-server")


def job(api, name, command, backoff_limit=6, restart="Never", service_account=None):
    spec = {"restartPolicy": restart, "containers": [{"name": "main", "image": IMAGE, "command": command}]}
    if service_account:
        spec["serviceAccountName"] = service_account
    api.put_object("jobs", NS, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS, "uid": "job-" + name},
        "spec": {"backoffLimit": backoff_limit, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
    api.watchers[-1](api, "ADDED", "jobs", {})


def test_a_job_runs_to_completion(api):
    job(api, "migrate", ["python", "-c", "print('migrated')"])
    status = wait_for(lambda: api.get_object("jobs", NS, "migrate").get("status") or {}, what="job done",
                      until=lambda s: s.get("conditions"))
    assert status["succeeded"] == 1 and "failed" not in status and "active" not in status
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert "completionTime" in status
    [pod] = pods_of(api, "migrate")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    remove(api, "jobs", "migrate")


# A pod's view of Google: an unmodified google-auth + requests, with nothing but the env the pod runner gives it.
WHOAMI = r'''
import google.auth, google.auth.transport.requests as gtr
try:
    creds, project = google.auth.default()
    resp = gtr.AuthorizedSession(creds).get(
        "https://run.googleapis.com/v2/projects/%s/locations/europe-west1/jobs" % project)
    print("RESULT", type(creds).__name__, project, resp.status_code, creds.service_account_email, flush=True)
except Exception as err:
    print("RESULT refused", type(err).__name__, str(err)[:1500].replace("\n", " "), flush=True)
'''


def test_every_pod_reaches_google_apis_as_its_kubernetes_service_account_under_workload_identity(sandbox, api):
    """Generic, as GKE's pod network: proxy + CA for *.googleapis.com and a metadata server for the pod's KSA."""
    project = sandbox.config.project
    email = "wl-pods@%s.iam.gserviceaccount.com" % project
    resource = "projects/%s/serviceAccounts/%s" % (project, email)
    sandbox.store.table("iam.serviceAccounts")[resource] = {"name": resource, "email": email, "projectId": project}
    gcp = sandbox.apps["gcp"]
    gcp.enabled["projects/%s/services/run.googleapis.com" % gcp.project_number] = True
    api.put_object("serviceaccounts", NS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "runner", "namespace": NS, "annotations": {"iam.gke.io/gcp-service-account": email}}})

    def result(name):
        wait_for(lambda: (api.get_object("jobs", NS, name).get("status") or {}).get("conditions"), timeout=90,
                 what="job %s done" % name)
        [pod] = pods_of(api, name)
        with open(os.path.join(sandbox.config.state_dir, "pods", api.key.replace("/", "_"), NS,
                               pod["metadata"]["name"], "main.log")) as fh:
            lines = [line for line in fh.read().splitlines() if line.startswith("RESULT")]
        remove(api, "jobs", name)
        return lines[-1].split()

    # No roles/iam.workloadIdentityUser binding for the KSA yet: GKE's metadata server refuses the token.
    job(api, "wi-unbound", ["python", "-c", WHOAMI], backoff_limit=0, service_account="runner")
    refused = result("wi-unbound")
    assert refused[1] == "refused" and "Status: 403" in " ".join(refused), refused
    assert "workloadIdentityUser" in " ".join(refused), refused

    sandbox.store.table("iam.policies")[resource] = {"bindings": [{
        "role": "roles/iam.workloadIdentityUser",
        "members": ["serviceAccount:%s.svc.id.goog[%s/runner]" % (project, NS)]}]}
    job(api, "wi-bound", ["python", "-c", WHOAMI], backoff_limit=0, service_account="runner")
    assert result("wi-bound")[1:] == ["Credentials", project, "200", email]


def test_a_failing_job_stops_at_its_backoff_limit(api):
    job(api, "doomed", ["python", "-c", "raise SystemExit(1)"], backoff_limit=1)
    status = wait_for(lambda: api.get_object("jobs", NS, "doomed").get("status") or {}, what="job failed",
                      until=lambda s: s.get("conditions"))
    assert status["failed"] == 2 and "succeeded" not in status
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Failed"] == "BackoffLimitExceeded"
    assert len(pods_of(api, "doomed")) == 2
    assert all(p["status"]["phase"] == "Failed" for p in pods_of(api, "doomed"))
    remove(api, "jobs", "doomed")


def test_down_stops_every_recorded_process_after_the_sandbox_was_killed(tmp_path):
    """A stand-in for a SIGKILLed sandbox: it started a pod-like process in its own session, then died."""
    state = tmp_path / "state"
    code = ("import sys, time; sys.path.insert(0, %r); from sandbox import procs; "
            "p = procs.spawn(%r, ['sleep', '300'], 'pod test/sleeper'); print(p.pid, flush=True); time.sleep(300)"
            % (REPO, str(state)))
    fake = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(fake.stdout.readline())
    (state / "sandbox.pid").write_text(str(fake.pid))
    fake.kill()
    fake.wait()
    os.kill(child, 0)  # the pod outlived its sandbox
    env = dict(os.environ, SKYFORGE_SANDBOX_DIR=str(state))
    out = subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "stopped 1 process" in out.stdout
    wait_for(lambda: not os.path.exists("/proc/%d" % child) or
             open("/proc/%d/stat" % child).read().split(") ")[1][0] == "Z", timeout=10, what="sleeper gone")
    assert not os.listdir(state / "pids")


def test_the_pod_network_rewrites_only_what_the_sandbox_maps_and_never_leaves_loopback(sandbox):
    workloads = sandbox.apps["kube"].workloads
    sandbox.map_address("10.30.0.9", 5432, "127.0.0.1", 6000, "test")
    rewritten, used = workloads.rewrite("postgresql+asyncpg://u:p/q%40@10.30.0.9:5432/db?ssl=require", "ns")
    assert rewritten == "postgresql+asyncpg://u:p/q%40@127.0.0.1:6000/db?ssl=require" and used == {"127.0.0.1"}
    assert workloads.rewrite("http://10.30.0.10:8080/x", "ns")[0] == "http://127.0.0.1:9/x"
    assert workloads.rewrite("http://ghost.ns.svc.cluster.local:4200/api", "ns")[0] == "http://127.0.0.1:9/api"
    assert workloads.rewrite("https://prefect.example/api", "ns")[0] == "https://prefect.example/api"
    assert workloads.rewrite("not a url", "ns") == ("not a url", set())


def _resolved(sandbox, host, port, cluster):
    try:
        return sandbox.resolve(host, port, cluster=cluster)
    except LookupError:
        return None


def test_a_service_name_resolves_in_the_cluster_of_the_process_that_asks(sandbox, api):
    # Two clusters of one sandbox may each run prefect-server in namespace prefect; a pod reaches its own, as
    # kube-dns answers it, and a caller outside any cluster must say which it means.
    kube, workloads = sandbox.apps["kube"], sandbox.apps["kube"].workloads
    key2 = api.key + "-twin"
    kube.register_cluster(key2, "172.16.9.8")
    twin = kube.clusters[key2]
    twin.put_object("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fqdn = "twin-svc.%s.svc.cluster.local" % NS
    try:
        for a in (api, twin):
            service(a, "twin-svc", {"app": "twin"}, 4200, 4200)
            a.watchers[-1](a, "ADDED", "services", {})
        here, there = (wait_for(lambda k=k: _resolved(sandbox, fqdn, 4200, k), what="%s in %s" % (fqdn, k))
                       for k in (api.key, key2))
        assert here != there
        assert workloads.rewrite("http://%s:4200/api" % fqdn, NS, api.key)[0] == "http://%s:%d/api" % here
        assert workloads.rewrite("http://twin-svc:4200/api", NS, key2)[0] == "http://%s:%d/api" % there
        with pytest.raises(LookupError, match=r"Service name in 2 clusters .*cluster=<the cluster's key>"):
            sandbox.resolve(fqdn, 4200)
    finally:
        kube.unregister_cluster(key2)
        remove(api, "services", "twin-svc")
    wait_for(lambda: _resolved(sandbox, fqdn, 4200, api.key) is None, what="%s unmapped" % fqdn)
    assert workloads.rewrite("http://%s:4200/api" % fqdn, NS, key2)[0] == "http://127.0.0.1:9/api"
    with pytest.raises(LookupError, match="nothing serves"):
        sandbox.resolve(fqdn, 4200)


def test_a_mounted_path_in_a_urls_query_is_where_the_pod_has_the_file(tmp_path):
    """`rediss://...?ssl_ca_certs=/etc/prefect-redis/ca.pem`: the CA file of a Secret volume, as the role's Redis
    URL names it. Paths that are not mounted stay as they are (the process finds no file there, as in the pod)."""
    import types

    from sandbox.kube.workloads import Pod

    pod = types.SimpleNamespace(mounts={"/etc/prefect-redis": str(tmp_path / "volumes" / "redis-ca")},
                                dir=str(tmp_path))
    pod.host_path = lambda value, only_mounted=False: Pod.host_path(pod, value, only_mounted)
    url = "rediss://:a%2Fb@127.0.0.1:6000/0?ssl_ca_certs=/etc/prefect-redis/ca.pem&ssl_certfile=/etc/other/c.pem"
    assert Pod.host_paths_in_url(pod, url) == (
        "rediss://:a%%2Fb@127.0.0.1:6000/0?ssl_ca_certs=%s/volumes/redis-ca/ca.pem&ssl_certfile=/etc/other/c.pem"
        % tmp_path)
    assert Pod.host_paths_in_url(pod, "/etc/prefect-redis/ca.pem") == "/etc/prefect-redis/ca.pem", "not a URL"
    assert Pod.host_paths_in_url(pod, "http://h:1/etc/prefect-redis/ca.pem") == "http://h:1/etc/prefect-redis/ca.pem"
