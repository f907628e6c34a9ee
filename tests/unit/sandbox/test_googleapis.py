"""The sandbox as https://<api>.googleapis.com for unmodified clients: proxy, CA, metadata server, gcloud."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.unit.conftest import REPO

from .gcp_helpers import client, enable, wait_compute, wait_lro

REGION = "europe-west1"


@pytest.fixture(scope="module")
def project(sandbox):
    return sandbox.config.project


@pytest.fixture(scope="module")
def world(sandbox, project):
    """A network, subnetwork, address, service account and Cloud Run job, made through the path-style endpoint."""
    enable(sandbox, "run.googleapis.com", "compute.googleapis.com", "iam.googleapis.com",
           "secretmanager.googleapis.com", "container.googleapis.com", "sqladmin.googleapis.com")
    compute = client(sandbox, "compute")
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "gapis-vpc", "autoCreateSubnetworks": False}).execute())
    wait_compute(compute, project, compute.subnetworks().insert(project=project, region=REGION, body={
        "name": "gapis-subnet", "network": "global/networks/gapis-vpc", "ipCidrRange": "10.60.0.0/20"}).execute())
    wait_compute(compute, project, compute.addresses().insert(project=project, region=REGION, body={
        "name": "gapis-egress"}).execute())
    iam = client(sandbox, "iam")
    sa = iam.projects().serviceAccounts().create(
        name="projects/%s" % project, body={"accountId": "gapis-flows"}).execute()
    run = client(sandbox, "run", "v2")
    op = run.projects().locations().jobs().create(
        parent="projects/%s/locations/%s" % (project, REGION), jobId="gapis-job",
        body={"template": {"template": {"serviceAccount": sa["email"], "containers": [
            {"image": "prefecthq/prefect:3-python3.11", "command": ["prefect", "version"]}]}}}).execute()
    wait_lro(run.projects().locations(), op)
    return {"sa": sa["email"], "iam": iam}


def child(env, code, timeout=60):
    """Run Python in a clean process whose only sandbox settings are `env` (nothing points a client elsewhere)."""
    cleared = ("GOOGLE_", "GCE_", "CLOUDSDK_", "HTTP", "http", "NO_PROXY", "no_proxy", "REQUESTS_", "SSL_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    base.update(env)
    proc = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_unmodified_clients_reach_run_v2_with_only_env_settings(sandbox, world, project):
    out = child(sandbox.network_env(), r'''
import json, google.auth, google.auth.transport.requests as gtr, requests
from googleapiclient import discovery
creds, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
session = gtr.AuthorizedSession(creds)
url = "https://run.googleapis.com/v2/projects/%s/locations/europe-west1/jobs" % project
resp = session.get(url)
anonymous = requests.get(url)
run = discovery.build("run", "v2", credentials=creds, static_discovery=True)
job = run.projects().locations().jobs().get(name="projects/%s/locations/europe-west1/jobs/gapis-job" % project).execute()
print(json.dumps({"project": project, "status": resp.status_code, "jobs": [j["name"] for j in resp.json()["jobs"]],
                  "anonymous": anonymous.status_code, "client_job": job["name"]}))
''')
    seen = json.loads(out.strip().splitlines()[-1])
    name = "projects/%s/locations/%s/jobs/gapis-job" % (project, REGION)
    assert seen["project"] == project
    assert seen["status"] == 200 and name in seen["jobs"]
    assert seen["anonymous"] == 401
    assert seen["client_job"] == name
    hosts = {e["path"] for e in sandbox.log.entries if e["method"] == "CONNECT"}
    assert {"run.googleapis.com:443", "oauth2.googleapis.com:443"} <= hosts


def test_the_sandbox_ca_is_required(sandbox, world, project):
    env = sandbox.network_env()
    proxies = {"https": env["HTTPS_PROXY"]}
    url = "https://run.googleapis.com/v2/projects/%s/locations/%s/jobs" % (project, REGION)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, proxies=proxies, verify=True, timeout=10)  # the public roots do not know the sandbox CA
    assert requests.get(url, proxies=proxies, verify=env["REQUESTS_CA_BUNDLE"], timeout=10).status_code == 401


def _connect(proxy_url, target):
    host, port = proxy_url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        return sock.recv(4096).decode("latin-1")


@pytest.mark.parametrize("target", ["example.com:443", "pypi.org:443", "googleapis.com.evil.example:443",
                                    "run.googleapis.com:80", "8.8.8.8:443"])
def test_proxy_refuses_every_other_host(sandbox, target):
    answer = _connect(sandbox.network_env()["HTTPS_PROXY"], target)
    assert answer.startswith("HTTP/1.1 403"), answer
    assert "is not reachable from here" in answer and "never dials out" in answer


def test_unknown_api_host_is_not_found_in_googles_shape(sandbox):
    env = sandbox.network_env()
    resp = requests.get("https://nosuchapi.googleapis.com/v1/things", proxies={"https": env["HTTPS_PROXY"]},
                        verify=env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert resp.status_code == 404
    assert resp.json()["error"]["status"] == "NOT_FOUND"


# ---- Workload Identity through the metadata-server stand-in --------------------------------------------------
def _bind(world, project, email, member):
    iam = world["iam"]
    resource = "projects/%s/serviceAccounts/%s" % (project, email)
    policy = iam.projects().serviceAccounts().getIamPolicy(resource=resource).execute()
    policy.setdefault("bindings", []).append({"role": "roles/iam.workloadIdentityUser", "members": [member]})
    iam.projects().serviceAccounts().setIamPolicy(resource=resource, body={"policy": policy}).execute()


def _metadata(env, path, flavor=True):
    headers = {"Metadata-Flavor": "Google"} if flavor else {}
    return requests.get("http://%s/computeMetadata/v1/%s" % (env["GCE_METADATA_HOST"], path), headers=headers,
                        timeout=10)


def test_workload_identity_needs_the_binding(sandbox, world, project):
    identity = {"namespace": "prefect", "service_account": "wi-worker",
                "annotations": {"iam.gke.io/gcp-service-account": world["sa"]}}
    env = sandbox.network_env(identity)
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
    assert _metadata(env, "instance/service-accounts/default/email").text == world["sa"]
    assert _metadata(env, "project/project-id").text == project
    assert _metadata(env, "instance/service-accounts/default/token", flavor=False).status_code == 403
    refused = _metadata(env, "instance/service-accounts/default/token")
    assert refused.status_code == 403
    assert "roles/iam.workloadIdentityUser" in refused.text and "[prefect/wi-worker]" in refused.text

    # A binding for another Kubernetes service account does not count.
    _bind(world, project, world["sa"], "serviceAccount:%s.svc.id.goog[prefect/someone-else]" % project)
    assert _metadata(env, "instance/service-accounts/default/token").status_code == 403

    _bind(world, project, world["sa"], "serviceAccount:%s.svc.id.goog[prefect/wi-worker]" % project)
    token = _metadata(env, "instance/service-accounts/default/token")
    assert token.status_code == 200 and token.headers["Metadata-Flavor"] == "Google"
    assert sandbox.apps["gcp"].auth.check(type("R", (), {"bearer": token.json()["access_token"]})()) == world["sa"]

    # google-auth's own metadata flow, in a process with nothing but the environment, calls an API as the GSA.
    mark = sandbox.log.mark()
    out = child(env, r'''
import google.auth, google.auth.transport.requests as gtr
creds, project = google.auth.default()
resp = gtr.AuthorizedSession(creds).get(
    "https://run.googleapis.com/v2/projects/%s/locations/europe-west1/jobs" % project)
print(type(creds).__module__, project, resp.status_code, creds.service_account_email)
''')
    assert out.split() == ["google.auth.compute_engine.credentials", project, "200", world["sa"]]
    # The request log names the pod as the origin of its tunnel and of its API call (its token is the metadata
    # server's), so "what did the deployer do" leaves a workload's own traffic out.
    pods = [(e["method"], e["path"].split("?")[0], e["origin"]) for e in sandbox.log.entries[mark:]
            if e["family"] != "metadata" or e["method"] == "CONNECT"]
    assert ("CONNECT", "run.googleapis.com:443", "workload:pod/prefect/wi-worker") in pods, pods
    assert ("GET", "/run/v2/projects/%s/locations/europe-west1/jobs" % project, "workload:pod/prefect/wi-worker") in pods
    assert not [e for e in sandbox.log.by_deployer(mark) if e["family"] != "metadata"], sandbox.log.by_deployer(mark)


def test_workload_identity_without_annotation_or_account(sandbox, world, project):
    env = sandbox.network_env({"namespace": "prefect", "service_account": "plain"})
    assert _metadata(env, "instance/service-accounts/default/token").status_code == 404
    # Annotated with an account that does not exist: IAM refuses, whatever the bindings say.
    ghost = "ghost@%s.iam.gserviceaccount.com" % project
    env = sandbox.network_env({"namespace": "prefect", "service_account": "ghost",
                               "annotations": {"iam.gke.io/gcp-service-account": ghost}})
    assert _metadata(env, "instance/service-accounts/default/token").status_code == 403


def test_workload_identity_reads_the_ksa_from_the_cluster(sandbox, world, project):
    """The annotation is read from the cluster when the token is asked for: adding it later takes effect."""
    kube = sandbox.apps["kube"]
    key = "projects/%s/locations/%s/clusters/gapis-wi" % (project, REGION)
    kube.register_cluster(key, "172.16.60.2")
    try:
        api = kube.clusters[key]
        identity = {"namespace": "flows", "service_account": "runner", "cluster": key}
        env = sandbox.network_env(identity)
        assert _metadata(env, "instance/service-accounts/default/token").status_code == 404  # no such KSA
        ksa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": "flows"}}
        api.put_object("serviceaccounts", "flows", json.loads(json.dumps(ksa)))
        assert _metadata(env, "instance/service-accounts/default/token").status_code == 404  # not annotated
        ksa["metadata"]["annotations"] = {"iam.gke.io/gcp-service-account": world["sa"]}
        api.put_object("serviceaccounts", "flows", json.loads(json.dumps(ksa)))
        assert _metadata(env, "instance/service-accounts/default/token").status_code == 403  # no binding
        _bind(world, project, world["sa"], "serviceAccount:%s.svc.id.goog[flows/runner]" % project)
        assert _metadata(env, "instance/service-accounts/default/token").status_code == 200
        assert sandbox.network_env(identity)["GCE_METADATA_HOST"] == env["GCE_METADATA_HOST"]
    finally:
        kube.unregister_cluster(key)


# ---- gcloud ------------------------------------------------------------------------------------------------
def readme_gcloud_commands():
    with open(os.path.join(REPO, "sandbox", "README.md")) as fh:
        text = fh.read()
    section = text.split("### Try it with gcloud", 1)[1]
    block = section.split("```", 2)[1]
    return [line.split()[1:] for line in block.splitlines() if line.startswith("gcloud ")]


@pytest.fixture(scope="module")
def gcloud(sandbox, world, tmp_path_factory):
    exe = shutil.which("gcloud")
    if exe is None:
        pytest.skip("gcloud is not installed on this machine (the README's gcloud commands need it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "GOOGLE_", "HTTP", "http"))}
    env.update(sandbox.network_env())
    env["CLOUDSDK_CONFIG"] = str(tmp_path_factory.mktemp("gcloud-config"))

    def run(*args):
        proc = subprocess.run([exe, *args, "--format=json"], env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0, "gcloud %s: %s" % (" ".join(args), proc.stderr)
        assert "did not succeed" not in proc.stderr, proc.stderr
        return json.loads(proc.stdout or "null")

    return run


@pytest.fixture(scope="module")
def built(sandbox, world, project):
    """A Cloud SQL instance and an Autopilot cluster besides the world (slow: made once, for the gcloud tests)."""
    sql = client(sandbox, "sqladmin")
    sql.instances().insert(project=project, body={
        "name": "gapis-sql", "databaseVersion": "POSTGRES_16", "region": REGION,
        "settings": {"tier": "db-custom-1-3840", "ipConfiguration": {"ipv4Enabled": True}}}).execute()
    container = client(sandbox, "container")
    op = container.projects().locations().clusters().create(
        parent="projects/%s/locations/%s" % (project, REGION),
        body={"cluster": {"name": "gapis-ap", "autopilot": {"enabled": True}, "network": "gapis-vpc",
                          "subnetwork": "gapis-subnet"}}).execute()
    deadline = time.time() + 60
    while time.time() < deadline:
        row = container.projects().locations().clusters().get(
            name="projects/%s/locations/%s/clusters/gapis-ap" % (project, REGION)).execute()
        inst = sql.instances().get(project=project, instance="gapis-sql").execute()
        if row["status"] == "RUNNING" and inst["state"] == "RUNNABLE":
            return
        time.sleep(0.1)
    raise AssertionError("cluster %s / instance %s did not settle: %s" % (row["status"], inst["state"], op))


def test_readme_gcloud_commands_run(gcloud, built, project):
    commands = readme_gcloud_commands()
    assert len(commands) >= 8
    out = {" ".join(cmd): gcloud(*cmd) for cmd in commands}

    def names(key):
        return sorted(item.get("name", "").rsplit("/", 1)[-1] for item in out[key])

    assert out["projects describe %s" % project]["projectId"] == project
    assert out["projects describe %s" % project]["lifecycleState"] == "ACTIVE"
    assert "gapis-sql" in names("sql instances list")
    assert "gapis-vpc" in names("compute networks list")
    assert "gapis-subnet" in names("compute networks subnets list")
    assert "gapis-egress" in names("compute addresses list")
    assert isinstance(out["compute instances list"], list)
    assert "gapis-ap" in names("container clusters list")
    jobs = out["run jobs list"]
    job = next(j for j in jobs if j["metadata"]["name"] == "gapis-job")
    assert job["metadata"]["labels"]["cloud.googleapis.com/location"] == REGION


def test_gcloud_cluster_describe_and_regional_run(sandbox, gcloud, built, project):
    cluster = gcloud("container", "clusters", "describe", "gapis-ap", "--location", REGION)
    assert cluster["status"] == "RUNNING" and cluster["currentNodeVersion"] == cluster["currentMasterVersion"]
    jobs = gcloud("run", "jobs", "list", "--region", REGION)
    # Other tests in this session's sandbox leave jobs in the region too: gcloud lists exactly what it holds there.
    held = sorted(k.rsplit("/", 1)[-1] for k in sandbox.store.table("run.jobs")
                  if "/locations/%s/jobs/" % REGION in k)
    assert "gapis-job" in held and sorted(j["metadata"]["name"] for j in jobs) == held
    assert gcloud("run", "jobs", "list", "--region", "us-east1") == []
    job = gcloud("run", "jobs", "describe", "gapis-job", "--region", REGION)
    assert job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["image"].startswith("prefecthq/")


def test_cli_env_prints_the_exports(sandbox):
    env = sandbox.network_env()
    for key in ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CLOUDSDK_PROXY_TYPE",
                "CLOUDSDK_PROXY_ADDRESS", "CLOUDSDK_PROXY_PORT", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
                "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CORE_PROJECT"):
        assert env.get(key), key
    with open(env["GOOGLE_APPLICATION_CREDENTIALS"]) as fh:
        key = json.load(fh)
    assert key["token_uri"] == "https://oauth2.googleapis.com/token"
    assert oct(os.stat(env["GOOGLE_APPLICATION_CREDENTIALS"]).st_mode & 0o777) == "0o600"
    cfg_env = dict(os.environ, SKYFORGE_SANDBOX_DIR=sandbox.config.state_dir)
    proc = subprocess.run([sys.executable, "-m", "sandbox", "env"], cwd=REPO, env=cfg_env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    exported = dict(re.findall(r"^export (\w+)=(\S+)$", proc.stdout, re.M))
    assert exported["HTTPS_PROXY"] == env["HTTPS_PROXY"]
    assert exported["CLOUDSDK_CORE_PROJECT"] == sandbox.config.project


def test_prefect_gcp_cloud_run_client_under_workload_identity(sandbox, world, project):
    """prefect-gcp's cloud-run-v2 worker builds its client for https://run.googleapis.com itself; a pod that stands
    for the worker reaches the sandbox with the pod's network env alone (proxy, CA, metadata server)."""
    pytest.importorskip("prefect_gcp")
    _bind(world, project, world["sa"], "serviceAccount:%s.svc.id.goog[prefect/pgcp-worker]" % project)
    env = sandbox.network_env({"namespace": "prefect", "service_account": "pgcp-worker",
                               "annotations": {"iam.gke.io/gcp-service-account": world["sa"]}})
    env["PREFECT_HOME"] = sandbox.config.state_dir + "/prefect-gcp-home"
    out = child(env, r'''
from types import SimpleNamespace
from prefect_gcp.credentials import GcpCredentials
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2
client = CloudRunWorkerV2._get_client(SimpleNamespace(credentials=GcpCredentials()))
project = GcpCredentials().project
job = client.jobs().get(name="projects/%s/locations/europe-west1/jobs/gapis-job" % project).execute()
print("JOB", job["name"])
''', timeout=120)
    assert out.split()[-2:] == ["JOB", "projects/%s/locations/%s/jobs/gapis-job" % (project, REGION)]


def test_google_cloud_library_and_www_host(sandbox, world, project):
    """A google-cloud-* library over REST, and the older www.googleapis.com/<service path> form."""
    pytest.importorskip("google.cloud.secretmanager")
    enable(sandbox, "secretmanager.googleapis.com")
    out = child(sandbox.network_env(), r'''
import google.auth, google.auth.transport.requests as gtr
from google.cloud import secretmanager
sm = secretmanager.SecretManagerServiceClient(transport="rest")
project = google.auth.default()[1]
secret = sm.create_secret(parent="projects/%s" % project, secret_id="gapis-lib",
                          secret={"replication": {"automatic": {}}})
creds = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])[0]
www = gtr.AuthorizedSession(creds).get("https://www.googleapis.com/compute/v1/projects/%s/global/networks" % project)
admin = gtr.AuthorizedSession(creds).get("https://run.googleapis.com/_sandbox/endpoints")
import json
print(json.dumps({"secret": secret.name, "www": www.status_code, "networks": [n["name"] for n in www.json()["items"]],
                  "admin": admin.status_code}))
''', timeout=120)
    seen = json.loads(out.strip().splitlines()[-1])
    number = sandbox.apps["gcp"].project_number
    assert seen["secret"] == "projects/%s/secrets/gapis-lib" % number  # Secret Manager names use the number
    assert seen["www"] == 200 and "gapis-vpc" in seen["networks"]
    assert seen["admin"] == 404  # Google's hosts have no sandbox admin API
    assert any(k.endswith("/secrets/gapis-lib") for k in sandbox.store.table("secretmanager.secrets"))


def test_self_signed_jwt_must_name_the_api(sandbox, world, project):
    from google.auth import jwt as gjwt
    from google.auth.transport.requests import AuthorizedSession

    env = sandbox.network_env()
    url = "https://run.googleapis.com/v2/projects/%s/locations/%s/jobs" % (project, REGION)

    def status(audience):
        creds = gjwt.Credentials.from_service_account_file(env["GOOGLE_APPLICATION_CREDENTIALS"], audience=audience)
        session = AuthorizedSession(creds)
        return session.get(url, proxies={"https": env["HTTPS_PROXY"]}, verify=env["REQUESTS_CA_BUNDLE"],
                           timeout=10).status_code

    assert status("https://run.googleapis.com/") == 200
    assert status("https://secretmanager.googleapis.com/") == 401


def test_runtime_service_account_identity(sandbox, world, project):
    """A Cloud Run task's metadata server issues its runtime service account's tokens, no binding needed."""
    env = sandbox.network_env({"google_service_account": world["sa"]})
    assert _metadata(env, "instance/service-accounts/default/email").text == world["sa"]
    token = _metadata(env, "instance/service-accounts/default/token")
    assert token.status_code == 200
    gone = sandbox.network_env({"google_service_account": "gone@%s.iam.gserviceaccount.com" % project})
    assert _metadata(gone, "instance/service-accounts/default/token").status_code == 403
    with pytest.raises(ValueError):
        sandbox.network_env({"namespace": "prefect"})
