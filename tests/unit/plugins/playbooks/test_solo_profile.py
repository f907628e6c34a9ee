"""The solo profile (inventories/solo, playbooks/solo.yml) against the sandbox: Autopilot, one bucket with a lifecycle
rule, one repository and nothing else; a second run changes nothing; bad ML inputs fail before any API call."""

import json
import os
import subprocess

from ...idempotence import changed_tasks, recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def solo(sandbox, tmp_path, playbook="solo.yml", **extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", SKYFORGE_POLL_FIRST="0.05",
               SKYFORGE_POLL_MAX="0.5", SKYFORGE_SANDBOX_DIR=sandbox.config.state_dir, PYTHONUNBUFFERED="1",
               GCP_PROJECT=sandbox.config.project, GCP_AUTH_KIND="serviceaccount")
    extra.setdefault("gke_autopilot_kubeconfig_path", str(tmp_path / "kubeconfig-solo.json"))
    # The sandbox inventory supplies the endpoints and key; the solo inventory, layered on top, the profile.
    inventories = os.path.join(REPO, "inventories")
    argv = ["ansible-playbook", os.path.join(REPO, "playbooks", playbook), "-i", os.path.join(inventories, "sandbox"),
            "-i", os.path.join(inventories, "solo"), "-e", json.dumps(extra)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_solo_profile_converges_with_only_its_resources(sandbox, tmp_path):
    code, out = solo(sandbox, tmp_path)
    assert code == 0, out[-4000:]
    project = sandbox.config.project
    buckets = sandbox.store.table("storage.buckets")
    bucket = buckets["%s-solo-ml" % project]
    assert bucket["lifecycle"] == {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30}}]}
    assert bucket["iamConfiguration"]["publicAccessPrevention"] == "enforced"
    repo = sandbox.store.table("artifactregistry.repositories")[
        "projects/%s/locations/europe-west1/repositories/solo-images" % project]
    assert repo["format"] == "DOCKER" and set(repo["cleanupPolicies"]) == {"delete-untagged", "keep-recent"}
    assert any(k.endswith("/clusters/solo") for k in sandbox.store.table("container.clusters"))
    assert not any("/solo" in k for k in sandbox.store.table("sqladmin.instances"))
    assert not any("solo" in k for k in sandbox.store.table("cloudkms.cryptoKeys"))

    code, out = solo(sandbox, tmp_path)
    assert code == 0, out[-4000:]
    assert recap(out)[1] == 0, "the second run must change nothing:\n%s" % changed_tasks(out)


def test_bad_ml_inputs_fail_before_any_api_call(sandbox, tmp_path):
    for extra, text in (({"ml_artifacts_bucket_name": "Solo_Models"}, "ml_artifacts_bucket_name='Solo_Models'"),
                        ({"ml_artifacts_bucket_delete_after_days": 0}, "ml_artifacts_bucket_delete_after_days=0"),
                        ({"ml_artifacts_repository_keep_recent": 0}, "ml_artifacts_repository_keep_recent=0")):
        before = sandbox.log.mark()
        code, out = solo(sandbox, tmp_path, "ml_artifacts.yml", **extra)
        assert code != 0 and text in " ".join(out.split()), out[-3000:]
        assert not sandbox.log.by_deployer(before), "validation must fail before the first API call"
