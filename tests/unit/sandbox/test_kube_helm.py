"""The Kubernetes API stand-in through the real kubernetes client and kubectl, and real Helm (the sandbox's helm front) as
kubernetes.core calls it, rendering the published Prefect charts."""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml

from tests.unit.conftest import REPO, specs_path
from tests.unit.sandbox.kube_helpers import kube_cluster

HELM = os.path.join(REPO, "sandbox", "helm", "bin", "helm")
REPO_URL = "--repo=https://prefecthq.github.io/prefect-helm"


@pytest.fixture(scope="module")
def cluster(sandbox, tmp_path_factory):
    yield from kube_cluster(sandbox, tmp_path_factory, "unit", "172.16.9.2")


@pytest.fixture(scope="module")
def core(cluster):
    from kubernetes import client, config

    api_client = config.new_client_from_config(cluster["kubeconfig"])
    return client.CoreV1Api(api_client)


def test_objects_have_real_shapes_and_errors(core):
    from kubernetes.client.exceptions import ApiException

    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shapes"}})
    ns = core.read_namespace("shapes")
    assert ns.status.phase == "Active" and ns.metadata.uid and ns.metadata.resource_version
    made = core.create_namespaced_secret("shapes", {"metadata": {"name": "s1"}, "stringData": {"k": "v"}})
    assert made.data == {"k": "dg=="} and made.type == "Opaque"
    with pytest.raises(ApiException) as dup:
        core.create_namespaced_secret("shapes", {"metadata": {"name": "s1"}, "stringData": {"k": "v"}})
    body = json.loads(dup.value.body)
    assert dup.value.status == 409 and body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("nope", "shapes")
    assert missing.value.status == 404 and json.loads(missing.value.body)["message"] == 'secrets "nope" not found'
    with pytest.raises(ApiException) as bad:
        core.create_namespaced_secret("shapes", {"metadata": {"name": "Bad_Name"}})
    assert bad.value.status == 422
    with pytest.raises(ApiException) as bad64:
        core.create_namespaced_secret("shapes", {"metadata": {"name": "s2"}, "data": {"k": "not base64!"}})
    assert bad64.value.status == 400


def test_noop_patch_keeps_resource_version_and_dry_run_writes_nothing(core):
    core.create_namespace({"metadata": {"name": "patchy"}})
    first = core.create_namespaced_secret("patchy", {"metadata": {"name": "s"}, "stringData": {"a": "1"}})
    same = core.patch_namespaced_secret("s", "patchy", {"stringData": {"a": "1"}})
    assert same.metadata.resource_version == first.metadata.resource_version
    changed = core.patch_namespaced_secret("s", "patchy", {"stringData": {"a": "2"}})
    assert changed.metadata.resource_version != first.metadata.resource_version
    core.create_namespaced_secret("patchy", {"metadata": {"name": "dry"}}, dry_run="All")
    assert [s.metadata.name for s in core.list_namespaced_secret("patchy").items] == ["s"]


def test_unknown_fields_warn_by_default_and_fail_when_strict(cluster, core):
    import requests

    kc = cluster["kc"]["clusters"][0]["cluster"]
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": kc["proxy-url"]}
    import base64
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as fh:
        fh.write(base64.b64decode(kc["certificate-authority-data"]))
    session.verify = fh.name
    session.headers["Authorization"] = "Bearer " + cluster["kc"]["users"][0]["user"]["token"]
    core.create_namespace({"metadata": {"name": "strict"}})
    url = "https://172.16.9.2/api/v1/namespaces/strict/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "dta": {"x": "y"}}
    loose = session.post(url, json=body)
    assert loose.status_code == 201 and "unknown field" in loose.headers["Warning"] and "dta" not in loose.json()
    strict = session.post(url + "?fieldValidation=Strict", json=dict(body, metadata={"name": "c2"}))
    assert strict.status_code == 400 and 'unknown field \\"dta\\"' in json.dumps(strict.json()["message"])
    anonymous = requests.Session()
    anonymous.trust_env = False
    anonymous.proxies, anonymous.verify = session.proxies, session.verify
    assert anonymous.get("https://172.16.9.2/api/v1/namespaces").status_code == 401


def helm(cluster, *args, namespace="charts"):
    env = dict(os.environ, KUBECONFIG=cluster["kubeconfig"], HELM_NAMESPACE=namespace,
               SKYFORGE_SPECS_DIR=os.path.dirname(specs_path("prefect-helm")))
    return subprocess.run([HELM] + list(args), capture_output=True, text=True, env=env, timeout=120, check=False)


def write_values(tmp_path, values):
    path = tmp_path / ("values-%d.yaml" % time.monotonic_ns())
    path.write_text(yaml.safe_dump(values))
    return "-f=%s" % path


def test_helm_validates_values_and_namespace_before_storing_anything(cluster, core, tmp_path):
    bad = helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, {"worker": {"confg": {}}}), "w",
               "prefect-worker")
    assert bad.returncode == 1 and "values don't meet the specifications" in bad.stderr and "confg" in bad.stderr
    # The chart's own templates check what the schema does not (rendering is real Helm's).
    unnamed = helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, {}), "w", "prefect-worker")
    assert unnamed.returncode == 1 and "A Work Pool Name is required (worker.config.workPool)" in unnamed.stderr
    pool = {"worker": {"apiConfig": "selfHostedServer", "config": {"workPool": "p"},
                       "selfHostedServerApiConfig": {"apiUrl": "http://prefect-server.charts.svc.cluster.local:4200/api"}}}
    missing = helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, pool), "w", "prefect-worker")
    assert missing.returncode == 1 and 'namespaces "charts" not found' in missing.stderr, missing.stderr
    wrong = helm(cluster, "upgrade", "-i", REPO_URL, "--version=1.0.0", write_values(tmp_path, {}), "w",
                 "prefect-worker")
    assert wrong.returncode == 1 and "version \"1.0.0\" not found" in wrong.stderr
    listed = helm(cluster, "list", "--output=yaml", "--filter", "w", "--all", namespace="default")
    assert listed.returncode == 0 and yaml.safe_load(listed.stdout) == []


def test_helm_release_lifecycle_and_an_unrunnable_worker_fails_wait_with_the_pods_reason(cluster, core, tmp_path):
    # A Prefect Cloud worker reads its API key from the Secret the chart names: without it the pod cannot start.
    values = {"worker": {"apiConfig": "cloud", "config": {"workPool": "p"},
                         "cloudApiConfig": {"accountId": "0b8f5c1e-1b2c-4d5e-8f9a-0a1b2c3d4e5f",
                                            "workspaceId": "1c9a6d2f-2c3d-4e6f-9a0b-1b2c3d4e5f6a"}}}
    res = helm(cluster, "upgrade", "-i", "--create-namespace", "--wait", "--timeout", "3s", REPO_URL,
               write_values(tmp_path, values), "w", "prefect-worker")
    # Helm's own wait (kstatus watching the Deployment) times out; the pod's reason is in the Deployment's status.
    assert res.returncode == 1 and "INSTALLATION FAILED" in res.stderr and "Deployment/charts/" in res.stderr, \
        res.stderr
    listed = yaml.safe_load(helm(cluster, "list", "--output=yaml", "--filter", "w", "--all").stdout)
    assert listed[0]["status"] == "failed" and listed[0]["chart"].startswith("prefect-worker-")
    deps = cluster["api"].find("deployments", "charts")
    available = [c for c in deps[0]["status"]["conditions"] if c["type"] == "Available"][0]
    assert available["status"] == "False" and 'secret "prefect-api-key" not found' in available["message"]
    assert not deps[0]["status"].get("availableReplicas")
    fixed = {"worker": {"apiConfig": "selfHostedServer", "config": {"workPool": "p", "type": "kubernetes"},
                        "selfHostedServerApiConfig": {"apiUrl": "http://prefect-server.charts.svc.cluster.local:4200/api"}}}
    res = helm(cluster, "upgrade", "-i", "--reset-values", REPO_URL, write_values(tmp_path, fixed), "w", "prefect-worker")
    assert res.returncode == 0 and "REVISION: 2" in res.stdout, res.stderr
    got = yaml.safe_load(helm(cluster, "get", "values", "--output=yaml", "w").stdout)
    assert got == fixed
    secrets = [s.metadata.name for s in core.list_namespaced_secret("charts", label_selector="owner=helm").items]
    assert secrets == ["sh.helm.release.v1.w.v1", "sh.helm.release.v1.w.v2"]
    history = yaml.safe_load(helm(cluster, "history", "w", "--output=yaml").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]
    # The chart's default worker image is the -kubernetes flavour, whose integration the sandbox does not have.
    deadline = time.time() + 10
    while time.time() < deadline:
        deps = cluster["api"].find("deployments", "charts")
        if deps and "prefect-kubernetes" in json.dumps(deps[0].get("status")):
            break
        time.sleep(0.2)
    available = {c["type"]: c for c in deps[0]["status"]["conditions"]}["Available"]
    assert available["status"] == "False" and "needs prefect-kubernetes" in available["message"]
    # What the chart rendered, not a stand-in's guess: the worker's Role/RoleBinding and its ServiceAccount.
    kinds = {(r, o["metadata"]["name"]) for r in ("serviceaccounts", "roles", "rolebindings", "deployments")
             for o in cluster["api"].find(r, "charts", {"app.kubernetes.io/instance": "w"})}
    assert {r for r, _n in kinds} == {"serviceaccounts", "roles", "rolebindings", "deployments"}, kinds
    gone = helm(cluster, "uninstall", "w")
    assert gone.returncode == 0 and 'release "w" uninstalled' in gone.stdout
    assert cluster["api"].find("deployments", "charts") == [], "the release's objects go with it"
    assert core.list_namespaced_secret("charts", label_selector="owner=helm").items == []
    assert cluster["api"].find("deployments", "charts", {"app.kubernetes.io/instance": "w"}) == []
    assert helm(cluster, "uninstall", "w").returncode == 1


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open("/proc/%d/stat" % pid) as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_helm_upgrade_wait_ends_with_the_run_that_started_it(cluster, tmp_path):
    """ansible-playbook -> worker -> shell -> helm module -> helm: SIGKILL the top and `--wait` must not go on."""
    import signal
    import sys

    values = {"worker": {"apiConfig": "cloud", "config": {"workPool": "p"},
                         "cloudApiConfig": {"accountId": "0b8f5c1e-1b2c-4d5e-8f9a-0a1b2c3d4e5f",
                                            "workspaceId": "1c9a6d2f-2c3d-4e6f-9a0b-1b2c3d4e5f6a"}}}
    pidfile = tmp_path / "helm.pid"
    # The module stand-in starts helm as kubernetes.core.helm does and waits on it (the pod never becomes ready).
    module = ("import subprocess, sys; p = subprocess.Popen(sys.argv[2:]); open(sys.argv[1], 'w').write(str(p.pid)); "
              "p.wait()")
    argv = [sys.executable, "-c", module, str(pidfile), HELM, "upgrade", "-i", "--create-namespace", "--wait",
            "--timeout", "300s", REPO_URL, write_values(tmp_path, values), "orphan", "prefect-worker"]
    env = dict(os.environ, KUBECONFIG=cluster["kubeconfig"], HELM_NAMESPACE="orphans",
               SKYFORGE_SPECS_DIR=os.path.dirname(specs_path("prefect-helm")))
    quoted = " ".join("'%s'" % a.replace("'", "'\\''") for a in argv)
    # ansible-playbook stand-in -> its worker -> /bin/sh -c '<module> && sleep 0', as the local connection runs it.
    top = subprocess.Popen([sys.executable, "-c", "import multiprocessing as m, subprocess, sys\n"
                            "def work(cmd): subprocess.call(['/bin/sh', '-c', cmd + ' && sleep 0'])\n"
                            "if __name__ == '__main__':\n"
                            "    w = m.get_context('fork').Process(target=work, args=(sys.argv[1],)); w.start(); w.join()",
                            quoted], env=env)
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), "helm never started"
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    while not cluster["api"].find("deployments", "orphans") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster["api"].find("deployments", "orphans"), "helm never reached its wait"
    assert _alive(pid), "helm ended before the run was killed"
    os.kill(top.pid, signal.SIGKILL)
    top.wait()
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "helm --wait outlived the killed run"
    # What it left is a release a re-run can take over (the interruption tests re-run the site over such a one).
    listed = yaml.safe_load(helm(cluster, "list", "--output=yaml", "--all", namespace="orphans").stdout)
    assert [r["name"] for r in listed] == ["orphan"]
    assert helm(cluster, "uninstall", "orphan", namespace="orphans").returncode == 0


def server_values(**extra):
    """The shape the prefect_server role builds (roles/prefect_server/templates/values.yaml.j2)."""
    values = {"server": {"basicAuth": {"enabled": True, "existingSecret": "prefect-auth"},
                         "uiConfig": {"prefectUiApiUrl": "https://prefect.example.com/api"}},
              "postgresql": {"enabled": False},
              "externalDatabase": {"existingSecret": "prefect-db", "connectionStringSecretKey": "connection-string"},
              "service": {"type": "ClusterIP", "annotations": {
                  "cloud.google.com/backend-config": '{"default": "prefect-server-backend"}'}},
              "ingress": {"enabled": True, "host": {"hostname": "prefect.example.com", "path": "/",
                                                    "pathType": "Prefix"},
                          "annotations": {"kubernetes.io/ingress.class": "gce",
                                          "kubernetes.io/ingress.global-static-ip-name": "prefect-ingress"},
                          "tls": True, "selfSigned": False}}
    for key, value in extra.items():
        values[key] = dict(values.get(key) or {}, **value)
    return values


def test_real_helm_renders_the_server_chart_and_keeps_history(cluster, core, tmp_path):
    core.create_namespace({"metadata": {"name": "rendered"}})
    # A tag YAML would read as the number 3.1 reaches the chart as the string it is.
    values = server_values(global_={})
    values.pop("global_")
    values["global"] = {"prefect": {"image": {"prefectTag": "3.10"}}}
    first = helm(cluster, "upgrade", "-i", REPO_URL, "--version=2026.8.18172642", write_values(tmp_path, values),
                 "prefect-server", "prefect-server", namespace="rendered")
    assert first.returncode == 0, first.stderr
    api = cluster["api"]
    dep = api.find("deployments", "rendered", {"app.kubernetes.io/instance": "prefect-server"})[0]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "prefecthq/prefect:3.10"
    env = {e["name"]: e for e in container["env"]}
    assert env["PREFECT_UI_API_URL"]["value"] == "https://prefect.example.com/api"
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]["valueFrom"]["secretKeyRef"] == \
        {"name": "prefect-db", "key": "connection-string"}
    ingress = api.find("ingresses", "rendered")[0]
    assert ingress["metadata"]["annotations"]["kubernetes.io/ingress.global-static-ip-name"] == "prefect-ingress"
    svc = api.find("services", "rendered")[0]
    assert svc["spec"]["clusterIP"].startswith("34.118.") and \
        svc["metadata"]["annotations"]["cloud.google.com/backend-config"] == '{"default": "prefect-server-backend"}'
    # An upgrade that changes a value patches the rendered Deployment (a strategic merge patch on its env list).
    values["server"]["uiConfig"]["prefectUiApiUrl"] = "https://other.example.com/api"
    second = helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, values), "prefect-server",
                  "prefect-server", namespace="rendered")
    assert second.returncode == 0 and "REVISION: 2" in second.stdout, second.stderr
    dep2 = api.find("deployments", "rendered", {"app.kubernetes.io/instance": "prefect-server"})[0]
    env2 = {e["name"]: e for e in dep2["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env2["PREFECT_UI_API_URL"]["value"] == "https://other.example.com/api"
    assert [e["name"] for e in dep2["spec"]["template"]["spec"]["containers"][0]["env"]] == list(env)
    assert dep2["metadata"]["generation"] == dep["metadata"]["generation"] + 1
    history = yaml.safe_load(helm(cluster, "history", "prefect-server", "--output=yaml", namespace="rendered").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]
    # A value the chart's schema refuses fails before anything is written, with Helm's message and the key path.
    before = {k for k in api.objects if k[1] == "rendered"}
    bad = helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, {"server": {"replicaCount": "two"}}),
               "other", "prefect-server", namespace="rendered")
    assert bad.returncode == 1 and "values don't meet the specifications" in bad.stderr
    assert "/server/replicaCount" in bad.stderr and "want integer" in bad.stderr
    assert {k for k in api.objects if k[1] == "rendered"} == before
    assert helm(cluster, "uninstall", "prefect-server", namespace="rendered").returncode == 0
    assert api.find("deployments", "rendered") == [] and api.find("ingresses", "rendered") == []


def test_helm_refuses_a_kubeconfig_that_is_not_a_sandbox_cluster(cluster, tmp_path):
    kc = json.loads(json.dumps(cluster["kc"]))
    del kc["clusters"][0]["cluster"]["proxy-url"]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(kc))
    env = dict(os.environ, KUBECONFIG=str(path), HELM_NAMESPACE="x")
    res = subprocess.run([HELM, "list", "--output=yaml"], capture_output=True, text=True, env=env, timeout=60,
                         check=False)
    assert res.returncode == 1 and "Kubernetes cluster unreachable" in res.stderr and "not a sandbox cluster" in res.stderr


def test_backendconfig_is_served_as_gke_serves_the_crd(cluster):
    """kubernetes.core.k8s finds kinds through discovery (the dynamic client), so that is the path tested."""
    from kubernetes import config, dynamic
    from kubernetes.client.exceptions import ApiException

    dyn = dynamic.DynamicClient(config.new_client_from_config(cluster["kubeconfig"]))
    dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": "armor"}})
    bcs = dyn.resources.get(api_version="cloud.google.com/v1", kind="BackendConfig")
    assert bcs.namespaced is True and bcs.name == "backendconfigs"
    made = bcs.create(namespace="armor", body={"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig",
                                               "metadata": {"name": "prefect-server-backend"},
                                               "spec": {"securityPolicy": {"name": "origin-cloudflare-only"},
                                                        "timeoutSec": 60}})
    assert made.spec.securityPolicy.name == "origin-cloudflare-only" and made.metadata.uid
    got = bcs.get(namespace="armor", name="prefect-server-backend")
    assert got.to_dict()["spec"] == {"securityPolicy": {"name": "origin-cloudflare-only"}, "timeoutSec": 60}
    with pytest.raises(ApiException) as bad:
        bcs.create(namespace="armor", body={"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig",
                                            "metadata": {"name": "bad"}, "spec": {"securityPolicy": {"name": 7}}})
    body = json.loads(bad.value.body)
    assert bad.value.status == 422 and body["reason"] == "Invalid"
    assert "spec.securityPolicy.name in body must be of type string" in body["message"]
    with pytest.raises(ApiException) as strict:
        bcs.create(namespace="armor", query_params=[("fieldValidation", "Strict")],
                   body={"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": "typo"},
                         "spec": {"securityPolicy": {"nmae": "x"}}})
    assert strict.value.status == 400 and "spec.securityPolicy.nmae" in json.loads(strict.value.body)["message"]
    patched = bcs.patch(namespace="armor", name="prefect-server-backend", content_type="application/merge-patch+json",
                        body={"spec": {"securityPolicy": {"name": "other"}}})
    assert patched.spec.securityPolicy.name == "other"
    bcs.delete(namespace="armor", name="prefect-server-backend")
    assert [i.metadata.name for i in bcs.get(namespace="armor").items] == []


def test_a_basic_auth_secret_without_the_key_the_chart_reads_fails_the_release_with_the_pods_error(cluster, core,
                                                                                                   tmp_path):
    from kubernetes import client

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="authns")))
    core.create_namespaced_secret("authns", client.V1Secret(metadata=client.V1ObjectMeta(name="basic"),
                                                            string_data={"password": "admin:pw"}))
    values = {"server": {"basicAuth": {"enabled": True, "existingSecret": "basic"}},
              "externalDatabase": {"connectionString": "sqlite+aiosqlite:///%s/p.db" % tmp_path},
              "postgresql": {"enabled": False}, "ingress": {"enabled": False}}
    res = helm(cluster, "upgrade", "-i", "--wait", "--timeout", "4s", REPO_URL, write_values(tmp_path, values),
               "prefect-server", "prefect-server", namespace="authns")
    # Helm's wait names the Deployment; why it is not ready is the kubelet's, in the pod and the Deployment.
    assert res.returncode == 1 and "Deployment/authns/prefect-server not ready" in res.stderr, res.stderr
    pods = core.list_namespaced_pod("authns").items
    waiting = [p.status.container_statuses[0].state.waiting for p in pods]
    assert [w.reason for w in waiting] == ["CreateContainerConfigError"]
    assert "couldn't find key auth-string in Secret authns/basic" in waiting[0].message
    dep = cluster["api"].find("deployments", "authns")[0]
    available = {c["type"]: c for c in dep["status"]["conditions"]}["Available"]
    assert "couldn't find key auth-string in Secret authns/basic" in available["message"]
    assert helm(cluster, "uninstall", "prefect-server", namespace="authns").returncode == 0


def kubectl(cluster, *args, stdin=None):
    env = dict(os.environ, KUBECONFIG=cluster["kubeconfig"])
    return subprocess.run(["kubectl"] + list(args), capture_output=True, text=True, env=env, timeout=60,
                          check=False, input=stdin)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed on this machine")
def test_kubectl_reads_what_helm_created_and_applies_server_side(cluster, tmp_path):
    assert kubectl(cluster, "create", "namespace", "kctl").returncode == 0
    values = {"worker": {"apiConfig": "selfHostedServer", "config": {"workPool": "p", "type": "kubernetes"},
                         "selfHostedServerApiConfig": {"apiUrl": "http://prefect-server.kctl.svc.cluster.local:4200/api"}}}
    assert helm(cluster, "upgrade", "-i", REPO_URL, write_values(tmp_path, values), "kw", "prefect-worker",
                namespace="kctl").returncode == 0
    deadline = time.time() + 15
    while True:  # the workload runner writes the Deployment's status a moment after Helm created it
        got = kubectl(cluster, "-n", "kctl", "get", "deploy,pods,svc,events,secrets,sa,roles")
        assert got.returncode == 0, got.stderr
        if re.search(r"deployment.apps/prefect-worker\s+0/1\s+1\s", got.stdout) or time.time() > deadline:
            break
        time.sleep(0.5)
    # Server-side printing: the Deployment's columns, and the worker cannot run here, so 0 are available.
    assert re.search(r"deployment.apps/prefect-worker\s+0/1\s+1\s+0\s", got.stdout), got.stdout
    assert re.search(r"secret/sh.helm.release.v1.kw.v1\s+helm.sh/release.v1\s+1\s", got.stdout), got.stdout
    short = kubectl(cluster, "-n", "kctl", "get", "deploy", "-o", "name")
    assert short.stdout.split() == ["deployment.apps/prefect-worker"]
    described = kubectl(cluster, "-n", "kctl", "describe", "deploy", "prefect-worker")
    assert described.returncode == 0 and re.search(r"Available\s+False", described.stdout), described.stdout
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: kctl\n"
                "data:\n  tag: \"3.10\"\n")
    first = kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert first.returncode == 0 and "serverside-applied" in first.stdout, first.stderr
    dry = kubectl(cluster, "apply", "--server-side", "--dry-run=server", "-f", "-",
                  stdin=manifest.replace("3.10", "4"))
    assert dry.returncode == 0, dry.stderr
    assert cluster["api"].find("configmaps", "kctl")[0]["data"] == {"tag": "3.10"}
    version = json.loads(kubectl(cluster, "version", "-o", "json").stdout)["serverVersion"]
    assert (version["major"], version["minor"]) == ("1", "33")


def test_objects_are_checked_against_the_official_schemas_of_the_cluster_version(cluster, core):
    from kubernetes import config, dynamic
    from kubernetes.client.exceptions import ApiException

    dyn = dynamic.DynamicClient(config.new_client_from_config(cluster["kubeconfig"]))
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    core.create_namespace({"metadata": {"name": "typed"}})
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicas": "two", "selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    with pytest.raises(ApiException) as wrong:
        deployments.create(namespace="typed", body=deployment)
    body = json.loads(wrong.value.body)
    assert wrong.value.status == 400 and body["kind"] == "Status" and "spec.replicas" in body["message"]
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(ApiException) as strict:
        deployments.create(namespace="typed", body=deployment, query_params=[("fieldValidation", "Strict")])
    assert strict.value.status == 400 and \
        'unknown field "spec.template.spec.containers.0.imagePullPolcy"' in json.loads(strict.value.body)["message"]
    made = deployments.create(namespace="typed", body=deployment).to_dict()
    assert "imagePullPolcy" not in json.dumps(made) and made["metadata"]["generation"] == 1
    # Nothing is available until a pod is ready: the stand-in never claims otherwise.
    assert not (made.get("status") or {}).get("availableReplicas")


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed on this machine")
def test_a_deployment_owns_a_replicaset_that_owns_its_pods_and_kubectl_reads_their_logs(cluster):
    import sys
    from importlib.metadata import version

    image = "prefecthq/prefect:%s-python%d.%d" % ((version("prefect"),) + sys.version_info[:2])
    manifest = yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "owned"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "owned"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hello"}},
                  "template": {"metadata": {"labels": {"app": "hello"}},
                               "spec": {"containers": [{"name": "say", "image": image, "command": [
                                   "python", "-c", "import time; print('hello from the pod', flush=True); "
                                   "time.sleep(600)"]}]}}}}])
    applied = kubectl(cluster, "apply", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    api = cluster["api"]
    deadline = time.time() + 30
    while time.time() < deadline:
        pods = api.find("pods", "owned")
        logs = kubectl(cluster, "-n", "owned", "logs", pods[0]["metadata"]["name"]) if pods else None
        if logs is not None and "hello from the pod" in logs.stdout:
            break
        time.sleep(0.5)
    assert logs is not None and logs.returncode == 0 and "hello from the pod" in logs.stdout, logs and logs.stderr
    dep = api.get_object("deployments", "owned", "hello")
    (rs,) = api.find("replicasets", "owned")
    (pod,) = api.find("pods", "owned")
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert pod["metadata"]["ownerReferences"][0] == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}
    assert pod["metadata"]["labels"]["pod-template-hash"] == rs["spec"]["selector"]["matchLabels"]["pod-template-hash"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    # kubectl's rollout status reads the ReplicaSet and the Deployment's status, as Helm's wait does.
    rollout = kubectl(cluster, "-n", "owned", "rollout", "status", "deploy/hello", "--timeout=30s")
    assert rollout.returncode == 0 and "successfully rolled out" in rollout.stdout, rollout.stderr
    assert api.get_object("replicasets", "owned", rs["metadata"]["name"])["status"]["readyReplicas"] == 1
    wrong = kubectl(cluster, "-n", "owned", "logs", pod["metadata"]["name"], "-c", "nope")
    assert wrong.returncode == 1 and "container nope is not valid" in wrong.stderr
    # A new pod template: a new ReplicaSet (revision 2); the old one is scaled to zero and kept.
    patched = kubectl(cluster, "-n", "owned", "set", "env", "deploy/hello", "X=1")
    assert patched.returncode == 0, patched.stderr
    deadline = time.time() + 30
    while time.time() < deadline:
        sets = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r
                for r in api.find("replicasets", "owned")}
        if len(sets) == 2 and sets["1"]["spec"]["replicas"] == 0 and len(api.find("pods", "owned")) == 1:
            break
        time.sleep(0.5)
    assert sets["1"]["spec"]["replicas"] == 0 and sets["2"]["spec"]["replicas"] == 1
    assert [p["metadata"]["ownerReferences"][0]["uid"] for p in api.find("pods", "owned")] == \
        [sets["2"]["metadata"]["uid"]]
    assert kubectl(cluster, "-n", "owned", "delete", "deploy", "hello").returncode == 0
    deadline = time.time() + 15
    while time.time() < deadline and (api.find("replicasets", "owned") or api.find("pods", "owned")):
        time.sleep(0.3)
    assert api.find("replicasets", "owned") == [] and api.find("pods", "owned") == []


def test_a_watch_ends_when_its_client_goes_and_is_not_counted_after_a_later_mark(sandbox, cluster):
    """A killed client's watch ends at once, as the API server cancels it with the connection, rather than holding a
    thread until its timeout; and a request that began before a test's mark is not one the test's run made."""
    import signal
    import sys

    child = subprocess.Popen([sys.executable, "-c", (
        "from kubernetes import client, config, watch\n"
        "api = client.BatchV1Api(config.new_client_from_config(%r))\n"
        "for _ in watch.Watch().stream(api.list_namespaced_job, 'watched', timeout_seconds=300):\n"
        "    pass\n") % cluster["kubeconfig"]], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not cluster["api"].open_watches["jobs", "watched"]:
            assert child.poll() is None and time.monotonic() < deadline, "the watch never opened"
            time.sleep(0.2)
        # Taken while the watch is open, so its entry (logged when it ends) comes after the mark.
        mark = sandbox.log.mark()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 20
    ended = []
    while not ended and time.monotonic() < deadline:
        ended = [e for e in sandbox.log.entries[mark:] if e["path"] == "/apis/batch/v1/namespaces/watched/jobs"]
        time.sleep(0.2)
    assert ended and ended[0]["status"] == 200, "the watch should end within seconds of its client dying"
    assert sandbox.log.by_deployer(mark) == [], "a request begun before the mark is not counted after it"
