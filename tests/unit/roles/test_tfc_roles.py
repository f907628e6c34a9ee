"""tfc_agent and tfc_workspace_runs against the sandbox, plus the example components and the component graph filter.

The lifecycle tests share one module fixture and run in file order: apply (agent idle, workspaces applied on it,
outputs as facts), a second run that changes nothing, a token rotation, then removal of everything.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.unit.conftest import specs_path
from tests.unit.idempotence import recap as playbook_recap
from tests.unit.plugins.modules.tfc_helpers import GRAPH_TF

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COMPONENTS = os.path.join(REPO, "roles", "tfc_workspace_runs", "files", "components")
TFC_SPEC = ("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")
SENSITIVE = "tfcr-sensitive-description-6d1f"

AGENT_VARS = {
    "skyforge_name": "tfcr",
    "tfc_agent_region": "europe-west1",
    "tfc_agent_network": "tfcr-vpc",
    "tfc_agent_subnetwork": "tfcr-subnet",
    "tfc_agent_iap_ssh": True,
    "tfc_agent_wait_timeout": 60,
    "tfc_agent_project_roles": ["roles/storage.admin"],
    "tfc_workspace_runs_timeout": 120,
}
RUN_COMPONENTS = [
    # Listed dependent-first: the role must reorder them.
    {"name": "registry", "config_dir": "artifact_registry", "depends_on": ["bucket"],
     "variables": [{"key": "project", "value": "{{ gcp_project }}"},
                   {"key": "location", "value": "europe-west1"},
                   {"key": "repository_id", "value_from": "bucket.bucket_name"},
                   {"key": "TF_LOG", "value": "INFO", "category": "env"},
                   {"key": "description", "value": SENSITIVE, "sensitive": True}]},
    {"name": "bucket", "config_dir": "gcs_bucket",
     "variables": [{"key": "project", "value": "{{ gcp_project }}"},
                   {"key": "bucket_name", "value": "tfcr-results"},
                   {"key": "retention_days", "value": 7},
                   {"key": "versioning", "value": True}]},
]

SETUP = """
- name: Foundation pieces the agent needs (network, subnet, Cloud NAT), small
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.gcp: "{{ skyforge_gcp_auth }}"
  tasks:
    - skyforge.prefect_platform.gcp_project_services:
        services: [compute.googleapis.com, secretmanager.googleapis.com, iam.googleapis.com]
    - skyforge.prefect_platform.gcp_network: {name: tfcr-vpc}
    - skyforge.prefect_platform.gcp_subnetwork:
        {name: tfcr-subnet, region: europe-west1, network: tfcr-vpc, ip_cidr_range: 10.213.0.0/28}
    - skyforge.prefect_platform.gcp_address: {name: tfcr-nat-ip, region: europe-west1}
    - skyforge.prefect_platform.gcp_router_nat:
        {router: tfcr-router, name: tfcr-nat, region: europe-west1, network: tfcr-vpc, nat_ips: [tfcr-nat-ip],
         subnetworks: [tfcr-subnet]}
"""

WRAPPER = """
- name: The playbook under test
  ansible.builtin.import_playbook: %(playbook)s
- name: Hand the facts to the test
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write them
      ansible.builtin.copy:
        dest: %(facts)s
        content: >-
          {{ {'pool_id': tfc_agent_pool_id | default(none), 'info': tfc_agent_info | default(none),
              'outputs': tfc_workspace_runs_outputs | default(none)} | to_json }}
      changed_when: false
      tags: [always]
"""

# Teardown order: the workspaces (destroy runs need the agent; the pool cannot go while workspaces use it).
TEARDOWN = """
- name: Remove the workspaces, then the agent
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.gcp: "{{ skyforge_gcp_auth }}"
    group/skyforge.prefect_platform.tfc: "{{ skyforge_tfc_auth }}"
  roles:
    - role: skyforge.prefect_platform.tfc_workspace_runs
      tfc_workspace_runs_state: absent
    - role: skyforge.prefect_platform.tfc_agent
      tfc_agent_state: absent
"""


# ---- the example components --------------------------------------------------------------------------------------
def read_component(name):
    folder = os.path.join(COMPONENTS, name)
    files = {}
    for filename in sorted(os.listdir(folder)):
        if filename.endswith(".tf"):
            with open(os.path.join(folder, filename)) as fh:
                files[filename] = fh.read()
    return files


EXAMPLES = [
    ("gcs_bucket", {"project": "acme-prod", "bucket_name": "acme-flow-results", "retention_days": 14},
     {"bucket_name": "acme-flow-results", "bucket_url": "gs://acme-flow-results"}, "google_storage_bucket.this"),
    ("artifact_registry", {"project": "acme-prod", "location": "europe-west4", "repository_id": "flows"},
     {"repository_id": "projects/acme-prod/locations/europe-west4/repositories/flows",
      "repository_url": "europe-west4-docker.pkg.dev/acme-prod/flows"}, "google_artifact_registry_repository.this"),
]


@pytest.mark.parametrize("name,values,expected,resource", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_component_parses_and_outputs_come_from_variables(name, values, expected, resource):
    from sandbox.tfc import hcl

    files = read_component(name)
    config = hcl.Config(files)
    assert list(config.resources) == [resource]
    text = "\n".join(files.values())
    assert re.search(r'required_providers\s*{\s*google\s*=\s*{[^}]*source\s*=\s*"hashicorp/google"', text), \
        "%s must declare the google provider in terraform { required_providers }" % name
    for var in config.variables:
        assert re.search(r'variable "%s" {\s*type\s*=' % re.escape(var), text), "variable %s needs a type" % var
    outputs = config.evaluate_outputs(config.resolve_variables(values))
    assert {k: v["value"] for k, v in outputs.items()} == expected
    # A missing required input is what a plan without the workspace variable reports.
    with pytest.raises(hcl.HclError, match="No value for required variable"):
        config.resolve_variables({})


def test_gcs_bucket_has_the_retention_rule_and_uniform_access():
    text = read_component("gcs_bucket")["main.tf"]
    assert re.search(r"lifecycle_rule\s*{\s*condition\s*{\s*age\s*=\s*var\.retention_days", text)
    assert re.search(r'action\s*{\s*type\s*=\s*"Delete"', text)
    assert re.search(r"uniform_bucket_level_access\s*=\s*true", text)
    assert re.search(r"versioning\s*{\s*enabled\s*=\s*var\.versioning", text)
    assert 'format        = "DOCKER"' in read_component("artifact_registry")["main.tf"]


def test_example_components_are_terraform_fmt_clean():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH: terraform fmt -check not run")
    proc = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", COMPONENTS], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, "terraform fmt would change:\n%s" % proc.stdout


# ---- the component graph filter ----------------------------------------------------------------------------------
def filters():
    from ansible_collections.skyforge.prefect_platform.plugins.filter import tfc

    return tfc


def comp(name, deps=(), **extra):
    out = {"name": name, "config_dir": "gcs_bucket", "depends_on": list(deps)}
    out.update(extra)
    return out


def test_order_puts_dependencies_first_and_keeps_listed_order_otherwise():
    tfc = filters()
    ordered = tfc.tfc_component_order([comp("app", ["db", "net"]), comp("db", ["net"]), comp("net"), comp("dns")],
                                      components_dir=COMPONENTS, prefix="p-")
    assert [c["name"] for c in ordered] == ["net", "db", "app", "dns"]
    assert ordered[0]["workspace"] == "p-net"
    assert ordered[0]["config_path"] == os.path.join(COMPONENTS, "gcs_bucket")
    assert ordered[0]["execution_mode"] == "agent"


def test_values_that_are_not_strings_become_hcl():
    tfc = filters()
    [c] = tfc.tfc_component_order([comp("a", variables=[
        {"key": "n", "value": 7}, {"key": "b", "value": True}, {"key": "l", "value": ["x", "y"]},
        {"key": "s", "value": "7"}, {"key": "h", "value": 3, "hcl": False}])], components_dir=COMPONENTS)
    got = {v["key"]: (v["value"], v["hcl"]) for v in c["variables"]}
    assert got == {"n": ("7", True), "b": ("true", True), "l": ('["x", "y"]', True), "s": ("7", False),
                   "h": ("3", False)}


def test_component_variables_resolve_value_from_for_the_set_module():
    tfc = filters()
    [a, b] = tfc.tfc_component_order([comp("a"), comp("b", ["a"], variables=[
        {"key": "name", "value_from": "a.bucket_name"}, {"key": "zones", "value_from": "a.zones"},
        {"key": "later", "value_from": "a.not_yet", "description": "from a"},
        {"key": "TOKEN", "value": "t", "category": "env", "sensitive": True}])], components_dir=COMPONENTS)
    got = tfc.tfc_component_variables(b, {"a": {"bucket_name": "bkt", "zones": ["b", "c"]}})
    assert got == [
        {"key": "name", "value": "bkt", "category": "terraform", "hcl": False, "sensitive": False},
        {"key": "zones", "value": '["b", "c"]', "category": "terraform", "hcl": True, "sensitive": False},
        {"key": "later", "value": "(output a.not_yet after apply)", "category": "terraform", "hcl": False,
         "sensitive": False, "description": "from a"},
        {"key": "TOKEN", "value": "t", "category": "env", "hcl": False, "sensitive": True}]
    assert tfc.tfc_component_variables(a, {}) == []


def test_run_specs_carry_the_workspace_ids_and_leave_value_from_unresolved():
    tfc = filters()
    ordered = tfc.tfc_component_order([comp("b", ["a"], variables=[{"key": "x", "value_from": "a.bucket_name"},
                                                                   {"key": "n", "value": 3}]), comp("a")],
                                      components_dir=COMPONENTS, prefix="p-")
    specs = tfc.tfc_component_run_specs(ordered, {"a": "ws-a1", "b": ""})
    assert [(s["name"], s["workspace"], s["workspace_id"], s["depends_on"]) for s in specs] == [
        ("a", "p-a", "ws-a1", []), ("b", "p-b", None, ["a"])]
    assert specs[1]["config_dir"] == os.path.join(COMPONENTS, "gcs_bucket")
    # value_from stays for the module to resolve once "a" is applied; no null fields reach the module.
    assert specs[1]["variables"] == [
        {"key": "x", "value_from": "a.bucket_name", "category": "terraform", "hcl": False, "sensitive": False},
        {"key": "n", "value": "3", "category": "terraform", "hcl": True, "sensitive": False}]


@pytest.mark.parametrize("components,expected", [
    ([comp("a", ["b"]), comp("b", ["c"]), comp("c", ["a"])], "dependency cycle a -> b -> c -> a"),
    ([comp("a", ["a"])], "depends_on names the component itself"),
    ([comp("a", ["ghost"])], "depends_on names unknown component 'ghost'"),
    ([comp("a"), comp("a")], "name 'a' is listed twice"),
    ([comp("bad name")], "name='bad name' is not a valid workspace name"),
    ([comp("x" * 91)], "is not a valid workspace name"),
    ([comp("a", config_dir="no/such/dir")], "config_dir 'no/such/dir' is not a directory"),
    ([comp("a", execution_mode="local")], "execution_mode='local' must be agent or remote"),
    ([comp("a", dependson=["b"])], "unknown field(s) dependson"),
    ([comp("a", variables=[{"key": "1x", "value": "v"}])], "key='1x' is not a valid Terraform variable name"),
    ([comp("a", variables=[{"key": "X", "value": "v", "category": "shell"}])], "must be terraform or env"),
    ([comp("a", variables=[{"key": "x"}])], "needs exactly one of value and value_from"),
    ([comp("a", variables=[{"key": "x", "value": None}])], "value is null"),
    ([comp("a", variables=[{"key": "x", "value": "1"}, {"key": "x", "value": "2"}])], "'x' is set twice"),
    ([comp("a"), comp("b", variables=[{"key": "x", "value_from": "a.out"}])], "which is not in depends_on"),
    ([comp("a", variables=[{"key": "x", "value_from": "nope"}])], "must be COMPONENT.OUTPUT"),
    ("a string", "must be a list of dicts"),
], ids=["cycle", "self", "unknown", "duplicate", "bad-name", "too-long", "no-dir", "local", "typo", "bad-key",
        "bad-category", "no-value", "null-value", "twice", "value-from-not-dep", "value-from-form", "not-a-list"])
def test_problems_name_the_component_and_the_fix(components, expected):
    tfc = filters()
    problems = tfc.tfc_component_problems(components, components_dir=COMPONENTS, base_dir=REPO)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("tfc_workspace_runs_components") for p in problems), problems
    with pytest.raises(Exception, match=re.escape(expected)):
        tfc.tfc_component_order(components, components_dir=COMPONENTS, base_dir=REPO)


def test_a_valid_graph_has_no_problems():
    tfc = filters()
    assert tfc.tfc_component_problems([comp("a"), comp("b", ["a"], variables=[
        {"key": "x", "value_from": "a.bucket_name"}, {"key": "TF_LOG", "value": "INFO", "category": "env"}])],
        components_dir=COMPONENTS) == []
    assert tfc.tfc_component_missing_outputs(
        {"variables": [{"key": "x", "value_from": "a.bucket_name"}, {"key": "y", "value_from": "a.nope"}]},
        {"a": {"bucket_name": "b"}}) == ["a.nope"]


# ---- the roles against the sandbox -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(sandbox, tmp_path_factory):
    specs_path(*TFC_SPEC)
    ep = sandbox.endpoints()
    root = tmp_path_factory.mktemp("tfc-roles")
    os.makedirs(root / "group_vars" / "all")
    shutil.copy(os.path.join(REPO, "group_vars", "all", "auth.yml"), root / "group_vars" / "all" / "auth.yml")
    (root / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_auth_kind": "serviceaccount",
        "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"],
        "tfc_address": ep["tfc_address"], "tfc_token": ep["tfc_token"], "tfc_organization": ep["tfc_organization"]}}}}))
    (root / "vars.json").write_text(json.dumps(dict(AGENT_VARS, tfc_workspace_runs_components=RUN_COMPONENTS)))
    (root / "setup.yml").write_text(SETUP)
    (root / "teardown.yml").write_text(TEARDOWN)
    facts = root / "facts.json"
    (root / "site.yml").write_text(WRAPPER % {"playbook": os.path.join(REPO, "playbooks", "tfc.yml"), "facts": facts})
    return {"root": root, "ep": ep, "facts": facts}


def play(env, playbook, *args, expect_ok=True):
    proc = subprocess.run(
        ["ansible-playbook", str(env["root"] / playbook), "-i", str(env["root"] / "hosts.yml"),
         "-e", "@%s" % (env["root"] / "vars.json")] + list(args),
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        cwd=REPO, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    if expect_ok:
        assert proc.returncode == 0, "%s failed:\n%s" % (playbook, out[-6000:])
    return proc.returncode, out


def recap(out):
    counts = playbook_recap(out)
    assert counts, out[-2000:]
    return dict(zip(("ok", "changed", "failed"), counts))


def tasks(out):
    """[(task name, status of its first result line: ok, changed, skipping, failed...)] in output order."""
    found = []
    for block in re.split(r"\nTASK \[", out)[1:]:
        name = block.split("]", 1)[0]
        status = re.search(r"^(ok|changed|skipping|fatal|failed|included): ", block, re.M)
        found.append((name, status.group(1) if status else None))
    return found


def rows(sandbox, table, **match):
    return [r for r in sandbox.store.table(table).values() if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def foundation(env):
    play(env, "setup.yml")


@pytest.fixture(scope="module")
def applied(sandbox, env, foundation):
    _rc, out = play(env, "site.yml")
    with open(env["facts"]) as fh:
        facts = json.load(fh)
    return {"out": out, "facts": facts}


def writes(entries):
    """Requests that change something (the OAuth token exchange and getIamPolicy are POSTs that only read)."""
    return [(e["family"], e["method"], e["path"]) for e in entries if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token") and not e["path"].endswith(":getIamPolicy")]


def test_check_mode_on_a_fresh_project_predicts_everything_and_writes_nothing(sandbox, env, foundation):
    before = sandbox.log.mark()
    _rc, out = play(env, "site.yml", "--check", "--diff")
    assert writes(sandbox.log.by_deployer(before)) == []
    assert recap(out)["changed"] >= 10, out[-4000:]
    for task in ("The agent VM", "Workspaces of the components", "Apply the components in dependency order"):
        assert [status for name, status in tasks(out) if task in name] == ["changed"], task
    assert not [w for w in sandbox.apps["tfc"].workspaces.values() if w["name"].startswith("tfcr-")]


def test_agent_vm_is_private_and_its_agent_idle(sandbox, env, applied):
    tfc = sandbox.apps["tfc"]
    info = applied["facts"]["info"]
    pool = next(p for p in tfc.pools.values() if p["name"] == "tfcr-agents")
    assert applied["facts"]["pool_id"] == info["pool_id"] == pool["id"]
    agents = [a for a in tfc.agents.values() if a["pool_id"] == pool["id"] and a["status"] == "idle"]
    assert [a["name"] for a in agents] == ["tfcr-tfc-agent"]
    assert info["vm_name"] == "tfcr-tfc-agent" and info["zone"] == "europe-west1-b"

    [vm] = rows(sandbox, "compute.instances", name="tfcr-tfc-agent")
    assert vm["bootReport"] == "tfc-agent: registered"
    nic = vm["networkInterfaces"][0]
    assert not nic.get("accessConfigs"), "the agent VM must have no external IP"
    [addr] = rows(sandbox, "compute.addresses", name="tfcr-tfc-agent-ip")
    assert addr["addressType"] == "INTERNAL" and addr["status"] == "IN_USE"
    assert nic["networkIP"] == addr["address"] == info["internal_ip"] == agents[0]["ip"]
    assert vm["machineType"].endswith("/e2-micro")
    assert vm["serviceAccounts"][0]["email"] == info["service_account"]
    assert vm["tags"]["items"] == ["tfc-agent"]

    items = {i["key"]: i["value"] for i in vm["metadata"]["items"]}
    assert items["tfc-agent-token-secret"] == "tfcr-tfc-agent-token"
    token = sandbox_secret(sandbox, env, "tfcr-tfc-agent-token")
    assert token and ".atlasv1." in token
    assert all(token not in str(v) for v in items.values()), "the agent token must never be in metadata"
    assert token not in applied["out"]
    script = items["startup-script"]
    assert "secretmanager.googleapis.com/v1/projects/${project}/secrets/${secret}/versions/latest:access" in script
    assert "computeMetadata/v1" in script and "TFC_AGENT_TOKEN" in script and "TFC_AGENT_NAME" in script
    assert items["tfc-agent-image"].startswith("hashicorp/tfc-agent:")

    # The VM's account may read the secret: the sandbox's boot required it, and the binding is there.
    policy = sandbox.store.table("iam.policies")["projects/%s" % env["ep"]["gcp_project"]]
    readers = [b for b in policy["bindings"] if b["role"] == "roles/secretmanager.secretAccessor"]
    assert "serviceAccount:%s" % info["service_account"] in readers[0]["members"]

    rules = {r["name"]: r for r in sandbox.store.table("compute.firewalls").values() if r["name"].startswith("tfcr")}
    deny, iap = rules["tfcr-tfc-agent-deny-ingress"], rules["tfcr-tfc-agent-allow-iap-ssh"]
    assert deny["denied"] == [{"IPProtocol": "all"}] and deny["targetTags"] == ["tfc-agent"]
    assert iap["sourceRanges"] == ["35.235.240.0/20"] and iap["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    assert iap["targetTags"] == ["tfc-agent"] and iap["priority"] < deny["priority"]


def sandbox_secret(sandbox, env, name):
    from sandbox.gcp.secretmanager import latest_payload

    payload = latest_payload(sandbox, env["ep"]["gcp_project"], name)
    return payload.decode() if payload else None


def test_workspaces_applied_on_the_agent_in_dependency_order(sandbox, applied):
    tfc = sandbox.apps["tfc"]
    ws = {w["name"]: w for w in tfc.workspaces.values() if w["name"].startswith("tfcr-")}
    assert sorted(ws) == ["tfcr-bucket", "tfcr-registry"]
    pool = next(p for p in tfc.pools.values() if p["name"] == "tfcr-agents")
    for w in ws.values():
        assert w["execution-mode"] == "agent" and w["agent_pool_id"] == pool["id"]
    runs = sorted((r for r in tfc.runs.values() if r["ws_id"] in {w["id"] for w in ws.values()}),
                  key=lambda r: r["seq"])
    assert [(tfc.workspaces[r["ws_id"]]["name"], r["status"]) for r in runs] == [
        ("tfcr-bucket", "applied"), ("tfcr-registry", "applied")]
    for run in runs:
        assert any("(agent tfcr-tfc-agent)" in line for line in run["log"]["plan"]), run["log"]["plan"]
    values = {(v["key"], v["category"]): v for v in tfc.vars.values() if v["ws_id"] == ws["tfcr-registry"]["id"]}
    assert values[("repository_id", "terraform")]["value"] == "tfcr-results"  # value_from the bucket's output
    assert values[("TF_LOG", "env")]["value"] == "INFO"
    assert values[("description", "terraform")]["sensitive"] is True
    bucket_vars = {v["key"]: v for v in tfc.vars.values() if v["ws_id"] == ws["tfcr-bucket"]["id"]}
    assert (bucket_vars["retention_days"]["value"], bucket_vars["retention_days"]["hcl"]) == ("7", True)
    assert SENSITIVE not in applied["out"]


def test_outputs_become_facts(applied, sandbox):
    project = sandbox.endpoints()["gcp_project"]
    assert applied["facts"]["outputs"] == {
        "bucket": {"bucket_name": "tfcr-results", "bucket_url": "gs://tfcr-results"},
        "registry": {"repository_id": "projects/%s/locations/europe-west1/repositories/tfcr-results" % project,
                     "repository_url": "europe-west1-docker.pkg.dev/%s/tfcr-results" % project},
    }


def test_second_run_changes_nothing(sandbox, env, applied):
    tfc = sandbox.apps["tfc"]
    runs_before = len(tfc.runs)
    before = sandbox.log.mark()
    _rc, out = play(env, "site.yml")
    assert recap(out)["changed"] == 0, out[-6000:]
    assert len(tfc.runs) == runs_before, "a second run must not queue HCP Terraform runs"
    calls = [(e["method"], e["path"]) for e in sandbox.log.entries[before:] if e["family"] == "tfc"]
    assert [c for c in calls if c[0] != "GET"] == []
    org = "/api/v2/organizations/%s" % env["ep"]["tfc_organization"]
    # Each workspace, its variables and the agent pool are read once: later tasks get the IDs.
    for ws in ("tfcr-bucket", "tfcr-registry"):
        assert calls.count(("GET", "%s/workspaces/%s" % (org, ws))) == 1, calls
    assert len([p for _m, p in calls if p.endswith("/vars")]) == 2, calls
    assert calls.count(("GET", org + "/agent-pools")) == 1, calls
    assert not [p for _m, p in calls if re.match(r"^/api/v2/workspaces/ws-[^/]+$", p)], calls
    with open(env["facts"]) as fh:
        assert json.load(fh)["outputs"] == applied["facts"]["outputs"]


def test_rotating_the_token_restarts_the_agent_with_the_new_one(sandbox, env, applied):
    tfc = sandbox.apps["tfc"]
    old = sandbox_secret(sandbox, env, "tfcr-tfc-agent-token")
    _rc, out = play(env, "site.yml", "--tags", "tfc_agent", "-e", "tfc_agent_rotate_token=true")
    assert recap(out)["changed"] >= 3, out[-4000:]
    new = sandbox_secret(sandbox, env, "tfcr-tfc-agent-token")
    assert new and new != old
    assert old not in out and new not in out
    pool = next(p for p in tfc.pools.values() if p["name"] == "tfcr-agents")
    statuses = sorted(a["status"] for a in tfc.agents.values() if a["pool_id"] == pool["id"])
    assert statuses == ["exited", "idle"], "the old agent exits, the restarted one is idle"
    assert len([t for t in tfc.tokens.values() if t["pool_id"] == pool["id"]]) == 1


def test_absent_removes_everything(sandbox, env, applied):
    tfc = sandbox.apps["tfc"]
    _rc, out = play(env, "teardown.yml")
    assert recap(out)["changed"] > 0
    assert not [w for w in tfc.workspaces.values() if w["name"].startswith("tfcr-")]
    assert not [p for p in tfc.pools.values() if p["name"] == "tfcr-agents"]
    assert not [t for t in tfc.tokens.values() if t["description"] == "tfcr-tfc-agent"]
    assert not rows(sandbox, "compute.instances", name="tfcr-tfc-agent")
    assert not rows(sandbox, "compute.addresses", name="tfcr-tfc-agent-ip")
    assert not [r for r in sandbox.store.table("compute.firewalls").values() if r["name"].startswith("tfcr-tfc")]
    assert sandbox_secret(sandbox, env, "tfcr-tfc-agent-token") is None
    assert not [s for s in sandbox.store.table("iam.serviceAccounts").values()
                if s.get("email", "").startswith("tfcr-tfc-agent@")]
    policy = sandbox.store.table("iam.policies")["projects/%s" % env["ep"]["gcp_project"]]
    assert not [b for b in policy["bindings"] if any("tfcr-tfc-agent@" in m for m in b["members"])]
    # Before deleting, each workspace destroyed what it had applied, dependents first.
    order = [name.rsplit(" ", 1)[-1] for name, status in tasks(out)
             if "Destroy the resources of" in name and status == "changed"]
    assert order == ["tfcr-registry", "tfcr-bucket"], out[-6000:]
    _rc, out = play(env, "teardown.yml")
    assert recap(out)["changed"] == 0, out[-4000:]


# ---- bad inputs fail before any API call ---------------------------------------------------------------------------
def bad(components):
    return {"tfc_workspace_runs_components": components}


BAD = [
    ("cycle", bad([comp("a", ["b"]), comp("b", ["a"])]), "dependency cycle a -> b -> a"),
    ("unknown dependency", bad([comp("a", ["ghost"])]), "depends_on names unknown component 'ghost'"),
    ("bad workspace name", bad([comp("no spaces")]), "name='no spaces' is not a valid workspace name"),
    ("field typo", bad([comp("a", **{"depends-on": ["b"]})]), "tfc_workspace_runs_components.depends-on"),
    ("bad VM name", {"tfc_agent_vm_name": "Agent_VM"}, "tfc_agent_vm_name=Agent_VM is not a valid GCP name"),
    ("zone outside region", {"tfc_agent_zone": "us-east1-b"}, "tfc_agent_zone=us-east1-b must be a zone of"),
    ("bad service account", {"tfc_agent_service_account": "sa"}, "tfc_agent_service_account=sa is not"),
    ("bad pool name", {"tfc_agent_pool_name": "pool with spaces"}, "tfc_agent_pool_name=pool with spaces"),
    ("no parallelism", {"tfc_workspace_runs_parallelism": 0}, "tfc_workspace_runs_parallelism=0 must be a positive"),
    ("parallelism not a number", {"tfc_workspace_runs_parallelism": "two"}, "tfc_workspace_runs_parallelism"),
]


@pytest.mark.parametrize("case,extra,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_before_any_api_call(sandbox, env, case, extra, expected):
    before = sandbox.log.mark()
    rc, out = play(env, "site.yml", "-e", json.dumps(extra), expect_ok=False)
    assert rc != 0, "%s: the playbook should have failed:\n%s" % (case, out[-2000:])
    assert expected in " ".join(out.split()), "%s: message should name %r:\n%s" % (case, expected, out[-3000:])
    made = sandbox.log.by_deployer(before)
    assert not made, "%s: API calls were made before validation failed: %r" % (case, made[:5])


# ---- the component graph, driven by tfc_component_runs ----------------------------------------------------------------
@pytest.fixture
def slower_runs(sandbox):
    """Runs that take ~1.5 s instead of ~0.2 s, so that which runs overlapped is unambiguous."""
    scale = sandbox.config.time_scale
    sandbox.config.time_scale = 0.02
    yield
    sandbox.config.time_scale = scale


def graph(module_runner, tfc_args, tmp_path, spec, with_name=True):
    """Workspaces (remote execution) and components for spec [(name, depends_on, {var: value_from})]."""
    from tests.unit.plugins.modules.tfc_helpers import unique

    folder = tmp_path / "graph"
    folder.mkdir(exist_ok=True)
    (folder / "main.tf").write_text(GRAPH_TF)
    prefix = unique("g")
    out = []
    for name, deps, refs in spec:
        ws = "%s-%s" % (prefix, name)
        created = module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="remote"))
        variables = [{"key": key, "value_from": ref} for key, ref in refs.items()]
        if with_name or name != "bad":
            variables.append({"key": "name", "value": name})
        out.append({"name": name, "workspace": ws, "workspace_id": created["workspace"]["id"], "config_dir": str(folder),
                    "depends_on": list(deps), "variables": variables})
    return out


def runs_of(sandbox, ws_name):
    tfc = sandbox.apps["tfc"]
    return sorted((r for r in tfc.runs.values() if tfc.workspaces[r["ws_id"]]["name"] == ws_name), key=lambda r: r["seq"])


def test_graph_runs_independent_components_together_and_hands_outputs_on(
        sandbox, tfc_args, module_runner, tmp_path, slower_runs):
    comps = graph(module_runner, tfc_args, tmp_path, [
        ("c", ["a", "b"], {"upstream": "a.id"}), ("a", [], {}), ("b", [], {}), ("d", ["c"], {"upstream": "c.id"})])
    args = dict(tfc_args, components=comps, parallelism=2, timeout=60)
    done = module_runner("tfc_component_runs", args)
    assert done["changed"] is True
    assert {n: c["status"] for n, c in done["components"].items()} == dict.fromkeys("abcd", "applied")
    assert done["outputs"] == {"a": {"id": "a<"}, "b": {"id": "b<"}, "c": {"id": "c<a<"}, "d": {"id": "d<c<a<"}}
    assert done["order"][:2] in (["a", "b"], ["b", "a"]) and done["order"][2:] == ["c", "d"]
    [a], [b], [c], [d] = (runs_of(sandbox, comp["workspace"]) for comp in sorted(comps, key=lambda x: x["name"]))
    # a and b ran at the same time; c started only once both were applied, d once c was.
    assert b["created"] < a["ts"]["applied-at"] and a["created"] < b["ts"]["applied-at"]
    assert c["created"] > max(a["ts"]["applied-at"], b["ts"]["applied-at"])
    assert d["created"] > c["ts"]["applied-at"]
    assert done["components"]["c"]["run"]["url"].endswith("/workspaces/%s/runs/%s" % (comps[0]["workspace"], c["id"]))

    # Converged: nothing changes, no run is queued, in check mode or not.
    runs_before = len(sandbox.apps["tfc"].runs)
    since = sandbox.log.mark()
    for check in (True, False):
        again = module_runner("tfc_component_runs", args, check=check)
        assert again["changed"] is False, again["components"]
        assert set(c["status"] for c in again["components"].values()) == {"unchanged"}
        assert again["outputs"] == done["outputs"]
    assert len(sandbox.apps["tfc"].runs) == runs_before
    assert [e for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] != "GET"] == []


def test_graph_parallelism_one_runs_one_component_at_a_time(sandbox, tfc_args, module_runner, tmp_path, slower_runs):
    comps = graph(module_runner, tfc_args, tmp_path, [("a", [], {}), ("b", [], {}), ("c", [], {})])
    done = module_runner("tfc_component_runs", dict(tfc_args, components=comps, parallelism=1, timeout=60))
    assert done["order"] == ["a", "b", "c"]
    runs = [runs_of(sandbox, comp["workspace"])[0] for comp in comps]
    for earlier, later in zip(runs, runs[1:]):
        assert later["created"] > earlier["ts"]["applied-at"]


def test_graph_check_mode_predicts_a_change_in_the_variables_and_a_run(sandbox, tfc_args, module_runner, tmp_path):
    from tests.unit.plugins.modules.tfc_helpers import writes as tfc_writes

    comps = graph(module_runner, tfc_args, tmp_path, [("a", [], {}), ("b", ["a"], {"upstream": "a.id"})])
    since = sandbox.log.mark()
    check = module_runner("tfc_component_runs", dict(tfc_args, components=comps, timeout=60), check=True)
    assert tfc_writes(sandbox, since) == []
    assert check["changed"] is True
    assert {n: c["status"] for n, c in check["components"].items()} == {"a": "would_run", "b": "would_run"}
    after = check["diff"]["after"]["b"]["variables"]
    assert after["terraform/upstream"]["value"] == "(output a.id after apply)"
    assert check["diff"]["before"]["b"]["variables"] == {}
    assert not runs_of(sandbox, comps[0]["workspace"])


def test_a_failed_run_stops_its_dependents_and_independent_components_finish(
        sandbox, tfc_args, module_runner, tmp_path):
    # "bad" sets no value for the required variable `name`: its plan errors.
    comps = graph(module_runner, tfc_args, tmp_path, [
        ("bad", [], {}), ("ok", [], {}), ("after", ["bad"], {"upstream": "bad.id"}), ("later", ["after"], {}),
        ("next", ["ok"], {"upstream": "ok.id"})], with_name=False)
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=comps, timeout=60), expect_fail=True)
    [bad_run] = runs_of(sandbox, comps[0]["workspace"])
    assert bad_run["status"] == "errored"
    url = "/workspaces/%s/runs/%s" % (comps[0]["workspace"], bad_run["id"])
    msg = failed["msg"]
    assert re.search(r"1 component\(s\) failed\. bad: HCP Terraform run %s ended errored: .*No value for required "
                     r"variable.*%s" % (bad_run["id"], re.escape(url)), msg), msg
    assert "Not started because a dependency failed: after (needs bad), later (needs after)" in msg, msg
    status = {n: c["status"] for n, c in failed["components"].items()}
    assert status == {"bad": "failed", "ok": "applied", "after": "not_started", "later": "not_started",
                      "next": "applied"}
    assert failed["outputs"]["next"] == {"id": "next<ok<"}
    assert not runs_of(sandbox, comps[2]["workspace"]) and not runs_of(sandbox, comps[3]["workspace"])


@pytest.mark.parametrize("spec,expected", [
    ([("a", ["b"], {}), ("b", ["a"], {})], "dependency cycle a -> b -> a"),
    ([("a", ["ghost"], {})], "component a depends on unknown component ghost"),
    ([("a", [], {}), ("b", [], {"upstream": "a.id"})], "value_from reads component a, which is not in depends_on"),
], ids=["cycle", "unknown", "value-from-not-dep"])
def test_graph_problems_fail_before_any_api_call(sandbox, tfc_args, module_runner, tmp_path, spec, expected):
    folder = tmp_path / "graph"
    folder.mkdir()
    (folder / "main.tf").write_text(GRAPH_TF)
    comps = [{"name": n, "workspace": "never-" + n, "config_dir": str(folder), "depends_on": deps,
              "variables": [{"key": k, "value_from": r} for k, r in refs.items()]} for n, deps, refs in spec]
    since = sandbox.log.mark()
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=comps), expect_fail=True)
    assert expected in failed["msg"] and "nothing was run" in failed["msg"], failed["msg"]
    assert sandbox.log.by_deployer(since) == []
