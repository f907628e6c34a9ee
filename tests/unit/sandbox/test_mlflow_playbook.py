"""playbooks/mlflow.yml through ansible-playbook against the sandbox, with inventories/mlflow_example layered on the
sandbox inventory: check mode plans the whole profile and writes nothing, the run converges it, a real MlflowClient
logs a run with an artifact through the converged server, a second run changes nothing, and
playbooks/mlflow_teardown.yml removes the server, its bucket binding and its service account, then changes nothing.
"""

import json
import os
import subprocess

import pytest

from tests.unit.conftest import REPO
from tests.unit.idempotence import changed_tasks, recap

from .test_mlflow_server import log_and_read_back
from .test_workloads import wait_for

pytest.importorskip("mlflow")

NS = "mlflow"


def play(sandbox, tmp_path, playbook, *args):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", SKYFORGE_POLL_FIRST="0.05",
               SKYFORGE_POLL_MAX="0.5", SKYFORGE_SANDBOX_DIR=sandbox.config.state_dir, PYTHONUNBUFFERED="1",
               GCP_PROJECT=sandbox.config.project, GCP_AUTH_KIND="serviceaccount")
    extra = {"gke_autopilot_kubeconfig_path": str(tmp_path / "kubeconfig-mlflow.json")}
    # The sandbox inventory supplies the endpoints and key; the example inventory, layered on top, the profile.
    inventories = os.path.join(REPO, "inventories")
    argv = ["ansible-playbook", os.path.join(REPO, "playbooks", playbook), "-i", os.path.join(inventories, "sandbox"),
            "-i", os.path.join(inventories, "mlflow_example"), "-e", json.dumps(extra)] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and recap(out), "%s %s failed:\n%s" % (playbook, " ".join(args), out[-5000:])
    return recap(out)[1], out


def deployer_writes(sandbox, start):
    return [e for e in sandbox.log.by_deployer(start) if e["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and not e["path"].split("?")[0].endswith((":getIamPolicy", ":testIamPermissions", "/token"))]


def members(policy):
    return sorted(m for b in (policy or {}).get("bindings", []) for m in b.get("members", []))


def test_mlflow_playbook_converges_proves_is_idempotent_and_tears_down(sandbox, tmp_path, monkeypatch):
    project = sandbox.config.project
    bucket = "%s-mlflow-ml" % project
    email = "mlflow-mlflow@%s.iam.gserviceaccount.com" % project
    member = "serviceAccount:%s" % email
    policies = sandbox.store.table("iam.policies")

    start = sandbox.log.mark()
    changed, out = play(sandbox, tmp_path, "mlflow.yml", "--check", "--diff")
    assert changed > 0 and "Would create, once the cluster and the Cloud SQL instance exist" in out, out[-3000:]
    assert not deployer_writes(sandbox, start), "check mode wrote: %r" % deployer_writes(sandbox, start)[:10]

    # What an earlier version of the role granted: object access on the whole project, which the run revokes.
    from sandbox.gcp.iam import get_policy

    owner = [{"role": "roles/owner", "members": ["serviceAccount:%s" % sandbox.apps["gcp"].auth.deployer_email]}]
    get_policy(sandbox, "projects/%s" % project, owner)["bindings"].append(
        {"role": "roles/storage.objectAdmin", "members": [member]})
    changed, out = play(sandbox, tmp_path, "mlflow.yml")
    assert changed > 0
    kube = sandbox.apps["kube"]
    api = next(kube.clusters[k] for k in kube.clusters if k.endswith("/clusters/mlflow"))
    wait_for(lambda: (api.get_object("deployments", NS, "mlflow-server").get("status") or {}).get(
        "readyReplicas") == 1, timeout=150, what="mlflow-server ready")
    # Object access on its bucket only: nothing for the server's account in the project's policy.
    assert member in members(policies["projects/_/buckets/%s" % bucket])
    assert member not in members(policies.get("projects/%s" % project))

    log_and_read_back(sandbox, bucket, tmp_path, monkeypatch)

    changed, out = play(sandbox, tmp_path, "mlflow.yml")
    assert changed == 0, "the second run must change nothing:\n%s" % changed_tasks(out)

    changed, out = play(sandbox, tmp_path, "mlflow_teardown.yml")
    assert changed > 0
    assert api.get_object("deployments", NS, "mlflow-server") is None
    assert member not in members(policies.get("projects/_/buckets/%s" % bucket))
    assert "projects/%s/serviceAccounts/%s" % (project, email) not in sandbox.store.table("iam.serviceAccounts")
    wait_for(lambda: not [p for p in api.find("pods", NS) if p["metadata"]["name"].startswith("mlflow-server-")],
             what="pods gone")

    changed, out = play(sandbox, tmp_path, "mlflow_teardown.yml")
    assert changed == 0, "a second teardown must change nothing:\n%s" % changed_tasks(out)
