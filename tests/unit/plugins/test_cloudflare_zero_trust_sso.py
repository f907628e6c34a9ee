"""Role cloudflare_zero_trust with SSO inputs: identity providers and IdP groups admitted next to the service token
and the NAT IP list; idempotent; the client secret never printed; bad inputs refused before any API call."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.unit.idempotence import changed_tasks, recap
from unit.conftest import specs_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SECRET = "okta-role-secret-5a7d"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.cloudflare:
      api_token: "{{ cloudflare_api_token }}"
      base_url: "{{ cloudflare_base_url }}"
      account_id: "{{ cloudflare_account_id }}"
  roles:
    - role: skyforge.prefect_platform.cloudflare_zero_trust
"""

SSO = {
    "cloudflare_zero_trust_identity_providers": [
        {"name": "sso-role-okta", "type": "okta", "client_id": "0oa-role", "client_secret": SECRET,
         "config": {"okta_account": "https://example.okta.com"}}],
    "cloudflare_zero_trust_allowed_groups": [{"identity_provider": "sso-role-okta", "group": "prefect-operators"}],
}


@pytest.fixture(scope="module")
def setup(sandbox, tmp_path_factory):
    specs_path("cloudflare", "openapi.subset.dns-access-gateway-lists.json")
    ep = sandbox.endpoints()
    tmp = tmp_path_factory.mktemp("zt-sso")
    inventory = tmp / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "cloudflare_api_token": ep["cloudflare_api_token"], "cloudflare_base_url": ep["cloudflare_base_url"],
        "cloudflare_account_id": ep["cloudflare_account_id"], "cloudflare_zone": ep["cloudflare_zone"],
        "skyforge_name": "ztsso", "cloudrun_nat_ips": ["203.0.113.5"],
        "cloudflare_zero_trust_origin_ip": "203.0.113.70"}}}}))
    playbook = tmp / "play.yml"
    playbook.write_text(PLAYBOOK)
    return str(inventory), str(playbook)


def play(setup, extra):
    inventory, playbook = setup
    cmd = ["ansible-playbook", playbook, "-i", inventory, "-e", json.dumps(extra), "--diff", "-v"]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_role_admits_idp_groups_beside_token_and_ip_list(sandbox, setup):
    cf = sandbox.apps["cloudflare"]
    # Without SSO inputs the role does what it always did: no provider, no people policy, every IdP allowed.
    rc, out = play(setup, {})
    assert rc == 0, out[-3000:]
    app = [a for a in cf.apps.values() if a["name"] == "ztsso"][0]
    assert [cf.policies[link["id"]]["name"] for link in app["policies"]] == ["ztsso-automation", "ztsso-allowed-ips"]
    assert app["allowed_idps"] == [] and not [p for p in cf.policies.values() if p["name"] == "ztsso-people"]

    rc, out = play(setup, SSO)
    assert rc == 0, out[-3000:]
    assert SECRET not in out
    rc, again = play(setup, SSO)
    assert rc == 0 and recap(again)[1] == 0, changed_tasks(again)
    assert SECRET not in again

    app = [a for a in cf.apps.values() if a["name"] == "ztsso"][0]
    idp = [i for i in cf.idps.values() if i["name"] == "sso-role-okta"][0]
    names = [cf.policies[link["id"]]["name"] for link in app["policies"]]
    assert names == ["ztsso-automation", "ztsso-allowed-ips", "ztsso-people"], "automation's policies stay first"
    assert app["allowed_idps"] == [idp["id"]] and cf.idp_secrets[idp["id"]] == SECRET
    people = [p for p in cf.policies.values() if p["name"] == "ztsso-people"][0]
    assert people["decision"] == "allow"
    assert people["include"] == [{"okta": {"email": "prefect-operators", "connection_id": idp["id"]}}]

    # The edge's login admits a member of the group, and refuses anyone else.
    url = sandbox.edge.url_for("ztsso." + cf.zone_name)
    for groups, status in ((["prefect-operators"], 200), (["finance"], 403)):
        body = json.dumps({"identity_provider": "sso-role-okta", "email": "ada@example.com", "groups": groups})
        req = urllib.request.Request(url + "/cdn-cgi/access/login", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Sandbox-Client-IP": "192.0.2.1"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                got = resp.status
        except urllib.error.HTTPError as err:
            got = err.code
        assert got == status, groups


def test_role_refuses_bad_sso_inputs_before_any_call(sandbox, setup):
    mark = sandbox.log.mark()
    bad = {
        "cloudflare_zero_trust_identity_providers": [
            {"name": "o", "type": "oidc", "client_id": "c", "config": {}},
            {"name": "k", "type": "okta", "config": {}}],
        "cloudflare_zero_trust_allowed_groups": [{"identity_provider": "o", "group": "ops"},
                                                 {"identity_provider": "nope", "group": "devs"}],
    }
    rc, out = play(setup, bad)
    assert rc != 0
    assert "k needs client_id" in out
    assert "group ops is of o, an oidc provider" in " ".join(out.split())
    assert "names identity provider nope, which is not in" in " ".join(out.split())
    assert [e for e in sandbox.log.entries[mark:] if e["family"] == "cloudflare"] == []
