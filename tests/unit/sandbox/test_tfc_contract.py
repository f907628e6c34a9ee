"""HCP Terraform contract: pytfe against the sandbox, responses validated by the OpenAPI file, shapes like the docs."""

import io
import json
import os
import tarfile
import time

import httpx
import pytest

from tests.unit.conftest import specs_path

pytfe = pytest.importorskip("pytfe")
from pytfe import TFEClient, TFEConfig  # noqa: E402
from pytfe.errors import AuthError, NotFound, TFEError  # noqa: E402
from pytfe.models import (  # noqa: E402
    AgentPoolCreateOptions,
    AgentPoolUpdateOptions,
    AgentTokenCreateOptions,
    RunCreateOptions,
    VariableCreateOptions,
    VariableUpdateOptions,
    Workspace,
    WorkspaceCreateOptions,
    WorkspaceUpdateOptions,
)


@pytest.fixture(scope="module")
def spec():
    from sandbox.tfc import spec as specmod

    path = specs_path("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")
    return specmod.Spec(path)


@pytest.fixture(scope="module")
def tfc(sandbox):
    specs_path("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")
    ep = sandbox.endpoints()
    # pytfe's own retries cover the sandbox's real 30 requests/s limit in this fast test.
    client = TFEClient(TFEConfig(address=ep["tfc_address"], token=ep["tfc_token"], max_retries=8, http2=False))
    return client, ep


def raw(ep, method, path, body=None, token=True, **kw):
    headers = {"Content-Type": "application/vnd.api+json"}
    if token:
        headers["Authorization"] = "Bearer " + ep["tfc_token"]
    headers.update(kw.pop("headers", {}))
    for _attempt in range(20):
        resp = httpx.request(method, ep["tfc_address"] + "/api/v2" + path, headers=headers,
                             content=json.dumps(body) if body is not None else None, **kw)
        # The sandbox enforces HCP Terraform's 30 requests/s; wait as asked, like a real client.
        if resp.status_code != 429 or "X-Sandbox-Fault" in headers:
            return resp
        time.sleep(float(resp.headers["X-RateLimit-Reset"]))
    return resp


def check(spec, method, template, resp):
    """The response validates against the operation's documented schema for its status."""
    assert resp.headers["content-type"].startswith("application/vnd.api+json")
    schema = spec.response_schema(method, template, resp.status_code)
    problems = spec.errors_for(schema, resp.json())
    assert problems == [], "%s %s -> %s does not match the spec: %s" % (method, template, resp.status_code, problems[:3])
    return resp.json()


def sample(name):
    with open(specs_path("tfc", name)) as fh:
        return json.load(fh)["sample_response"]


# Attributes the doc samples show that the sandbox does not serve (features it does not emulate).
OMITTED = {"inherits-project-auto-destroy", "unarchived_workspace_change_requests_count", "locked-by",
           "ssh-key", "project"}


def missing_keys(ours, theirs):
    return sorted(set(theirs) - set(ours) - OMITTED)


def test_workspace_crud_through_pytfe(tfc, spec):
    client, ep = tfc
    org = ep["tfc_organization"]
    ws = client.workspaces.create(org, WorkspaceCreateOptions(name="contract-ws", description="d", auto_apply=True,
                                                              terraform_version="1.9.8"))
    assert ws.id.startswith("ws-") and ws.auto_apply is True and ws.terraform_version == "1.9.8"
    got = client.workspaces.read("contract-ws", organization=org)
    assert got.id == ws.id and got.description == "d"
    upd = client.workspaces.update_by_id(ws.id, WorkspaceUpdateOptions(description="e", execution_mode="local"))
    assert upd.description == "e" and upd.execution_mode.value == "local"
    doc = check(spec, "GET", "/organizations/{organization_name}/workspaces/{workspace_name}",
                raw(ep, "GET", "/organizations/%s/workspaces/contract-ws" % org))
    want = sample("workspaces.show.json")["data"]
    assert missing_keys(doc["data"]["attributes"], want["attributes"]) == []
    assert missing_keys(doc["data"]["relationships"], want["relationships"]) == []
    check(spec, "GET", "/workspaces/{workspace_id}", raw(ep, "GET", "/workspaces/%s" % ws.id))
    check(spec, "GET", "/organizations/{organization_name}/workspaces", raw(ep, "GET", "/organizations/%s/workspaces" % org))
    client.workspaces.delete_by_id(ws.id)
    with pytest.raises(NotFound):
        client.workspaces.read_by_id(ws.id)


def test_variables_and_sensitive_values(tfc, spec):
    client, ep = tfc
    ws = client.workspaces.create(ep["tfc_organization"], WorkspaceCreateOptions(name="contract-vars"))
    v = client.variables.create(ws.id, VariableCreateOptions(key="k", value="v", category="terraform"))
    s = client.variables.create(ws.id, VariableCreateOptions(key="s", value="secret", category="env", sensitive=True))
    assert v.value == "v" and s.value is None, "a sensitive value is never returned, not even on create"
    client.variables.update(ws.id, v.id, VariableUpdateOptions(value="w"))
    doc = check(spec, "GET", "/workspaces/{workspace_id}/vars", raw(ep, "GET", "/workspaces/%s/vars" % ws.id))
    assert {d["attributes"]["key"]: d["attributes"]["value"] for d in doc["data"]} == {"k": "w", "s": None}
    assert missing_keys(doc["data"][0]["attributes"], sample("workspace-variables.list.json")["data"][0]["attributes"]) == []
    with pytest.raises(TFEError) as exc:
        client.variables.create(ws.id, VariableCreateOptions(key="k", value="again", category="terraform"))
    assert exc.value.status == 422 and "taken" in str(exc.value)
    bad = raw(ep, "PATCH", "/workspaces/%s/vars/%s" % (ws.id, s.id),
              {"data": {"type": "vars", "attributes": {"sensitive": False}}})
    assert bad.status_code == 422
    client.variables.delete(ws.id, v.id)
    assert [x.key for x in client.variables.list(ws.id)] == ["s"]


def test_agent_pools_tokens_agents(tfc, spec, sandbox):
    client, ep = tfc
    org = ep["tfc_organization"]
    pool = client.agent_pools.create(org, AgentPoolCreateOptions(name="contract-pool", organization_scoped=False))
    assert pool.organization_scoped is False
    client.agent_pools.update(pool.id, AgentPoolUpdateOptions(name="contract-pool-2", organization_scoped=True))
    doc = check(spec, "GET", "/agent-pools/{agent_pool_id}", raw(ep, "GET", "/agent-pools/%s" % pool.id))
    assert doc["data"]["attributes"]["name"] == "contract-pool-2"
    assert missing_keys(doc["data"]["relationships"], sample("agent-pools.show.json")["data"]["relationships"]) == []
    check(spec, "GET", "/organizations/{organization_name}/agent-pools", raw(ep, "GET", "/organizations/%s/agent-pools" % org))
    created = raw(ep, "POST", "/agent-pools/%s/authentication-tokens" % pool.id,
                  {"data": {"type": "authentication-tokens", "attributes": {"description": "api"}}})
    assert created.status_code == 201
    tok = check(spec, "POST", "/agent-pools/{agent_pool_id}/authentication-tokens", created)["data"]
    assert ".atlasv1." in tok["attributes"]["token"]
    listed = check(spec, "GET", "/agent-pools/{agent_pool_id}/authentication-tokens",
                   raw(ep, "GET", "/agent-pools/%s/authentication-tokens" % pool.id))
    assert [t["attributes"]["token"] for t in listed["data"]] == [None], "the secret is shown once"
    assert sandbox.apps["tfc"].register_agent(tok["attributes"]["token"], name="contract-agent")
    agents = check(spec, "GET", "/agent-pools/{agent_pool_id}/agents", raw(ep, "GET", "/agent-pools/%s/agents" % pool.id))
    assert [(a["attributes"]["name"], a["attributes"]["status"]) for a in agents["data"]] == [("contract-agent", "idle")]
    assert missing_keys(agents["data"][0]["attributes"], sample("agents.list.json")["data"][0]["attributes"]) == []
    pytfe_token = client.agent_tokens.create(pool.id, AgentTokenCreateOptions(description="second"))
    assert pytfe_token.token and len(list(client.agent_tokens.list(pool.id))) == 2
    client.agent_tokens.delete(pytfe_token.id)
    client.agent_pools.delete(pool.id)


def targz(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_configuration_version_and_run_state_machine(tfc, spec):
    client, ep = tfc
    ws = client.workspaces.create(ep["tfc_organization"], WorkspaceCreateOptions(name="contract-runs"))
    cv_resp = raw(ep, "POST", "/workspaces/%s/configuration-versions" % ws.id,
                  {"data": {"type": "configuration-versions", "attributes": {"auto-queue-runs": False}}})
    cv = check(spec, "POST", "/workspaces/{workspace_id}/configuration-versions", cv_resp)["data"]
    assert cv["attributes"]["status"] == "pending" and cv["attributes"]["upload-url"].startswith(ep["tfc_address"])
    early = raw(ep, "POST", "/runs", {"data": {"type": "runs", "attributes": {}, "relationships": {
        "workspace": {"data": {"type": "workspaces", "id": ws.id}},
        "configuration-version": {"data": {"type": "configuration-versions", "id": cv["id"]}}}}})
    assert early.status_code == 422 and "pending" in early.json()["errors"][0]["detail"]
    put = httpx.put(cv["attributes"]["upload-url"], content=targz({"main.tf": 'output "x" { value = "y" }\n'}))
    assert put.status_code == 200
    assert client.configuration_versions.read(cv["id"]).status.value == "uploaded"
    run = client.runs.create(RunCreateOptions(workspace=Workspace.model_construct(id=ws.id), message="contract"))
    seen = [run.status.value]
    for _attempt in range(400):
        status = client.runs.read(run.id).status.value
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "planned":
            break
        time.sleep(0.01)
    assert seen[0] == "pending" and seen[-1] == "planned"
    assert seen == [s for s in ("pending", "plan_queued", "planning", "planned") if s in seen], seen
    doc = check(spec, "GET", "/runs/{run_id}", raw(ep, "GET", "/runs/%s" % run.id))
    assert doc["data"]["attributes"]["actions"]["is-confirmable"] is True
    assert missing_keys(doc["data"]["attributes"], sample("runs.show.json")["data"]["attributes"]) == []
    assert raw(ep, "POST", "/runs/%s/actions/apply" % run.id, {"comment": "ok"}).status_code == 202
    assert raw(ep, "POST", "/runs/%s/actions/apply" % run.id, {"comment": "twice"}).status_code == 409
    for _attempt in range(400):
        if client.runs.read(run.id).status.value == "applied":
            break
        time.sleep(0.01)
    assert client.runs.read(run.id).status.value == "applied"
    check(spec, "GET", "/workspaces/{workspace_id}/runs", raw(ep, "GET", "/workspaces/%s/runs" % ws.id))
    check(spec, "GET", "/runs/{id}/plan", raw(ep, "GET", "/runs/%s/plan" % run.id))
    outs = check(spec, "GET", "/workspaces/{workspace_id}/current-state-version-outputs",
                 raw(ep, "GET", "/workspaces/%s/current-state-version-outputs" % ws.id))
    assert [(o["attributes"]["name"], o["attributes"]["value"]) for o in outs["data"]] == [("x", "y")]
    assert missing_keys(outs["data"][0]["attributes"],
                        sample("state-version-outputs.current.json")["data"][0]["attributes"]) == []


def test_bad_requests_are_rejected(tfc, spec):
    _client, ep = tfc
    org = ep["tfc_organization"]
    path = "/organizations/%s/workspaces" % org
    cases = [
        ({"data": {"type": "workspaces", "attributes": {"name": "t1", "auto-apply": "yes"}}}, 422, "boolean"),
        ({"data": {"type": "workspaces", "attributes": {"name": "t2", "colour": "blue"}}}, 422, "colour"),
        ({"data": {"type": "workspaces", "attributes": {"execution-mode": "cloud", "name": "t3"}}}, 422, "cloud"),
        ({"data": {"type": "projects", "attributes": {"name": "t4"}}}, 422, "workspaces"),
        ({"data": {"type": "workspaces", "attributes": {}}}, 422, "blank"),
        ({"data": {"type": "workspaces", "attributes": {"name": "t5", "execution-mode": "agent"}}}, 422, "Agent pool"),
    ]
    for body, status, word in cases:
        resp = raw(ep, "POST", path, body)
        assert resp.status_code == status, (body, resp.text)
        err = check(spec, "POST", "/organizations/{organization_name}/workspaces", resp)["errors"][0]
        assert err["status"] == str(status) and word in err["detail"]
    assert raw(ep, "GET", path, token=False).status_code == 401
    garbled = httpx.post(ep["tfc_address"] + "/api/v2" + path, content=b"{not json",
                         headers={"Authorization": "Bearer " + ep["tfc_token"], "Content-Type": "application/vnd.api+json"})
    assert garbled.status_code == 400
    limited = raw(ep, "GET", path, headers={"X-Sandbox-Fault": "429"})
    assert limited.status_code == 429 and float(limited.headers["X-RateLimit-Reset"]) > 0
    assert limited.json()["errors"][0]["title"] == "Too many requests"
    with pytest.raises(AuthError):
        TFEClient(TFEConfig(address=ep["tfc_address"], token="wrong", max_retries=0, http2=False)).organizations.read(org)


def test_pagination_follows_the_documented_shape(tfc, spec):
    client, ep = tfc
    org = ep["tfc_organization"]
    for i in range(23):
        client.workspaces.create(org, WorkspaceCreateOptions(name="page-%02d" % i))
    first = raw(ep, "GET", "/organizations/%s/workspaces?search%%5Bname%%5D=page-&page%%5Bsize%%5D=10" % org)
    doc = check(spec, "GET", "/organizations/{organization_name}/workspaces", first)
    assert len(doc["data"]) == 10 and doc["meta"]["pagination"]["total-count"] == 23
    assert doc["meta"]["pagination"]["next-page"] == 2 and doc["meta"]["pagination"]["total-pages"] == 3
    assert doc["links"]["prev"] is None and "page%5Bnumber%5D=2" in doc["links"]["next"]
    names = [w.name for w in client.workspaces.list(org) if w.name.startswith("page-")]
    assert names == ["page-%02d" % i for i in range(23)], "pytfe walks every page"


def test_hcl_reader_handles_real_configurations():
    from sandbox.tfc import hcl

    cfg = hcl.Config({"main.tf": '''
terraform {
  required_providers {
    google = { source = "hashicorp/google", version = "~> 5.0" }
  }
}
locals { labels = { team = "platform" } }
variable "zones" {
  type    = list(string)
  default = ["b", "c"]
}
resource "google_compute_instance" "agent" {
  count = length(var.zones)
  name  = "agent-${count.index}"
  metadata_startup_script = <<-EOT
    #!/bin/bash
    echo hi
  EOT
  lifecycle {
    ignore_changes = [metadata]
  }
}
output "zones" { value = var.zones }
output "first" { value = "zone-${var.zones[0]}" }
'''})
    values = cfg.resolve_variables({})
    outs = cfg.evaluate_outputs(values)
    assert outs["zones"]["value"] == ["b", "c"] and outs["first"]["value"] is None
    assert list(cfg.resource_hashes(values)) == ["google_compute_instance.agent"]
    assert hcl.typed_value('{ a = 1, b = [true, null] }', True) == {"a": 1, "b": [True, None]}
    with pytest.raises(hcl.HclError):
        hcl.Config({"main.tf": 'resource "a" "b" {\n  x = [1, 2\n}\n'})


def test_spec_file_is_the_one_the_sandbox_uses(sandbox):
    path = specs_path("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")
    assert os.path.samefile(path, os.path.join(sandbox.config.specs_dir, "tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json"))
