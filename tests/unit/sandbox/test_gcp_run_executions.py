"""Cloud Run executions that run: a task's process reaches the Prefect API through Cloudflare's edge, from the address
GCP gives it (the Cloud NAT's under ALL_TRAFFIC Direct VPC egress), with its secrets read as the runtime account.

The origin behind the edge is a stub that answers /api/health as the Prefect server does and records what reached
it; the Access application admits only an IP list holding the NAT address.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.egress import GOOGLE_EGRESS_IP, EgressProxy, decide_source
from unit.conftest import specs_path

from .gcp_helpers import client, enable, wait_compute, wait_lro

cloudflare = pytest.importorskip("cloudflare")

REGION = "europe-west4"  # a region of its own: other run tests list the jobs of theirs
ORIGIN_IP = "203.0.113.80"
SECRET_VALUE = "exec-secret-value-7f3a"
SECRET_SHA = hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
IMAGE = "prefecthq/prefect:3-python%d.%d" % sys.version_info[:2]


@pytest.fixture(scope="module")
def origin(sandbox):
    """Stands for the Prefect server behind the load balancer: /api/health answers `true`."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(dict(self.headers.items(), path=self.path))
            body = b"true" if self.path == "/api/health" else b'{"detail":"Not Found"}'
            self.send_response(200 if self.path == "/api/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sandbox.map_address(ORIGIN_IP, 80, "127.0.0.1", srv.server_address[1], "test origin")
    yield seen
    sandbox.unmap_address(ORIGIN_IP, 80)
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def world(sandbox, origin):
    """VPC + subnet covered by a Cloud NAT with a reserved IP, runtime accounts, the auth secret, the edge and Access."""
    specs_path("cloudflare", "openapi.subset.dns-access-gateway-lists.json")
    project = sandbox.config.project
    enable(sandbox, "run.googleapis.com", "compute.googleapis.com", "iam.googleapis.com",
           "secretmanager.googleapis.com", "cloudresourcemanager.googleapis.com")
    compute = client(sandbox, "compute")
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "exec-vpc", "autoCreateSubnetworks": False}).execute())
    for name, cidr in (("exec-subnet", "10.50.0.0/20"), ("exec-bare", "10.51.0.0/20")):
        wait_compute(compute, project, compute.subnetworks().insert(project=project, region=REGION, body={
            "name": name, "network": "global/networks/exec-vpc", "ipCidrRange": cidr}).execute())
    wait_compute(compute, project, compute.addresses().insert(project=project, region=REGION,
                                                              body={"name": "exec-nat-ip"}).execute())
    address = compute.addresses().get(project=project, region=REGION, address="exec-nat-ip").execute()
    subnet = compute.subnetworks().get(project=project, region=REGION, subnetwork="exec-subnet").execute()
    wait_compute(compute, project, compute.routers().insert(project=project, region=REGION, body={
        "name": "exec-router", "network": "global/networks/exec-vpc",
        "nats": [{"name": "exec-nat", "natIpAllocateOption": "MANUAL_ONLY", "natIps": [address["selfLink"]],
                  "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                  "subnetworks": [{"name": subnet["selfLink"], "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]}]}).execute())

    iam = client(sandbox, "iam")
    flows = iam.projects().serviceAccounts().create(name="projects/%s" % project,
                                                    body={"accountId": "exec-flows"}).execute()["email"]
    stranger = iam.projects().serviceAccounts().create(name="projects/%s" % project,
                                                       body={"accountId": "exec-no-secrets"}).execute()["email"]
    sm = client(sandbox, "secretmanager")
    sm.projects().secrets().create(parent="projects/%s" % project, secretId="exec-auth",
                                   body={"replication": {"automatic": {}}}).execute()
    sm.projects().secrets().addVersion(parent="projects/%s/secrets/exec-auth" % project, body={
        "payload": {"data": base64.b64encode(SECRET_VALUE.encode()).decode()}}).execute()
    crm = client(sandbox, "cloudresourcemanager")
    policy = crm.projects().getIamPolicy(resource=project, body={}).execute()
    policy["bindings"].append({"role": "roles/secretmanager.secretAccessor", "members": ["serviceAccount:" + flows]})
    crm.projects().setIamPolicy(resource=project, body={"policy": policy}).execute()

    ep = sandbox.endpoints()
    cf = cloudflare.Cloudflare(api_token=ep["cloudflare_api_token"], base_url=ep["cloudflare_base_url"],
                               max_retries=0)
    acc = ep["cloudflare_account_id"]
    host = "flows-api.%s" % ep["cloudflare_zone"]
    zone_id = cf.zones.list(name=ep["cloudflare_zone"]).result[0].id
    cf.dns.records.create(zone_id=zone_id, name="flows-api", type="A", content=ORIGIN_IP, ttl=1, proxied=True)
    lst = cf.zero_trust.gateway.lists.create(account_id=acc, name="exec-egress", type="IP",
                                             items=[{"value": address["address"]}, {"value": "198.51.100.7"}])
    pol = cf.zero_trust.access.policies.create(account_id=acc, name="exec-egress", decision="non_identity",
                                               include=[{"ip_list": {"id": lst.id}}])
    cf.zero_trust.access.applications.create(account_id=acc, type="self_hosted", name="exec-prefect", domain=host,
                                             policies=[{"id": pol.id, "precedence": 1}])
    return {"project": project, "run": client(sandbox, "run", "v2"), "nat_ip": address["address"], "sa": flows,
            "stranger": stranger, "host": host, "cf": cf, "acc": acc, "list": lst.id}


HEALTH = ("import hashlib, os, urllib.request\n"
          "assert hashlib.sha256(os.environ['AUTH'].encode()).hexdigest() == %r, 'the secret did not arrive'\n"
          "with urllib.request.urlopen('https://%s/api/health', timeout=20) as r:\n"
          "    print('health', r.status, r.read().decode())\n")


@pytest.fixture(scope="module", autouse=True)
def cleanup(world):
    yield
    locations = world["run"].projects().locations()
    parent = "projects/%s/locations/%s" % (world["project"], REGION)
    for job in locations.jobs().list(parent=parent).execute().get("jobs", []):
        wait_lro(locations, locations.jobs().delete(name=job["name"]).execute())


def job_body(world, script=None, vpc=True, **task):
    tmpl = {"serviceAccount": world["sa"], "timeout": "60s", "maxRetries": 0,
            "containers": [{"image": IMAGE, "command": ["python", "-c"],
                            "args": [script or HEALTH % (SECRET_SHA, world["host"])],
                            "env": [{"name": "A", "value": "1"},
                                    {"name": "AUTH", "valueSource": {"secretKeyRef": {"secret": "exec-auth",
                                                                                      "version": "latest"}}}]}]}
    if vpc:
        tmpl["vpcAccess"] = {"egress": "ALL_TRAFFIC",
                             "networkInterfaces": [{"network": "exec-vpc", "subnetwork": "exec-subnet"}]}
    tmpl.update(task)
    return {"template": {"taskCount": 1, "template": tmpl}}


def execute(world, job_id, body, overrides=None):
    """Create the job, run it, wait for the run operation: (operation, execution, job)."""
    locations = world["run"].projects().locations()
    jobs = locations.jobs()
    parent = "projects/%s/locations/%s" % (world["project"], REGION)
    done = wait_lro(locations, jobs.create(parent=parent, jobId=job_id, body=body).execute())
    assert "error" not in done, done
    name = "%s/jobs/%s" % (parent, job_id)
    op = wait_lro(locations, jobs.run(name=name, body={"overrides": overrides} if overrides else {}).execute(),
                  timeout=90)
    execution = jobs.executions().get(name=op["metadata"]["name"]).execute()
    return op, execution, jobs.get(name=name).execute()


def completed(execution):
    return next(c for c in execution["conditions"] if c["type"] == "Completed")


def assert_schema(kind, obj):
    from sandbox.gcp.discovery import load

    load("run", "v2")._check_object(load("run", "v2").schemas[kind], {k: v for k, v in obj.items() if k != "@type"},
                                    "", "response")


def read_log(sandbox, execution):
    from sandbox.gcp.run_executions import log_path

    with open(log_path(sandbox.config.state_dir, execution["name"]), encoding="utf-8") as fh:
        return fh.read()


def test_a_task_reaches_prefect_through_the_edge_from_the_nat_ip(sandbox, world, origin):
    del origin[:]
    op, execution, job = execute(world, "exec-health", job_body(world))
    assert "error" not in op and op["response"]["name"] == execution["name"], op
    assert_schema("GoogleCloudRunV2Execution", execution)
    cond = completed(execution)
    assert cond["state"] == "CONDITION_SUCCEEDED", cond
    assert cond["message"].startswith("Execution completed successfully in ")
    assert execution["succeededCount"] == 1 and execution["runningCount"] == 0 and execution["completionTime"]
    assert execution.get("failedCount", 0) == 0 and execution["reconciling"] is False
    assert job["latestCreatedExecution"]["completionStatus"] == "EXECUTION_SUCCEEDED"
    assert job["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"

    hits = [h for h in origin if h["path"] == "/api/health"]
    assert hits and hits[-1]["CF-Connecting-IP"] == world["nat_ip"], "Access saw the NAT's address"

    tasks = world["run"].projects().locations().jobs().executions().tasks()
    listed = tasks.list(parent=execution["name"]).execute()["tasks"]
    assert [t["index"] for t in listed] == [0]
    task = tasks.get(name=listed[0]["name"]).execute()
    assert_schema("GoogleCloudRunV2Task", task)
    assert task["lastAttemptResult"]["exitCode"] == 0 and task["retried"] == 0
    assert completed(task)["state"] == "CONDITION_SUCCEEDED"

    log = read_log(sandbox, execution)
    assert "health 200 true" in log and "egress from %s" % world["nat_ip"] in log
    assert SECRET_VALUE not in log and SECRET_VALUE not in json.dumps(execution)


def test_without_the_nat_ip_on_the_access_list_the_execution_fails_saying_why(sandbox, world):
    cf, acc = world["cf"], world["acc"]
    cf.zero_trust.gateway.lists.edit(world["list"], account_id=acc, remove=[world["nat_ip"]])
    try:
        op, execution, job = execute(world, "exec-no-allow", job_body(world))
    finally:
        cf.zero_trust.gateway.lists.edit(world["list"], account_id=acc, append=[{"value": world["nat_ip"]}])
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED" and execution["failedCount"] == 1
    assert "0/1 tasks were a success" in cond["message"]
    assert "HTTP Error 403" in cond["message"] and "from %s" % world["nat_ip"] in cond["message"]
    assert "no Access policy of exec-prefect admits this request" in cond["message"]
    assert op["error"]["message"] == cond["message"]
    assert job["latestCreatedExecution"]["completionStatus"] == "EXECUTION_FAILED"


def test_without_vpc_access_the_task_leaves_from_a_google_address_and_is_refused(sandbox, world):
    _op, execution, _job = execute(world, "exec-no-vpc", job_body(world, vpc=False))
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED"
    assert "from %s" % GOOGLE_EGRESS_IP in cond["message"] and "HTTP Error 403" in cond["message"]
    assert "egress from %s: no Direct VPC egress" % GOOGLE_EGRESS_IP in read_log(sandbox, execution)


def test_a_secret_the_runtime_account_may_not_read_fails_before_any_container(sandbox, world):
    _op, execution, _job = execute(world, "exec-no-secret", job_body(world, serviceAccount=world["stranger"]))
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED" and cond["reason"] == "SECRETS_ACCESS_CHECK_FAILED"
    assert "Permission denied on secret" in cond["message"] and world["stranger"] in cond["message"]
    assert "roles/secretmanager.secretAccessor" in cond["message"]
    log = read_log(sandbox, execution)
    assert "task0 attempt0" not in log, "no container started"


def test_timeout_kills_each_attempt_and_retries_are_counted(sandbox, world):
    started = time.monotonic()
    body = job_body(world, script="import time; print('sleeping', flush=True); time.sleep(60)", timeout="1s",
                    maxRetries=1)
    _op, execution, _job = execute(world, "exec-timeout", body)
    assert time.monotonic() - started < 30
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED" and "The configured timeout was reached" in cond["message"]
    assert execution["retriedCount"] == 1 and execution["failedCount"] == 1
    task = world["run"].projects().locations().jobs().executions().tasks().list(
        parent=execution["name"]).execute()["tasks"][0]
    assert task["retried"] == 1 and task["lastAttemptResult"]["termSignal"] == 9
    log = read_log(sandbox, execution)
    assert "task0 attempt0 | sleeping" in log and "task0 attempt1 | sleeping" in log


def test_a_retry_that_succeeds_and_tasks_bounded_by_parallelism(sandbox, world):
    script = ("import os, sys, time\n"
              "i, a = os.environ['CLOUD_RUN_TASK_INDEX'], os.environ['CLOUD_RUN_TASK_ATTEMPT']\n"
              "print('start', i, a, os.environ['CLOUD_RUN_TASK_COUNT'], time.time(), flush=True)\n"
              "time.sleep(0.3)\n"
              "print('end', i, a, time.time(), flush=True)\n"
              "sys.exit(1 if (i, a) == ('1', '0') else 0)\n")
    body = job_body(world, script=script, maxRetries=2)
    body["template"].update(taskCount=3, parallelism=1)
    _op, execution, _job = execute(world, "exec-par", body)
    assert completed(execution)["state"] == "CONDITION_SUCCEEDED", completed(execution)
    assert execution["succeededCount"] == 3 and execution["retriedCount"] == 1 and execution["parallelism"] == 1
    spans = {}
    for line in read_log(sandbox, execution).splitlines():
        words = line.split(" | ", 1)[-1].split()
        if words and words[0] in ("start", "end"):
            spans.setdefault((words[1], words[2]), []).append(float(words[-1]))
    assert sorted(spans) == [("0", "0"), ("1", "0"), ("1", "1"), ("2", "0")]
    ordered = sorted(spans.values())
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:])), "parallelism 1: no two attempts overlap"


def test_an_image_the_sandbox_cannot_run_fails_with_the_reason(sandbox, world):
    body = job_body(world)
    body["template"]["template"]["containers"][0]["image"] = "busybox:1.36"
    _op, execution, _job = execute(world, "exec-busybox", body)
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED" and cond["reason"] == "CONTAINER_MISSING"
    assert "busybox:1.36" in cond["message"] and "prefecthq/prefect" in cond["message"]


def test_logs_command_lists_and_shows_executions(sandbox, world):
    _op, execution, _job = execute(world, "exec-logs", job_body(world, script="print('hello from the task')"))
    env = dict(os.environ, SKYFORGE_SANDBOX_DIR=sandbox.config.state_dir)
    repo = sandbox.config.repo_root

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sandbox", "logs", *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    listing = cli()
    exec_id = execution["name"].rsplit("/", 1)[-1]
    assert listing.returncode == 0 and exec_id in listing.stdout and "EXECUTION_SUCCEEDED" in listing.stdout
    shown = cli(execution["name"])
    assert shown.returncode == 0 and "task0 attempt0 | hello from the task" in shown.stdout
    assert "hello from the task" in cli("exec-logs").stdout, "a job id shows its latest execution"
    missing = cli("exec-nothing-abcde")
    assert missing.returncode == 1 and "python -m sandbox logs" in missing.stderr


# ---- the egress decision and the proxy on their own ------------------------------------------
def test_egress_source_follows_vpc_access_and_nat_coverage(sandbox, world):
    project = world["project"]
    nat = {"egress": "ALL_TRAFFIC", "networkInterfaces": [{"network": "exec-vpc", "subnetwork": "exec-subnet"}]}
    assert decide_source(sandbox, project, REGION, {"vpcAccess": nat})[0] == world["nat_ip"]
    private = dict(nat, egress="PRIVATE_RANGES_ONLY")
    assert decide_source(sandbox, project, REGION, {"vpcAccess": private})[0] == GOOGLE_EGRESS_IP
    default = {"networkInterfaces": nat["networkInterfaces"]}
    assert decide_source(sandbox, project, REGION, {"vpcAccess": default})[0] == GOOGLE_EGRESS_IP
    uncovered = {"egress": "ALL_TRAFFIC", "networkInterfaces": [{"subnetwork": "exec-bare"}]}
    ip, why = decide_source(sandbox, project, REGION, {"vpcAccess": uncovered})
    assert ip == GOOGLE_EGRESS_IP and "no Cloud NAT" in why
    assert decide_source(sandbox, project, REGION, {})[0] == GOOGLE_EGRESS_IP


def test_egress_proxy_refuses_anything_but_cloudflare_hostnames(sandbox, world, origin):
    proxy = EgressProxy(sandbox, world["nat_ip"])
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url, "https": proxy.url}))
        for url in ("http://10.0.0.5/", "http://example.com/", "https://example.com/"):
            with pytest.raises((urllib.error.HTTPError, urllib.error.URLError)) as exc:
                opener.open(url, timeout=10)
            if isinstance(exc.value, urllib.error.HTTPError):
                assert exc.value.code == 403 and "nothing else is ever dialled" in exc.value.read().decode()
            else:
                assert "403" in str(exc.value), "CONNECT refused"
        spoof = urllib.request.Request("http://%s/api/health" % world["host"],
                                       headers={"X-Sandbox-Client-IP": "192.0.2.99"})
        with opener.open(spoof, timeout=10) as resp:
            assert resp.status == 200
        assert origin[-1]["CF-Connecting-IP"] == world["nat_ip"], "the source is the proxy's to set, not the client's"
    finally:
        proxy.stop()


# ---- item 6's shape: a real Prefect flow run executed by a Cloud Run task -----------------------
PREFECT_ORIGIN_IP = "203.0.113.81"
AUTH_STRING = "admin:exec-flow-pw"
FLOW_SOURCE = '''from prefect import flow


@flow(log_prints=True)
def hello(who: str = "nobody"):
    print("hello %s from a Cloud Run task" % who)
    return 42
'''


@pytest.fixture(scope="module")
def prefect_api(sandbox, world, tmp_path_factory):
    """A real Prefect server (SQLite, basic auth) behind the edge as flows-prefect.<zone>, same Access app policy."""
    from sandbox.kube.releases import offline_env

    home = tmp_path_factory.mktemp("prefect-origin")
    port = sandbox.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(offline_env())
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING,
                "PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///%s/p.db" % home})
    log = open(str(home / "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    local = "http://127.0.0.1:%d/api" % port
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(local + "/health", timeout=2):
                break
        except Exception:  # noqa: BLE001
            assert proc.poll() is None, (home / "server.log").read_text()
            assert time.time() < deadline, "prefect server did not answer in 180s"
            time.sleep(0.5)
    sandbox.map_address(PREFECT_ORIGIN_IP, 80, "127.0.0.1", port, "test prefect server")
    cf, acc = world["cf"], world["acc"]
    ep = sandbox.endpoints()
    zone_id = cf.zones.list(name=ep["cloudflare_zone"]).result[0].id
    host = "flows-prefect.%s" % ep["cloudflare_zone"]
    cf.dns.records.create(zone_id=zone_id, name="flows-prefect", type="A", content=PREFECT_ORIGIN_IP, ttl=1,
                          proxied=True)
    pol = cf.zero_trust.access.policies.list(account_id=acc).result
    pol_id = [p.id for p in pol if p.name == "exec-egress"][0]
    cf.zero_trust.access.applications.create(account_id=acc, type="self_hosted", name="exec-prefect-api",
                                             domain=host, policies=[{"id": pol_id, "precedence": 1}])
    flows = tmp_path_factory.mktemp("flows")
    (flows / "flows.py").write_text(FLOW_SOURCE)
    yield {"local": local, "public": "https://%s/api" % host, "flows": str(flows)}
    sandbox.unmap_address(PREFECT_ORIGIN_IP, 80)
    os.killpg(proc.pid, 15)
    proc.wait(30)


def prefect_call(api, method, path, body=None):
    req = urllib.request.Request(api["local"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Authorization": "Basic %s" %
                                          base64.b64encode(AUTH_STRING.encode()).decode()})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def flow_run(api, who):
    """A deployment whose pull step names the folder holding the flow's code, and a run of it."""
    flow_id = prefect_call(api, "POST", "/flows/", {"name": "hello"})["id"]
    deployment = prefect_call(api, "POST", "/deployments/", {
        "name": "cloud-run-%s" % who, "flow_id": flow_id, "entrypoint": "flows.py:hello",
        "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": api["flows"]}}]})
    return prefect_call(api, "POST", "/deployments/%s/create_flow_run" % deployment["id"],
                        {"parameters": {"who": who}})["id"]


def flow_job_body(world, api, run_id, timeout=None):
    """The job the role's cloud-run-v2 pool makes of a flow run, with the env the worker adds to the container:
    the pool's PREFECT_API_URL job variable (the public URL) and the flow run's id; auth only by secretKeyRef."""
    from tests.unit.roles.test_prefect_release_values import cloud_run_job_body

    body, job_variables = cloud_run_job_body(
        gcp_project=world["project"], prefect_worker_region=REGION, prefect_worker_network="exec-vpc",
        prefect_worker_subnetwork="exec-subnet", prefect_worker_runtime_gsa=world["sa"].split("@")[0],
        prefect_worker_auth_string_secret="exec-prefect-auth", prefect_worker_public_api_url=api["public"],
        prefect_worker_flow_image=IMAGE)
    task = body["template"]["template"]
    container = task["containers"][0]
    assert container["command"] == ["prefect", "flow-run", "execute"]
    assert task["vpcAccess"]["egress"] == "ALL_TRAFFIC"
    container.pop("args", None)
    extra = dict(job_variables["env"], PREFECT__FLOW_RUN_ID=run_id)
    container["env"] = container.get("env", []) + [{"name": k, "value": v} for k, v in sorted(extra.items())]
    if timeout:
        task["timeout"] = timeout
    return body


@pytest.fixture(scope="module")
def auth_secret(sandbox, world):
    sm = client(sandbox, "secretmanager")
    parent = "projects/%s" % world["project"]
    sm.projects().secrets().create(parent=parent, secretId="exec-prefect-auth",
                                   body={"replication": {"automatic": {}}}).execute()
    sm.projects().secrets().addVersion(parent=parent + "/secrets/exec-prefect-auth", body={
        "payload": {"data": base64.b64encode(AUTH_STRING.encode()).decode()}}).execute()


def test_a_prefect_flow_run_completes_in_a_cloud_run_task_through_the_edge(sandbox, world, prefect_api, auth_secret):
    run_id = flow_run(prefect_api, "cloud-run")
    body = flow_job_body(world, prefect_api, run_id, timeout="300s")
    env = body["template"]["template"]["containers"][0]["env"]
    assert [e["name"] for e in env if "valueSource" in e] == ["PREFECT_API_AUTH_STRING"]
    assert AUTH_STRING not in json.dumps(body), "the auth string reaches the job only by reference"
    _op, execution, _job = execute(world, "exec-flow", body)
    log = read_log(sandbox, execution)
    assert completed(execution)["state"] == "CONDITION_SUCCEEDED", log
    state = prefect_call(prefect_api, "GET", "/flow_runs/%s" % run_id)["state"]
    assert state["type"] == "COMPLETED", state
    assert "hello cloud-run from a Cloud Run task" in log, "the flow's code ran, from the deployment's pull step"
    assert "from %s -> 200" % world["nat_ip"] in log
    assert AUTH_STRING not in log and AUTH_STRING.split(":")[1] not in json.dumps(execution)


def test_a_prefect_flow_run_cannot_reach_the_api_without_the_nat_ip(sandbox, world, prefect_api, auth_secret):
    run_id = flow_run(prefect_api, "locked-out")
    cf, acc = world["cf"], world["acc"]
    cf.zero_trust.gateway.lists.edit(world["list"], account_id=acc, remove=[world["nat_ip"]])
    try:
        _op, execution, _job = execute(world, "exec-flow-denied", flow_job_body(world, prefect_api, run_id))
    finally:
        cf.zero_trust.gateway.lists.edit(world["list"], account_id=acc, append=[{"value": world["nat_ip"]}])
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED"
    assert "no Access policy of exec-prefect-api admits this request" in cond["message"], cond
    state = prefect_call(prefect_api, "GET", "/flow_runs/%s" % run_id)["state"]
    assert state["type"] != "COMPLETED"


def test_cancel_and_delete_stop_a_running_execution_as_the_worker_cleans_up(sandbox, world):
    """prefect-gcp's cleanup: list the job's executions, delete each, then delete the job."""
    from sandbox.gcp.run_executions import log_path

    locations = world["run"].projects().locations()
    jobs = locations.jobs()
    parent = "projects/%s/locations/%s" % (world["project"], REGION)
    pids = os.path.join(sandbox.config.state_dir, "exec-cancel-pids")
    script = ("import os, time\nopen(%r, 'a').write('%%d\\n' %% os.getpid())\nprint('up', flush=True)\n"
              "time.sleep(60)\n" % pids)
    body = job_body(world, script=script, maxRetries=3)
    body["template"]["taskCount"] = 2
    wait_lro(locations, jobs.create(parent=parent, jobId="exec-cancel", body=body).execute())
    name = parent + "/jobs/exec-cancel"
    first = jobs.run(name=name, body={}).execute()["metadata"]["name"]
    second = jobs.run(name=name, body={}).execute()["metadata"]["name"]

    def started(execution_name, count):
        path = log_path(sandbox.config.state_dir, execution_name)
        deadline = time.time() + 30
        while not os.path.exists(path) or open(path).read().count("| up") < count:
            assert time.time() < deadline, "%s never started its tasks" % execution_name
            time.sleep(0.1)

    started(first, 2)
    cancelled = wait_lro(locations, jobs.executions().cancel(name=first, body={}).execute())
    assert "error" not in cancelled, cancelled
    execution = jobs.executions().get(name=first).execute()
    cond = completed(execution)
    assert cond["state"] == "CONDITION_FAILED" and cond["executionReason"] == "CANCELLED"
    assert execution["cancelledCount"] == 2 and execution.get("retriedCount", 0) == 0, "no retry after a cancel"
    assert jobs.executions().get(name=second).execute().get("completionTime") is None
    with pytest.raises(Exception) as exc:
        jobs.executions().cancel(name=first, body={}).execute()
    assert "already completed" in str(exc.value)

    started(second, 2)
    for listed in jobs.executions().list(parent=name).execute()["executions"]:
        assert "error" not in wait_lro(locations, jobs.executions().delete(name=listed["name"]).execute())
    assert jobs.executions().list(parent=name).execute() == {}
    wait_lro(locations, jobs.delete(name=name).execute())
    with open(pids) as fh:
        started_pids = [int(line) for line in fh if line.strip()]
    assert len(started_pids) == 4
    for pid in started_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
