"""prefect_server's origin lock, run as Ansible runs it: the role's own tasks (taken from present.yml and absent.yml)
against the sandbox's GCP and a sandbox cluster. The rest of the role (Cloud SQL, helm) is covered elsewhere."""

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from sandbox.cloudflare.app import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
from tests.unit.idempotence import recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "prefect_server")
LOCK_TASKS = ("Lock the origin", "Say why the origin is not locked", "Read the BackendConfig",
              "BackendConfig that attaches")
UNLOCK_TASKS = ("Remove the origin's Cloud Armor policy",)
SECRET_TASKS = ("Read the BackendConfig that attaches the policy and the Secrets", "Database connection")
DEFAULT = 2147483647

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.gcp:
      project: "{{ gcp_project }}"
      auth_kind: serviceaccount
      service_account_file: "{{ gcp_service_account_file }}"
      api_endpoint_template: "{{ gcp_api_endpoint_template }}"
  vars_files:
    - %(defaults)s
    - %(vars)s
  tasks:
    - name: The role's tasks
      ansible.builtin.include_tasks: "{{ tasks_file }}"
"""


def role_tasks(path, names):
    with open(os.path.join(ROLE, "tasks", path)) as fh:
        tasks = yaml.safe_load(fh)
    picked = [t for t in tasks if t["name"].startswith(names)]
    assert len(picked) == len(names), "the role's %s no longer has the tasks %r" % (path, names)
    return picked


@pytest.fixture(scope="module")
def setup(sandbox, tmp_path_factory):
    gcp = sandbox.apps["gcp"]
    gcp.enabled["projects/%s/services/compute.googleapis.com" % gcp.project_number] = True
    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/role-lock-%d" % int(time.time() * 1000)
    info = kube.register_cluster(key, "172.16.9.4")
    api = kube.clusters[key]
    api.put_object("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prefect"}})
    tmp = tmp_path_factory.mktemp("lock")
    kc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
          "clusters": [{"name": "c", "cluster": {"server": "https://172.16.9.4",
                                                 "certificate-authority-data": info["ca_certificate"],
                                                 "proxy-url": sandbox.url("kube")}}],
          "users": [{"name": "u", "user": {"token": gcp.auth.mint("deployer@p.iam.gserviceaccount.com")}}],
          "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    (tmp / "kubeconfig").write_text(json.dumps(kc))
    (tmp / "lock.yml").write_text(yaml.safe_dump(role_tasks("present.yml", LOCK_TASKS), sort_keys=False))
    (tmp / "unlock.yml").write_text(yaml.safe_dump(role_tasks("absent.yml", UNLOCK_TASKS), sort_keys=False))
    (tmp / "secrets.yml").write_text(yaml.safe_dump(role_tasks("present.yml", SECRET_TASKS), sort_keys=False))
    (tmp / "play.yml").write_text(PLAYBOOK % {"defaults": os.path.join(ROLE, "defaults", "main.yml"),
                                              "vars": os.path.join(ROLE, "vars", "main.yml")})
    ep = sandbox.endpoints()
    inventory = tmp / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"], "skyforge_name": "rl",
        "gke_autopilot_kubeconfig": str(tmp / "kubeconfig")}}}}))
    yield tmp, api
    kube.unregister_cluster(key)


def play(setup, tasks_file, extra, *flags):
    tmp, _api = setup
    cmd = ["ansible-playbook", str(tmp / "play.yml"), "-i", str(tmp / "hosts.yml"),
           "-e", json.dumps(dict(extra, tasks_file=str(tmp / tasks_file))), "--diff", *flags]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return recap(out)[1], out


def test_role_locks_the_origin_idempotently_and_removes_the_policy(sandbox, setup):
    _tmp, api = setup
    policies = sandbox.store.table("compute.securityPolicies")
    key = "projects/%s/global/securityPolicies/rl-origin-cloudflare-only" % sandbox.config.project
    ranges = {"cloudflare_zero_trust_edge_ranges": CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6}

    changed, _out = play(setup, "lock.yml", ranges)
    assert changed == 2, "the policy and the BackendConfig are created"
    rules = policies[key]["rules"]
    assert [r["priority"] for r in rules] == [1000, 1001, 1002, DEFAULT] and rules[-1]["action"] == "deny(403)"
    bc = api.find("backendconfigs", "prefect")
    assert [b["metadata"]["name"] for b in bc] == ["prefect-server-backend"]
    assert bc[0]["spec"] == {"securityPolicy": {"name": "rl-origin-cloudflare-only"}}

    mark = sandbox.log.mark()
    assert play(setup, "lock.yml", ranges)[0] == 0, "a second run changes nothing"
    kube = [e for e in sandbox.log.entries[mark:] if e["family"] == "kube" and e["method"] != "CONNECT"]
    assert [e["method"] for e in kube if e["method"] != "GET"] == [], "objects that match are not patched"
    # One read each: the BackendConfig, the Secrets this role keeps, the release's record (Helm's release Secrets).
    assert [e["path"].split("?")[0] for e in kube if e["path"] != "/version"] == [
        "/apis/cloud.google.com/v1/namespaces/prefect/backendconfigs/prefect-server-backend",
        "/api/v1/namespaces/prefect/secrets", "/api/v1/namespaces/prefect/secrets"], "one read each"
    assert play(setup, "lock.yml", ranges, "--check")[0] == 0, "nor does a check run"

    # Without the ranges the role says so and leaves the attached policy alone.
    changed, out = play(setup, "lock.yml", {})
    assert changed == 0 and "The origin is NOT locked to Cloudflare" in out
    assert api.find("backendconfigs", "prefect")[0]["spec"] == {"securityPolicy": {"name": "rl-origin-cloudflare-only"}}
    assert key in policies

    assert play(setup, "unlock.yml", {})[0] == 1 and key not in policies
    assert play(setup, "unlock.yml", {})[0] == 0


def test_cluster_secrets_are_read_once_and_written_only_when_they_differ(sandbox, setup):
    _tmp, api = setup
    passwords = {"prefect_server_auth_password": {"secret_value": "auth-Pw-0001"},
                 "prefect_server_db_password": {"secret_value": "db:Pw@0002"},
                 "prefect_server_db_host": "10.9.0.3"}

    def secrets():
        return dict((o["metadata"]["name"], o) for o in api.find("secrets", "prefect"))

    def kube_since(mark):
        return [e for e in sandbox.log.entries[mark:] if e["family"] == "kube" and e["method"] != "CONNECT"]

    changed, out = play(setup, "secrets.yml", passwords, "--check", "-v")
    assert changed == 1 and not secrets(), "check mode predicts (a server-side dry run), stores nothing"
    changed, out = play(setup, "secrets.yml", passwords, "-v")
    assert changed == 1
    got = secrets()
    assert got["prefect-basic-auth"]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "skyforge"}
    assert base64.b64decode(got["prefect-basic-auth"]["data"]["auth-string"]).decode() == "admin:auth-Pw-0001"
    assert base64.b64decode(got["prefect-server-database"]["data"]["connection-string"]).decode() == \
        "postgresql+asyncpg://prefect:db%3APw%400002@10.9.0.3:5432/prefect?ssl=require"
    assert "last-applied-configuration" not in json.dumps(got["prefect-basic-auth"]["metadata"]), "no copy in annotations"

    mark = sandbox.log.mark()
    changed, out = play(setup, "secrets.yml", passwords, "-v")
    assert changed == 0
    reads = [e for e in kube_since(mark) if "/secrets" in e["path"]]
    assert [e["method"] for e in reads] == ["GET", "GET"], \
        "one list reads both Secrets, one the release's record, and nothing is written"

    rotated = dict(passwords, prefect_server_auth_password={"secret_value": "auth-Pw-0003"})
    mark = sandbox.log.mark()
    changed, out = play(setup, "secrets.yml", rotated, "-v")
    writes = [e for e in kube_since(mark) if e["method"] != "GET"]
    assert changed == 1 and len(writes) == 1 and "/secrets/prefect-basic-auth" in writes[0]["path"]
    assert base64.b64decode(secrets()["prefect-basic-auth"]["data"]["auth-string"]).decode() == "admin:auth-Pw-0003"
    for value in ("auth-Pw-0001", "auth-Pw-0003", "db:Pw@0002", "db%3APw%400002"):
        assert value not in out
