"""Flow runs on Cloud Run end to end (issue 17 item 6): the whole site against the sandbox, then flow runs of its own.

The site's worker release is the real `cloud-run-v2` worker (prefect-gcp) polling the prefect_worker role's pool; it
submits each flow run to the sandbox's Cloud Run API at https://run.googleapis.com (googleapis front + CONNECT proxy,
Workload Identity through the pod's metadata server), the execution runs `prefect flow-run execute` as a process whose
traffic leaves through the egress proxy from the NAT IP, and the Cloudflare edge enforces Access before the server.
The must-fail cases change one thing each (the Access list, the pool's vpcAccess, the runtime account's secret access)
and look for the reason where an operator would: the execution's Completed condition or the flow run's state.
"""

import base64
import copy
import gzip
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from tests.unit.reliability.site_runner import REPO, run_site, site_command

NAME = "crf"
PREFECT_NS = "prefect"
SMOKE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                     "roles", "platform_verify", "files", "smoke_flow.py")
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@pytest.fixture(scope="module")
def site(sandbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cloud-run-flow")
    _changed, output = run_site(sandbox, NAME, tmp, timeout=1800)
    kube = sandbox.apps["kube"]
    [api] = [a for key, a in kube.clusters.items() if key.endswith("/clusters/%s" % NAME)]
    auth_secret = [s for s in api.find("secrets", PREFECT_NS) if "auth-string" in (s.get("data") or {})][0]
    auth = base64.b64decode(auth_secret["data"]["auth-string"]).decode()
    # Other sites of this session's sandbox may still run a prefect-server in namespace prefect: ask this cluster's.
    host, port = sandbox.resolve("prefect-server.%s.svc.cluster.local" % PREFECT_NS, 4200, cluster=api.key)
    nat = sorted(a["address"] for a in sandbox.store.table("compute.addresses").values()
                 if any("/routers/" in u for u in a.get("users", [])) and NAME in json.dumps(a))
    return {"output": output, "api": api, "auth": auth, "local": "http://%s:%d/api" % (host, port),
            "kubeconfig": str(tmp / ("kubeconfig-%s.json" % NAME)),
            "nat_ip": nat[0], "public": "https://%s.%s/api" % (NAME, sandbox.endpoints()["cloudflare_zone"])}


def call(site, method, path, body=None):
    req = urllib.request.Request(site["local"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Authorization": "Basic %s" %
                                          base64.b64encode(site["auth"].encode()).decode()})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return json.load(resp)


def pull_steps():
    """What the platform_verify role's default pull step does: write the flow's file in the run's directory."""
    with open(SMOKE, "rb") as fh:
        code = base64.b64encode(fh.read()).decode()
    return [{"prefect.deployments.steps.run_shell_script": {"script": (
        "python -c \"import base64, pathlib; pathlib.Path('smoke_flow.py').write_bytes(base64.b64decode('%s'))\""
        % code)}}]


def run_flow(site, tag, timeout=420):
    """A deployment on the Cloud Run pool (keeping its job, to look at), a run of it: its final state."""
    flow_id = call(site, "POST", "/flows/", {"name": "platform-smoke"})["id"]
    dep = call(site, "POST", "/deployments/", {
        "name": "crf-%s" % tag, "flow_id": flow_id, "entrypoint": "smoke_flow.py:smoke", "work_pool_name": "cloud-run",
        "pull_steps": pull_steps(), "job_variables": {"keep_job": True}})
    run_id = call(site, "POST", "/deployments/%s/create_flow_run" % dep["id"], {"parameters": {"greeting": tag}})["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = call(site, "GET", "/flow_runs/%s" % run_id)
        if run["state"]["type"] in TERMINAL:
            return run
        time.sleep(2)
    raise AssertionError("flow run %s (%s) did not finish in %ss: %s" % (run_id, tag, timeout, run["state"]))


def job_of(sandbox, run_id):
    """(job, executions) the worker created for the flow run, from the sandbox's Cloud Run API store."""
    for name, job in sandbox.store.table("run.jobs").items():
        env = job["template"]["template"]["containers"][0].get("env") or []
        if {"name": "PREFECT__FLOW_RUN_ID", "value": run_id} in env:
            execs = [e for n, e in sandbox.store.table("run.executions").items() if n.startswith(name + "/")]
            return job, execs
    raise AssertionError("no Cloud Run job carries flow run %s" % run_id)


def completed_condition(execution):
    return next(c for c in execution.get("conditions") or [] if c["type"] == "Completed")


def log_of(sandbox, execution):
    from sandbox.gcp.run_executions import log_path

    with open(log_path(sandbox.config.state_dir, execution["name"]), encoding="utf-8") as fh:
        return fh.read()


def test_the_site_smoke_flow_run_completed_in_the_cloud_run_pool(site):
    assert "ended Completed" in site["output"]
    pools = [p["name"] for p in call(site, "POST", "/work_pools/filter", {})]
    assert "sandbox-process" not in pools and "cloud-run" in pools
    deps = call(site, "POST", "/deployments/filter", {})
    assert {d["work_pool_name"] for d in deps if d["name"] == "smoke"} == {"cloud-run"}


def test_the_worker_submits_a_run_that_reaches_the_api_from_the_nat_ip(sandbox, site):
    run = run_flow(site, "through-nat")
    job, execs = job_of(sandbox, run["id"])
    assert run["state"]["type"] == "COMPLETED", (run["state"], [completed_condition(e) for e in execs])
    log = log_of(sandbox, execs[-1])
    assert "from %s -> 200" % site["nat_ip"] in log, log[-2000:]

    task = job["template"]["template"]
    assert task["vpcAccess"]["egress"] == "ALL_TRAFFIC" and task["vpcAccess"]["networkInterfaces"]
    env = {e["name"]: e for e in task["containers"][0]["env"]}
    assert env["PREFECT_API_URL"]["value"] == site["public"], "the public URL, not the worker's in-cluster one"
    dumped = json.dumps(job)
    assert "svc.cluster.local" not in dumped and "127." not in json.dumps(env.get("PREFECT_API_URL"))
    assert "valueSource" in env["PREFECT_API_AUTH_STRING"] and "value" not in env["PREFECT_API_AUTH_STRING"]
    password = site["auth"].split(":", 1)[1]
    assert site["auth"] not in dumped and password not in dumped, "no auth string in clear text"
    assert "CF-Access-Client-Secret" not in dumped
    assert set(env) & {"PREFECT_API_KEY", "PREFECT_CLIENT_CUSTOM_HEADERS"} <= {
        k for k, e in env.items() if "valueSource" in e}, "Access headers only by secret reference"


def test_without_the_nat_ip_on_the_access_list_the_run_fails_saying_why(sandbox, site):
    [allow] = [lst for lst in sandbox.store.table("cloudflare.gateway_lists").values()
               if lst["name"] == "%s-allowed-ips" % NAME]
    original = copy.deepcopy(allow["items"])
    nat = {site["nat_ip"], site["nat_ip"] + "/32"}
    assert nat & {i["value"] for i in original}, original
    allow["items"] = [i for i in original if i["value"] not in nat]
    try:
        run = run_flow(site, "no-nat")
    finally:
        allow["items"] = original
    _job, execs = job_of(sandbox, run["id"])
    assert run["state"]["type"] != "COMPLETED"
    cond = completed_condition(execs[-1])
    assert cond["state"] == "CONDITION_FAILED", cond
    assert "no Access policy" in cond["message"] and site["nat_ip"] in cond["message"], cond


def _pool(site):
    return call(site, "GET", "/work_pools/cloud-run")


def _set_template(site, template):
    call_patch = urllib.request.Request(
        site["local"] + "/work_pools/cloud-run", method="PATCH",
        data=json.dumps({"base_job_template": template}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Basic %s" %
                 base64.b64encode(site["auth"].encode()).decode()})
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(call_patch, timeout=30).close()


def test_a_template_without_vpc_access_leaves_from_a_google_address_and_fails(sandbox, site):
    original = _pool(site)["base_job_template"]
    broken = copy.deepcopy(original)
    broken["job_configuration"]["job_body"]["template"]["template"].pop("vpcAccess")
    _set_template(site, broken)
    try:
        run = run_flow(site, "no-vpc")
    finally:
        _set_template(site, original)
    job, execs = job_of(sandbox, run["id"])
    assert "vpcAccess" not in job["template"]["template"]
    assert run["state"]["type"] != "COMPLETED"
    cond = completed_condition(execs[-1])
    assert cond["state"] == "CONDITION_FAILED", cond
    assert "from 34.0.0.17 -> 403" in cond["message"] and "no Access policy" in cond["message"], cond


def test_an_auth_secret_the_runtime_account_may_not_read_fails_before_the_container(sandbox, site):
    policies = sandbox.store.table("iam.policies")
    project_policy_key = "projects/%s" % sandbox.config.project
    original = copy.deepcopy(policies[project_policy_key])
    runtime = "serviceAccount:%s-flows@" % NAME
    policy = copy.deepcopy(original)
    for b in policy.get("bindings") or []:
        if b["role"] == "roles/secretmanager.secretAccessor":
            b["members"] = [m for m in b["members"] if not m.startswith(runtime)]
    policies[project_policy_key] = policy
    try:
        run = run_flow(site, "no-secret")
    finally:
        policies[project_policy_key] = original
    _job, execs = job_of(sandbox, run["id"])
    assert run["state"]["type"] != "COMPLETED"
    cond = completed_condition(execs[-1])
    assert cond["state"] == "CONDITION_FAILED" and cond.get("reason") == "SECRETS_ACCESS_CHECK_FAILED", cond


def test_the_site_checks_each_role_s_inputs_early_and_on_entry_only(site):
    """site.yml's early pass checks every input before the first API call, so the plays' pre_tasks and the roles'
    entry do not check them again; a role whose inputs come from earlier roles (the NAT IPs, the ingress IP, the
    server's URLs) checks them again on entry, with the values those roles produced."""
    out = site["output"]
    twice = {"cloudflare_zero_trust": "Check the Zero Trust inputs",
             "prefect_worker": "Check the Prefect worker inputs", "platform_verify": "Check the verify inputs"}
    once = {"gcp_foundation": "Check names, region and ranges", "cloudsql": "Check the Cloud SQL inputs",
            "gke_autopilot": "Check the cluster inputs", "cloudrun_nat": "Check the NAT inputs",
            "tfc_agent": "Check the HCP Terraform agent inputs", "prefect_server": "Check the Prefect server inputs",
            "tfc_workspace_runs": "Check the components and their dependency graph"}
    counts = {role: out.count("TASK [skyforge.prefect_platform.%s : %s]" % (role, task))
              for role, task in list(twice.items()) + list(once.items())}
    assert counts == dict({r: 2 for r in twice}, **{r: 1 for r in once}), counts


def test_a_refused_access_token_fails_verify_on_the_health_check_and_starts_no_run(sandbox, site, tmp_path):
    """The smoke run is started before the health check, to overlap the checks with it; its error waits for the
    health check, so a refused service token fails with the message that says what to fix, and no run is started."""
    runs = len(call(site, "POST", "/flow_runs/filter", {}))
    argv, env = site_command(sandbox, NAME, tmp_path, "--tags", "verify",
                             platform_verify_access_client_id="refused.access",
                             platform_verify_access_client_secret="refused-Secret-0001")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "answered 403" in out and "Fix: 403 means Cloudflare Access refused the service token" in out, out[-3000:]
    assert out.index("TASK [skyforge.prefect_platform.platform_verify : The smoke deployment]") < \
        out.index("TASK [skyforge.prefect_platform.platform_verify : The API answers healthy on the public URL, "
                  "and refuses a caller without credentials]")
    assert "refused-Secret-0001" not in out
    assert len(call(site, "POST", "/flow_runs/filter", {})) == runs


def worker_releases(api):
    """{revision: status} of the prefect-worker release, from Helm's own labels on its release Secrets."""
    return {int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"]["status"]
            for s in api.find("secrets", PREFECT_NS)
            if (s["metadata"].get("labels") or {}).get("owner") == "helm"
            and s["metadata"]["labels"].get("name") == "prefect-worker"}


def run_worker_role(sandbox, site, tmp_path, **extra_vars):
    argv, env = site_command(sandbox, NAME, tmp_path, "--tags", "prefect_worker",
                             gke_autopilot_kubeconfig=site["kubeconfig"], **extra_vars)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    task = "TASK [skyforge.prefect_platform.prefect_worker : The prefect-worker release, when it is missing or differs]"
    assert out.count(task) == 1, out[-4000:]
    return re.search(r"^(ok|changed|skipping|fatal): ", out[out.index(task):], re.M).group(1)


def test_helm_runs_only_when_the_release_differs_from_its_values_chart_or_status(sandbox, site, tmp_path):
    """The worker role reads its release's record once and skips kubernetes.core.helm (four helm invocations) when
    one deployed revision of the pinned chart carries exactly the role's values; a values change, or a failed
    revision beside the deployed one, runs Helm as before."""
    api = site["api"]
    before = worker_releases(api)
    deployed = max(before)
    assert before[deployed] == "deployed", before
    assert run_worker_role(sandbox, site, tmp_path) == "skipping"
    assert worker_releases(api) == before

    more = {"worker": {"config": {"limit": 7}}}
    assert run_worker_role(sandbox, site, tmp_path, prefect_worker_extra_values=more) == "changed"
    upgraded = worker_releases(api)
    assert upgraded[deployed + 1] == "deployed" and upgraded[deployed] == "superseded", upgraded
    assert run_worker_role(sandbox, site, tmp_path, prefect_worker_extra_values=more) == "skipping"

    # An upgrade that failed: Helm keeps the deployed revision and labels the new one failed. The module decides then.
    record = next(s for s in api.find("secrets", PREFECT_NS)
                  if s["metadata"]["name"] == "sh.helm.release.v1.prefect-worker.v%d" % (deployed + 1))
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(record["data"]["release"]))))
    release["version"] = deployed + 2
    release["info"]["status"] = "failed"
    name = "sh.helm.release.v1.prefect-worker.v%d" % (deployed + 2)
    failed = {"apiVersion": "v1", "kind": "Secret", "type": record["type"],
              "metadata": {"name": name, "namespace": PREFECT_NS,
                           "labels": dict(record["metadata"]["labels"], status="failed", version=str(deployed + 2))},
              "data": {"release": base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode())))
                       .decode()}}
    api.put_object("secrets", PREFECT_NS, failed)
    try:
        assert run_worker_role(sandbox, site, tmp_path, prefect_worker_extra_values=more) in ("ok", "changed")
    finally:
        api.remove_object("secrets", PREFECT_NS, name)
    # Back to the site's values: an upgrade, then nothing again.
    assert run_worker_role(sandbox, site, tmp_path) == "changed"
    assert run_worker_role(sandbox, site, tmp_path) == "skipping"


def run_tags(sandbox, site, tmp_path, tags, env_extra=None, **extra_vars):
    """`site.yml --tags <tags>` against the module's site: its output, and the flow runs it created."""
    before = call(site, "POST", "/flow_runs/count", {})
    argv, env = site_command(sandbox, NAME, tmp_path, "--tags", tags, **extra_vars)
    env.update(env_extra or {})
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    new = call(site, "POST", "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_DESC",
                                                   "limit": call(site, "POST", "/flow_runs/count", {}) - before})
    return out, new


def task_status(out, role, name):
    task = "TASK [skyforge.prefect_platform.%s : %s]" % (role, name)
    assert out.count(task) == 1, (task, out[-3000:])
    return re.search(r"^(ok|changed|skipping|fatal|included)", out[out.index(task) + len(task):], re.M).group(1)


EARLY_NOTE = "(started at the start of this run; no task changed anything after it started)"
EARLY_READ = ("platform_verify", "Read the basic-auth password and the Access service token once, for this run")
TOKEN_READ = ("cloudflare_zero_trust",
              "Read the stored service token (a read never creates the secret; site.yml's first play may have read it)")


def test_a_run_that_changes_nothing_follows_the_smoke_run_it_started_first(sandbox, site, tmp_path):
    """site.yml starts the smoke run before its other plays and, when the change_ledger callback counted no change
    after that, follows it instead of starting another: one run, and the secrets it read are not read again."""
    out, new = run_tags(sandbox, site, tmp_path, "verify,nat,cloudflare")
    assert re.search(r"changed=0\b", out), out[-2000:]
    assert len(new) == 1 and new[0]["state"]["type"] == "COMPLETED", [(r["name"], r["state"]["type"]) for r in new]
    assert ("smoke flow run %s ended Completed" % new[0]["name"]) in out and EARLY_NOTE in out, out[-2000:]
    assert task_status(out, *EARLY_READ) == "ok"
    assert task_status(out, *TOKEN_READ) == "skipping", "the token read at the start is handed on"
    assert task_status(out, "platform_verify", "Start a smoke flow run first, followed to its end after the other "
                       "checks") == "skipping"
    assert site["auth"].split(":", 1)[1] not in out


def test_a_change_after_the_early_start_gets_a_smoke_run_of_its_own(sandbox, site, tmp_path):
    """A task that changes anything after the early start makes that run stale: verify starts one against the end
    state and follows that one."""
    try:
        out, new = run_tags(sandbox, site, tmp_path, "verify,nat,cloudflare", cloudflare_zero_trust_session_duration="12h")
    finally:
        undo, _undone = run_tags(sandbox, site, tmp_path, "verify,nat,cloudflare")
    assert not re.search(r"changed=0\b", out), out[-2000:]
    assert len(new) == 2, [(r["name"], r["state"]["type"]) for r in new]
    latest, early = new
    assert ("smoke flow run %s ended Completed" % latest["name"]) in out and EARLY_NOTE not in out, out[-2000:]
    assert early["name"] not in out.split("What was verified", 1)[1]
    assert EARLY_NOTE not in undo  # the undo changed the policy back, so it ran its own smoke run too


def test_without_the_change_ledger_the_smoke_run_is_started_at_the_end(sandbox, site, tmp_path):
    """Without the callback nobody can tell whether an early run still holds: nothing is started early, nothing read
    early, and verify starts and follows its own run, as it did before the early start existed."""
    out, new = run_tags(sandbox, site, tmp_path, "verify,nat,cloudflare",
                        env_extra={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})
    assert re.search(r"changed=0\b", out), out[-2000:]
    assert len(new) == 1 and EARLY_NOTE not in out and ("smoke flow run %s ended Completed" % new[0]["name"]) in out
    assert ("TASK [skyforge.prefect_platform.%s : %s]" % EARLY_READ) not in out, "the role ended before it"
    assert task_status(out, *TOKEN_READ) == "ok"
