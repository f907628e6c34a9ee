"""Role cloudflare_zero_trust against the sandbox: converges, is idempotent, stores the token, and the edge enforces it."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.unit.idempotence import recap
from unit.conftest import specs_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.gcp: "{{ skyforge_gcp_auth }}"
    group/skyforge.prefect_platform.cloudflare: "{{ skyforge_cloudflare_auth }}"
  vars:
    skyforge_gcp_auth:
      project: "{{ gcp_project }}"
      auth_kind: serviceaccount
      service_account_file: "{{ gcp_service_account_file }}"
      api_endpoint_template: "{{ gcp_api_endpoint_template }}"
    skyforge_cloudflare_auth:
      api_token: "{{ cloudflare_api_token }}"
      base_url: "{{ cloudflare_base_url }}"
      account_id: "{{ cloudflare_account_id }}"
  pre_tasks:
    - name: Validate first
      ansible.builtin.include_role:
        name: skyforge.prefect_platform.cloudflare_zero_trust
        tasks_from: validate
  roles:
    - role: skyforge.prefect_platform.cloudflare_zero_trust
  post_tasks:
    - name: Write the facts
      ansible.builtin.copy:
        dest: "{{ facts_path }}"
        content: "{{ {'app': cloudflare_zero_trust_app | default(None),
                      'token_id': cloudflare_zero_trust_service_token_id | default(None),
                      'ranges': cloudflare_zero_trust_edge_ranges | default(None)} | to_json }}"
      when: cloudflare_zero_trust_state | default('present') == 'present'
"""


@pytest.fixture(scope="module")
def setup(sandbox, tmp_path_factory):
    specs_path("cloudflare", "openapi.subset.dns-access-gateway-lists.json")
    gcp = sandbox.apps["gcp"]
    gcp.enabled["projects/%s/services/secretmanager.googleapis.com" % gcp.project_number] = True
    ep = sandbox.endpoints()
    tmp = tmp_path_factory.mktemp("zt")
    inventory = tmp / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"],
        "cloudflare_api_token": ep["cloudflare_api_token"], "cloudflare_base_url": ep["cloudflare_base_url"],
        "cloudflare_account_id": ep["cloudflare_account_id"], "cloudflare_zone": ep["cloudflare_zone"],
        "skyforge_name": "zt", "cloudrun_nat_ips": ["203.0.113.5"], "facts_path": str(tmp / "facts.json")}}}}))
    playbook = tmp / "play.yml"
    playbook.write_text(PLAYBOOK)
    return ep, str(inventory), str(playbook), tmp


def play(setup, extra, check=False):
    _ep, inventory, playbook, _tmp = setup
    cmd = ["ansible-playbook", playbook, "-i", inventory, "-e", json.dumps(extra), "--diff", "-v"]
    if check:
        cmd.append("--check")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_role_converges_and_the_edge_enforces_it(sandbox, setup):
    ep, _inv, _pb, tmp = setup
    extra = {"cloudflare_zero_trust_origin_ip": "203.0.113.80", "cloudflare_zero_trust_operator_cidrs": ["198.51.100.0/24"],
             "cloudflare_zero_trust_token_secret": "zt-access-token"}
    rc, out = play(setup, extra, check=True)
    assert rc == 0, out[-3000:]
    rc, out = play(setup, extra)
    assert rc == 0, out[-3000:]
    facts = json.loads((tmp / "facts.json").read_text())
    assert facts["app"]["domain"] == "zt." + ep["cloudflare_zone"]
    assert [p["name"] for p in facts["app"]["policies"]] == ["zt-automation", "zt-allowed-ips"]
    assert "173.245.48.0/20" in facts["ranges"] and "2400:cb00::/32" in facts["ranges"]
    cf = sandbox.apps["cloudflare"]
    token_id = facts["token_id"]
    assert token_id in cf.service_tokens
    secret = cf.secrets[token_id]
    assert secret not in out, "the service token secret never reaches the output"

    from sandbox.gcp.secretmanager import latest_payload

    stored = json.loads(latest_payload(sandbox, ep["gcp_project"], "zt-access-token"))
    assert stored == {"client_id": cf.service_tokens[token_id]["client_id"], "client_secret": secret}
    lst = [l for l in cf.lists.values() if l["name"] == "zt-allowed-ips"][0]
    assert sorted(i["value"] for i in lst["items"]) == ["198.51.100.0/24", "203.0.113.5/32"]

    rc, again = play(setup, extra)
    assert rc == 0 and recap(again)[1] == 0, again[-3000:]

    url = cf.edge_url("zt." + ep["cloudflare_zone"])
    assert url, "the proxied record is served at the edge"
    assert _status(url, {"X-Sandbox-Client-IP": "192.0.2.77"}) == 403
    # Admitted, then the edge looks for the origin; nothing serves 203.0.113.80:80 here.
    assert _status(url, {"X-Sandbox-Client-IP": "203.0.113.5"}) == 502
    assert _status(url, {"X-Sandbox-Client-IP": "192.0.2.77", "CF-Access-Client-Id": stored["client_id"],
                         "CF-Access-Client-Secret": stored["client_secret"]}) == 502

    rc, out = play(setup, dict(extra, cloudflare_zero_trust_state="absent"))
    assert rc == 0, out[-3000:]
    # Other tests share this sandbox: only what this role created must be gone.
    assert not [a for a in cf.apps.values() if a.get("domain", "").startswith("zt.")]
    assert not [l for l in cf.lists.values() if l["name"] == "zt-allowed-ips"]
    assert cf.edge_url("zt." + ep["cloudflare_zone"]) is None


@pytest.mark.parametrize("extra,expected", [
    ({"cloudflare_zero_trust_origin_ip": "not-an-ip"}, "cloudflare_zero_trust_origin_ip=not-an-ip is not an IPv4 address"),
    ({"cloudflare_zero_trust_origin_ip": "203.0.113.80", "cloudflare_zero_trust_hostname": "x.other.example"},
     "is not in the zone"),
    ({"cloudflare_zero_trust_origin_ip": "203.0.113.80", "cloudflare_zero_trust_allowed_cidrs": []},
     "cloudflare_zero_trust_allowed_cidrs is empty"),
    ({"cloudflare_zero_trust_origin_ip": "203.0.113.80", "cloudflare_zero_trust_operator_cidrs": ["10.0.0.1/8"]},
     "10.0.0.1/8 is not an IPv4 CIDR"),
])
def test_bad_input_fails_before_any_api_call(sandbox, setup, extra, expected):
    before = sandbox.log.mark()
    rc, out = play(setup, extra)
    assert rc != 0 and expected in " ".join(out.split()), out[-3000:]
    assert len(sandbox.log.entries) == before


def _status(url, headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/api/health", headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code
