"""tfc_component_runs' scheduler on wait_for: dependents start when their dependencies finish, failures stop them.

The role tests (tests/unit/roles/test_tfc_roles.py) cover the graph in depth; this is the module-level check that
the wait between runs finishes every component, in order, and hands outputs on.
"""

import pytest

from tests.unit.plugins.modules.tfc_helpers import GRAPH_TF, unique, writes


def components(module_runner, tfc_args, tmp_path, spec, without_name=()):
    folder = tmp_path / "graph"
    folder.mkdir(exist_ok=True)
    (folder / "main.tf").write_text(GRAPH_TF)
    prefix = unique("cg")
    out = []
    for name, deps, refs in spec:
        ws = "%s-%s" % (prefix, name)
        module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="remote"))
        variables = [{"key": key, "value_from": ref} for key, ref in refs.items()]
        if name not in without_name:
            variables.append({"key": "name", "value": name})
        out.append({"name": name, "workspace": ws, "config_dir": str(folder), "depends_on": list(deps),
                    "variables": variables})
    return out


def test_dependents_wait_for_their_dependencies_and_get_their_outputs(tfc_args, module_runner, tmp_path):
    comps = components(module_runner, tfc_args, tmp_path, [
        ("a", [], {}), ("b", [], {}), ("c", ["a", "b"], {"upstream": "a.id"})])
    done = module_runner("tfc_component_runs", dict(tfc_args, components=comps, parallelism=2, timeout=60))
    assert {n: c["status"] for n, c in done["components"].items()} == dict.fromkeys("abc", "applied")
    assert done["order"][2] == "c" and sorted(done["order"][:2]) == ["a", "b"]
    assert done["outputs"]["c"] == {"id": "c<a<"}


def test_a_failed_run_stops_its_dependents_only(tfc_args, module_runner, tmp_path):
    # "bad" sets no value for the required variable `name`: its plan errors.
    comps = components(module_runner, tfc_args, tmp_path, [
        ("bad", [], {}), ("ok", [], {}), ("after", ["bad"], {})], without_name=("bad",))
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=comps, timeout=60), expect_fail=True)
    status = {n: c["status"] for n, c in failed["components"].items()}
    assert status == {"bad": "failed", "ok": "applied", "after": "not_started"}
    assert "Not started because a dependency failed: after (needs bad)" in failed["msg"]


def settings_components(tmp_path, spec, **settings):
    """Components for spec [(name, depends_on, {var: value_from})] whose workspaces the module creates."""
    folder = tmp_path / "graph"
    folder.mkdir(exist_ok=True)
    (folder / "main.tf").write_text(GRAPH_TF)
    prefix = unique("cw")
    ws_settings = dict({"execution_mode": "remote", "description": "graph test", "terraform_version": "1.9.8",
                        "working_directory": "", "auto_apply": False, "tags": ["skyforge"]}, **settings)
    return [{"name": name, "workspace": "%s-%s" % (prefix, name), "workspace_settings": ws_settings,
             "config_dir": str(folder), "depends_on": list(deps),
             "variables": [{"key": "name", "value": name}] + [{"key": k, "value_from": r} for k, r in refs.items()]}
            for name, deps, refs in spec]


def workspace_row(sandbox, name):
    return next((w for w in sandbox.apps["tfc"].workspaces.values() if w["name"] == name), None)


def test_workspace_settings_create_each_workspace_as_its_component_starts(sandbox, tfc_args, module_runner, tmp_path):
    comps = settings_components(tmp_path, [("a", [], {}), ("b", [], {}), ("c", ["a", "b"], {"upstream": "a.id"})])
    args = dict(tfc_args, components=comps, parallelism=2, timeout=60)
    org = "/api/v2/organizations/%s" % tfc_args["organization"]

    since = sandbox.log.mark()
    check = module_runner("tfc_component_runs", args, check=True)
    assert writes(sandbox, since) == []
    assert check["changed"] is True
    assert {n: (c["status"], c["workspace_status"]) for n, c in check["components"].items()} == dict.fromkeys(
        "abc", ("would_run", "created"))
    assert check["diff"]["before"]["a"]["workspace"] == {}
    assert check["diff"]["after"]["a"]["workspace"]["tags"] == ["skyforge"]
    assert all(workspace_row(sandbox, c["workspace"]) is None for c in comps)

    since = sandbox.log.mark()
    done = module_runner("tfc_component_runs", args)
    assert {n: (c["status"], c["workspace_status"]) for n, c in done["components"].items()} == dict.fromkeys(
        "abc", ("applied", "created"))
    assert done["outputs"]["c"] == {"id": "c<a<"}
    rows = dict((c["name"], workspace_row(sandbox, c["workspace"])) for c in comps)
    for name, row in rows.items():
        assert done["components"][name]["workspace_id"] == row["id"]
        assert (row["execution-mode"], row["terraform-version"], row["description"], row["tags"]) == (
            "remote", "1.9.8", "graph test", {"skyforge"})
    # Each workspace is created when its component starts: b's after a's run was queued, c's after both applied.
    entries = sandbox.log.entries[since:]
    created = [i for i, e in enumerate(entries) if (e["method"], e["path"]) == ("POST", org + "/workspaces")]
    queued = [i for i, e in enumerate(entries) if (e["method"], e["path"]) == ("POST", "/api/v2/runs")]
    assert len(created) == 3 and len(queued) == 3
    assert created[0] < queued[0] < created[1] < queued[1] < created[2] < queued[2]

    # Converged: nothing changes, each workspace is read by name once, nothing is written.
    for check_mode in (True, False):
        since = sandbox.log.mark()
        again = module_runner("tfc_component_runs", args, check=check_mode)
        assert again["changed"] is False, again["components"]
        assert {n: (c["status"], c["workspace_status"]) for n, c in again["components"].items()} == dict.fromkeys(
            "abc", ("unchanged", "unchanged"))
        calls = [(e["method"], e["path"]) for e in sandbox.log.entries[since:] if e["family"] == "tfc"]
        assert [c for c in calls if c[0] != "GET"] == []
        for comp in comps:
            assert calls.count(("GET", "%s/workspaces/%s" % (org, comp["workspace"]))) == 1, calls

    # A setting that differs is updated (predicted first); the configuration was applied already: no run.
    runs_before = len(sandbox.apps["tfc"].runs)
    changed = dict(args, components=[dict(c, workspace_settings=dict(c["workspace_settings"], tags=["skyforge", "g"]))
                                     for c in comps])
    since = sandbox.log.mark()
    predicted = module_runner("tfc_component_runs", changed, check=True)
    assert writes(sandbox, since) == [] and rows["a"]["tags"] == {"skyforge"}
    assert predicted["changed"] is True
    assert predicted["components"]["a"]["workspace_status"] == "updated"
    assert predicted["components"]["a"]["workspace_changes"] == ["tags"]
    assert predicted["components"]["a"]["status"] == "unchanged"
    assert predicted["diff"]["after"]["a"]["workspace"]["tags"] == ["g", "skyforge"]
    real = module_runner("tfc_component_runs", changed)
    assert real["changed"] is True and rows["a"]["tags"] == {"skyforge", "g"}
    assert set(c["status"] for c in real["components"].values()) == {"unchanged"}
    assert len(sandbox.apps["tfc"].runs) == runs_before
    assert module_runner("tfc_component_runs", changed)["changed"] is False


@pytest.mark.parametrize("settings,workspace_id,expected", [
    ({"execution_mode": "agent"}, None, "execution_mode=agent needs agent_pool"),
    ({"tags": ["Bad Tag"]}, None, "tags Bad Tag are invalid"),
    ({"agent_pool": "p"}, None, "agent_pool is set but execution_mode is None"),
    ({}, "ws-abc", "set workspace_id or workspace_settings, not both"),
], ids=["agent-no-pool", "bad-tag", "pool-without-agent", "id-and-settings"])
def test_bad_workspace_settings_fail_before_any_api_call(sandbox, tfc_args, module_runner, tmp_path, settings,
                                                         workspace_id, expected):
    [comp] = settings_components(tmp_path, [("a", [], {})])
    comp["workspace_settings"] = settings
    comp["workspace_id"] = workspace_id
    since = sandbox.log.mark()
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=[comp]), expect_fail=True)
    assert expected in failed["msg"] and "nothing was run" in failed["msg"], failed["msg"]
    assert sandbox.log.by_deployer(since) == []


def test_a_missing_agent_pool_fails_before_any_write(sandbox, tfc_args, module_runner, tmp_path):
    comps = settings_components(tmp_path, [("a", [], {}), ("b", [], {})], execution_mode="agent")
    comps[1]["workspace_settings"] = dict(comps[1]["workspace_settings"], agent_pool=unique("nopool"))
    comps[0]["workspace_settings"] = dict(comps[0]["workspace_settings"], agent_pool="apool-given")
    since = sandbox.log.mark()
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=comps), expect_fail=True)
    assert "does not exist" in failed["msg"] and "tfc_agent_pool" in failed["msg"], failed["msg"]
    assert writes(sandbox, since) == []
