"""tfc_workspace and tfc_agent_pool against the sandbox."""

from tests.unit.idempotence import converge
from tests.unit.plugins.modules.tfc_helpers import unique, writes


def ws_row(sandbox, name):
    return next((w for w in sandbox.apps["tfc"].workspaces.values() if w["name"] == name), None)


def test_workspace_create_update_delete(sandbox, tfc_args, module_runner):
    name = unique("ws")
    args = dict(tfc_args, name=name, description="infra", terraform_version="1.9.8", auto_apply=False,
                tags=["prefect", "gcp"], working_directory="infra")
    before = sandbox.log.mark()
    check = module_runner("tfc_workspace", args, check=True)
    assert check["changed"] and check["workspace"]["tags"] == ["gcp", "prefect"]
    assert not writes(sandbox, before), "check mode makes no request that writes"
    assert ws_row(sandbox, name) is None
    real = module_runner("tfc_workspace", args)
    row = ws_row(sandbox, name)
    assert real["changed"] and row["tags"] == {"gcp", "prefect"} and row["working-directory"] == "infra"
    assert real["workspace"]["id"] == row["id"] and real["diff"]["before"] == {}
    assert module_runner("tfc_workspace", args)["changed"] is False
    upd = module_runner("tfc_workspace", dict(args, auto_apply=True, tags=["prefect"]), check=True)
    assert upd["changed"] and sorted(upd["changes"]) == ["auto_apply", "tags"]
    assert upd["diff"]["before"]["auto_apply"] is False and upd["diff"]["after"]["auto_apply"] is True
    assert row["auto-apply"] is False, "check mode changed nothing"
    real_upd = module_runner("tfc_workspace", dict(args, auto_apply=True, tags=["prefect"]))
    assert row["auto-apply"] is True and row["tags"] == {"prefect"} and real_upd["workspace"]["tags"] == ["prefect"]
    assert module_runner("tfc_workspace", dict(args, auto_apply=True, tags=["prefect"]))["changed"] is False
    gone = module_runner("tfc_workspace", dict(tfc_args, name=name, state="absent"))
    assert gone["changed"] and ws_row(sandbox, name) is None
    assert module_runner("tfc_workspace", dict(tfc_args, name=name, state="absent"))["changed"] is False


def test_agent_mode_needs_an_allowed_pool(sandbox, tfc_args, module_runner):
    ws = unique("agentws")
    pool = unique("pool")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    # The pool is limited to the workspace, then the workspace moves to agent execution on it.
    pool_args = dict(tfc_args, name=pool, allowed_workspaces=[ws])
    check, real, _again = converge(module_runner, "tfc_agent_pool", pool_args)
    assert real["agent_pool"]["organization_scoped"] is False and real["agent_pool"]["allowed_workspaces"] == [ws]
    agent = dict(tfc_args, name=ws, execution_mode="agent", agent_pool=pool)
    out = module_runner("tfc_workspace", agent)
    assert out["changed"] and sorted(out["changes"]) == ["agent_pool_id", "execution_mode"]
    assert ws_row(sandbox, ws)["agent_pool_id"] == real["agent_pool"]["id"]
    assert module_runner("tfc_workspace", agent)["changed"] is False
    in_use = module_runner("tfc_agent_pool", dict(pool_args, state="absent"), expect_fail=True)
    assert "still used" in in_use["msg"] and ws in in_use["msg"]
    back = module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="remote"))
    assert back["workspace"]["agent_pool_id"] is None
    assert module_runner("tfc_agent_pool", dict(pool_args, state="absent"))["changed"] is True


def test_pool_not_allowed_is_refused_by_the_api(sandbox, tfc_args, module_runner):
    ws, other, pool = unique("ws"), unique("ws"), unique("pool")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    module_runner("tfc_workspace", dict(tfc_args, name=other))
    module_runner("tfc_agent_pool", dict(tfc_args, name=pool, allowed_workspaces=[other]))
    out = module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="agent", agent_pool=pool),
                        expect_fail=True)
    assert "HTTP 422" in out["msg"] and "not allowed for this workspace" in out["msg"]
    assert len(out["msg"].splitlines()) == 1
    # Widening the pool's allowed list (then clearing it) is an in-place update.
    upd = module_runner("tfc_agent_pool", dict(tfc_args, name=pool, allowed_workspaces=[other, ws]))
    assert upd["changes"] == ["allowed_workspaces"]
    module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="agent", agent_pool=pool))
    cleared = module_runner("tfc_agent_pool", dict(tfc_args, name=pool, organization_scoped=True))
    assert cleared["changed"] and cleared["agent_pool"]["organization_scoped"] is True


def test_bad_input_fails_before_any_call(sandbox, tfc_args, module_runner):
    before = sandbox.log.mark()
    out = module_runner("tfc_workspace", dict(tfc_args, name="bad name!"), expect_fail=True)
    assert "not a valid workspace name" in out["msg"]
    out = module_runner("tfc_workspace", dict(tfc_args, name="x", execution_mode="agent"), expect_fail=True)
    assert "needs agent_pool" in out["msg"]
    out = module_runner("tfc_workspace", dict(tfc_args, name="x", tags=["Bad Tag"]), expect_fail=True)
    assert "invalid" in out["msg"]
    out = module_runner("tfc_agent_pool", dict(tfc_args, name="p", organization_scoped=True, allowed_workspaces=["a"]),
                        expect_fail=True)
    assert "drop allowed_workspaces" in out["msg"]
    no_token = dict(tfc_args)
    del no_token["token"]
    out = module_runner("tfc_workspace", dict(no_token, name="x"), expect_fail=True, env={"TFE_TOKEN": ""})
    assert "TFE_TOKEN" in out["msg"]
    assert [e for e in sandbox.log.entries[before:] if e["family"] == "tfc"] == []


def test_wrong_token_is_one_clear_line(sandbox, tfc_args, module_runner):
    out = module_runner("tfc_workspace", dict(tfc_args, name="x", token="nope.atlasv1.nope"), expect_fail=True)
    assert "HTTP 401" in out["msg"] and "token" in out["msg"] and "nope.atlasv1" not in out["_stdout"]


def test_retries_429_using_x_ratelimit_reset(sandbox, tfc_args, module_runner):
    name = unique("ws")
    sandbox.faults.rate, kinds = 0.3, sandbox.faults.kinds
    sandbox.faults.kinds = ("429", "503", "drop")
    try:
        out = module_runner("tfc_workspace", dict(tfc_args, name=name, tags=["a"], retries=10))
    finally:
        sandbox.faults.rate, sandbox.faults.kinds = 0, kinds
    assert out["changed"]
    assert sum(1 for w in sandbox.apps["tfc"].workspaces.values() if w["name"] == name) == 1
    assert module_runner("tfc_workspace", dict(tfc_args, name=name, tags=["a"]))["changed"] is False
