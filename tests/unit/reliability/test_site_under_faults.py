"""The site converges through throttling, 5xx and dropped connections, without duplicates, and re-runs clean."""

import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run_site(inventory):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", SKYFORGE_POLL_FIRST="0.05", SKYFORGE_POLL_MAX="0.5")
    proc = subprocess.run(["ansible-playbook", os.path.join(REPO, "site.yml"), "-i", inventory,
                           "--skip-tags", "prefect,verify,tfc,edge"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert proc.returncode == 0 and recap, proc.stdout[-4000:] + proc.stderr[-2000:]
    return int(recap.group(2)), proc.stdout + proc.stderr


def test_site_converges_under_faults(sandbox, tmp_path):
    ep = sandbox.endpoints()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_auth_kind": "serviceaccount",
        "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"],
        "skyforge_name": "faulty"}}}}))
    faults = sandbox.faults
    before = sum(faults.injected.values())
    faults.rng.seed(11)
    faults.kinds = ("429", "500", "503", "drop")
    faults.rate = 0.10
    try:
        changed, first = run_site(str(inventory))
        assert changed > 0
        changed_again, second = run_site(str(inventory))
    finally:
        faults.rate = 0.0
        faults.kinds = faults.KINDS
    injected = sum(faults.injected.values()) - before
    assert injected >= 5, "too few faults were injected (%d) for this test to mean anything" % injected
    assert changed_again == 0, "a second run under faults must change nothing:\n" + second[-3000:]
    inv = sandbox.store.inventory()
    mine = {t: [k for k in keys if "faulty" in k] for t, keys in inv.items()}
    assert len(mine["compute.networks"]) == 1 and len(mine["compute.subnetworks"]) == 1
    assert len(mine["compute.routers"]) == 1 and len(mine["sqladmin.instances"]) == 1
    assert len(mine["compute.addresses"]) == 2, "one PSA range and one NAT IP, no duplicates: %r" % mine["compute.addresses"]
    with open(os.path.join(sandbox.config.state_dir, "faults-survived.json"), "w") as fh:
        json.dump({"injected": injected, "by_kind": faults.injected}, fh)
