"""Broken inventories fail in the roles' validation, before the first API call, naming the variable."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

CASES = [
    ("invalid CIDR", {"gcp_foundation_subnet_cidr": "10.10.0.0/33"}, "gcp_foundation_subnet_cidr"),
    ("not a CIDR", {"gcp_foundation_pods_cidr": "pods"}, "gcp_foundation_pods_cidr"),
    ("public range", {"gcp_foundation_subnet_cidr": "8.8.8.0/24"}, "must be a private range"),
    ("overlapping ranges", {"gcp_foundation_pods_cidr": "10.10.0.0/16"}, "overlaps"),
    ("PSA overlaps services", {"gcp_foundation_psa_cidr": "10.30.0.0/16"}, "overlaps"),
    ("unknown region", {"gcp_foundation_region": "europe-west99"}, "gcp_foundation_region=europe-west99 is not a GCP region"),
    ("bad network name", {"gcp_foundation_network_name": "Prefect_VPC"}, "gcp_foundation_network_name is not a valid GCP name"),
    ("MTU out of range", {"gcp_foundation_mtu": 9000}, "gcp_foundation_mtu must be 1300-8896"),
    ("PSA too small", {"gcp_foundation_psa_cidr": "10.100.0.0/28"}, "must be a /16 to /24 range"),
    ("wrong type", {"gcp_foundation_flow_logs": "sometimes"}, "gcp_foundation_flow_logs"),
    ("bad routing mode", {"gcp_foundation_routing_mode": "WORLDWIDE"}, "gcp_foundation_routing_mode"),
    ("NAT without IPs", {"cloudrun_nat_ip_names": []}, "cloudrun_nat_ip_names is empty"),
    ("bad NAT IP name", {"cloudrun_nat_ip_names": ["NAT IP"]}, "cloudrun_nat_ip_names"),
]


@pytest.fixture(scope="module")
def inventory(sandbox, tmp_path_factory):
    ep = sandbox.endpoints()
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_auth_kind": "serviceaccount",
        "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"]}}}}))
    return str(path)


@pytest.mark.parametrize("case,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_before_any_api_call(sandbox, inventory, case, extra, expected):
    before = len(sandbox.log.entries)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "foundation.yml"), "-i", inventory,
         "-e", json.dumps(extra)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, "%s: the playbook should have failed:\n%s" % (case, out[-2000:])
    assert expected in " ".join(out.split()), "%s: message should name %r:\n%s" % (case, expected, out[-3000:])
    assert len(sandbox.log.entries) == before, "%s: an API call was made before validation failed" % case
