"""tfc_run and tfc_outputs_info: a configuration uploaded, planned, applied; outputs read back."""

from tests.unit.plugins.modules.tfc_helpers import unique, writes

MAIN_TF = '''
variable "name" {}
variable "region" {
  default = "europe-west1"
}
variable "password" {
  sensitive = true
}
resource "google_compute_instance" "agent" {
  name = "tfc-agent-${var.name}"
}
output "name" {
  value = var.name
}
output "region" {
  value = var.region
}
output "password" {
  value     = var.password
  sensitive = true
}
output "instance_id" {
  value = google_compute_instance.agent.id
}
'''


def write(tmp_path, text, name="main.tf"):
    d = tmp_path / "tf"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return str(d)


def workspace_with_vars(module_runner, tfc_args, **ws):
    name = unique("run")
    module_runner("tfc_workspace", dict(tfc_args, name=name, **ws))
    module_runner("tfc_variable", dict(tfc_args, workspace=name, key="name", value="a1"))
    module_runner("tfc_variable", dict(tfc_args, workspace=name, key="password", value="pw-secret", sensitive=True))
    return name


def test_run_applies_then_skips_same_config(sandbox, tfc_args, module_runner, tmp_path):
    ws = workspace_with_vars(module_runner, tfc_args)
    cfg = write(tmp_path, MAIN_TF)
    args = dict(tfc_args, workspace=ws, config_dir=cfg, timeout=60)
    before = sandbox.log.mark()
    check = module_runner("tfc_run", args, check=True)
    assert check["changed"] and check["run"] is None and not writes(sandbox, before)
    first = module_runner("tfc_run", args)
    assert first["changed"] and first["run"]["status"] == "applied" and first["run"]["has_changes"]
    assert first["run"]["url"].endswith("/app/%s/workspaces/%s/runs/%s" % (tfc_args["organization"], ws, first["run"]["id"]))
    assert first["config_sha256"] in first["run"]["message"]
    again = module_runner("tfc_run", args)
    assert again["changed"] is False and "already applied" in again["skipped_reason"]
    assert again["run"]["id"] == first["run"]["id"]
    outs = module_runner("tfc_outputs_info", dict(tfc_args, workspace=ws))
    expected = {"name": "a1", "region": "europe-west1", "password": None, "instance_id": None}
    assert outs["has_state"] and outs["output_values"] == expected
    assert outs["outputs"]["password"]["sensitive"] is True and outs["sensitive"] == ["password"]
    assert "pw-secret" not in outs["_stdout"]
    # A variable change makes the same configuration due again; the plan changes the resource.
    module_runner("tfc_variable", dict(tfc_args, workspace=ws, key="name", value="a2"))
    third = module_runner("tfc_run", args)
    assert third["changed"] and third["run"]["status"] == "applied", (third.get("skipped_reason"), third["run"])
    assert module_runner("tfc_outputs_info", dict(tfc_args, workspace=ws))["output_values"]["name"] == "a2"
    # force queues a run although nothing changed: it plans no changes.
    forced = module_runner("tfc_run", dict(args, force=True))
    assert forced["changed"] is False and forced["run"]["status"] == "planned_and_finished"


def test_run_waits_for_confirmation_without_apply(sandbox, tfc_args, module_runner, tmp_path):
    ws = workspace_with_vars(module_runner, tfc_args)
    args = dict(tfc_args, workspace=ws, config_dir=write(tmp_path, MAIN_TF), apply=False, timeout=60)
    planned = module_runner("tfc_run", args)
    assert planned["changed"] and planned["run"]["status"] == "planned" and planned["run"]["actions"]["is-confirmable"]
    applied = module_runner("tfc_run", dict(args, apply=True))
    assert applied["run"]["id"] == planned["run"]["id"] and applied["run"]["status"] == "applied"
    assert applied.get("followed_existing") is True


def test_errored_run_fails_with_status_error_and_url(sandbox, tfc_args, module_runner, tmp_path):
    ws = unique("bad")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    out = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=write(tmp_path, MAIN_TF), timeout=60),
                        expect_fail=True)
    assert "ended errored" in out["msg"] and "No value for required variable" in out["msg"]
    assert "/runs/run-" in out["msg"] and len(out["msg"].splitlines()) == 1
    syntax = write(tmp_path, 'resource "x" "y" {\n  name = "unterminated\n}\n')
    out = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=syntax, timeout=60), expect_fail=True)
    assert "ended errored" in out["msg"] and "Invalid multi-line string" in out["msg"]


def test_plan_only_and_agent_mode(sandbox, tfc_args, module_runner, tmp_path):
    pool = unique("runpool")
    module_runner("tfc_agent_pool", dict(tfc_args, name=pool))
    ws = workspace_with_vars(module_runner, tfc_args, execution_mode="agent", agent_pool=pool)
    cfg = write(tmp_path, MAIN_TF)
    # No agent: the job waits, then the run errors and says what to start.
    out = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=cfg, timeout=120), expect_fail=True)
    assert "ended errored" in out["msg"] and "no agent" in out["msg"]
    token = module_runner("tfc_agent_token", dict(tfc_args, agent_pool=pool, description="a"))["token"]
    assert sandbox.apps["tfc"].register_agent(token, name="runner-1")
    plan = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=cfg, plan_only=True, timeout=60))
    assert plan["run"]["plan_only"] and plan["run"]["status"] == "planned_and_finished" and plan["changed"] is False
    real = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=cfg, timeout=60))
    assert real["run"]["status"] == "applied"
    agent = next(a for a in sandbox.apps["tfc"].agents.values() if a["name"] == "runner-1")
    assert agent["status"] == "idle", "the agent is released after the run"


def test_outputs_info_without_state_and_bad_dirs(sandbox, tfc_args, module_runner, tmp_path):
    ws = unique("nostate")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    out = module_runner("tfc_outputs_info", dict(tfc_args, workspace=ws))
    assert out["has_state"] is False and out["outputs"] == {}
    empty = tmp_path / "empty"
    empty.mkdir()
    out = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=str(empty)), expect_fail=True)
    assert "no .tf files" in out["msg"]
    out = module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=str(tmp_path / "nope")), expect_fail=True)
    assert "not a directory" in out["msg"]


def tfc_reads(sandbox, since):
    return sorted(e["path"] for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] == "GET"
                  and not e["path"].startswith("/_sandbox"))


def test_by_id_and_digest_an_applied_run_is_recognised_without_reading_the_workspace(sandbox, tfc_args,
                                                                                     module_runner, tmp_path):
    ws = unique("runid")
    ws_id = module_runner("tfc_workspace", dict(tfc_args, name=ws))["workspace"]["id"]
    variables = [{"key": "name", "value": "b1"}, {"key": "password", "value": "pw-" + ws, "sensitive": True}]
    vset = module_runner("tfc_workspace_variables", dict(tfc_args, workspace_id=ws_id, variables=variables))
    cfg = write(tmp_path, MAIN_TF)
    args = dict(tfc_args, workspace=ws, workspace_id=ws_id, variables_digest=vset["variables_digest"],
                config_dir=cfg, timeout=60)
    first = module_runner("tfc_run", args)
    assert first["changed"] and first["run"]["status"] == "applied"
    assert vset["variables_digest"] in first["run"]["message"]
    assert first["run"]["url"].endswith("/workspaces/%s/runs/%s" % (ws, first["run"]["id"]))
    before = sandbox.log.mark()
    again = module_runner("tfc_run", args)
    assert again["changed"] is False and again["run"]["id"] == first["run"]["id"]
    assert tfc_reads(sandbox, before) == ["/api/v2/workspaces/%s/runs" % ws_id], "only the runs are read"
    # The digest is the one the module computes itself, so a run by name alone agrees that nothing is due.
    assert module_runner("tfc_run", dict(tfc_args, workspace=ws, config_dir=cfg))["changed"] is False
    # A digest masked by no_log is not one: the variables are listed instead.
    before = sandbox.log.mark()
    masked = module_runner("tfc_run", dict(args, variables_digest="********"))
    assert masked["changed"] is False and "/api/v2/workspaces/%s/vars" % ws_id in tfc_reads(sandbox, before)
    # The ID alone: the workspace is read by ID for its name (run URLs), never by name.
    before = sandbox.log.mark()
    alone = module_runner("tfc_run", dict(tfc_args, workspace_id=ws_id, config_dir=cfg))
    assert alone["changed"] is False and alone["run"]["url"].endswith("/workspaces/%s/runs/%s" % (ws, first["run"]["id"]))
    assert "/api/v2/workspaces/%s" % ws_id in tfc_reads(sandbox, before)
    assert not [p for p in tfc_reads(sandbox, before) if "/organizations/" in p]
    # A changed variable gives another digest: check mode predicts the run, the real run queues it.
    changed = module_runner("tfc_workspace_variables", dict(tfc_args, workspace_id=ws_id, variables=[
        dict(variables[0], value="b2"), variables[1]]), check=True)
    predicted = module_runner("tfc_run", dict(args, variables_digest=changed["variables_digest"]), check=True)
    assert predicted["changed"] is True and predicted["run"] is None
    # Outputs by ID.
    outs = module_runner("tfc_outputs_info", dict(tfc_args, workspace_id=ws_id))
    assert outs["has_state"] and outs["output_values"]["name"] == "b1"


def test_by_id_mismatches_and_missing_workspaces_fail_clearly(sandbox, tfc_args, module_runner, tmp_path):
    ws = unique("runmis")
    ws_id = module_runner("tfc_workspace", dict(tfc_args, name=ws))["workspace"]["id"]
    other = unique("runmis")
    module_runner("tfc_workspace", dict(tfc_args, name=other))
    cfg = write(tmp_path, MAIN_TF)
    out = module_runner("tfc_run", dict(tfc_args, workspace=other, workspace_id=ws_id, config_dir=cfg), expect_fail=True)
    assert "is workspace %s, not %s" % (ws, other) in out["msg"]
    out = module_runner("tfc_run", dict(tfc_args, workspace_id="ws-doesnotexist1", config_dir=cfg), expect_fail=True)
    assert "ws-doesnotexist1 does not exist" in out["msg"]
    out = module_runner("tfc_outputs_info", dict(tfc_args, workspace_id="ws-doesnotexist1"), expect_fail=True)
    assert "ws-doesnotexist1 does not exist" in out["msg"]
    out = module_runner("tfc_outputs_info", dict(tfc_args, workspace_id=ws_id))
    assert out["has_state"] is False and out["outputs"] == {}
    out = module_runner("tfc_outputs_info", dict(tfc_args, workspace=ws, workspace_id=ws_id), expect_fail=True)
    assert "mutually exclusive" in out["msg"]
    out = module_runner("tfc_run", dict(tfc_args, config_dir=cfg), expect_fail=True)
    assert "workspace" in out["msg"]
