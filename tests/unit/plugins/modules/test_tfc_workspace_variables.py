"""tfc_workspace_variables: a workspace's variables as a set, read once, written only where they differ."""

from tests.unit.idempotence import converge
from tests.unit.plugins.modules.tfc_helpers import unique, writes


def rows(sandbox, ws_name):
    app = sandbox.apps["tfc"]
    ws = next(w for w in app.workspaces.values() if w["name"] == ws_name)
    return {"%s/%s" % (v["category"], v["key"]): v for v in app.vars.values() if v["ws_id"] == ws["id"]}


def reads(sandbox, since):
    return [(e["method"], e["path"]) for e in sandbox.log.entries[since:] if e["family"] == "tfc"
            and e["method"] == "GET" and not e["path"].startswith("/_sandbox")]


def new_workspace(module_runner, tfc_args, prefix):
    name = unique(prefix)
    ws = module_runner("tfc_workspace", dict(tfc_args, name=name))["workspace"]
    return name, ws["id"]


PLAIN = [{"key": "region", "value": "europe-west1", "description": "where"},
         {"key": "zones", "value": '["b", "c"]', "hcl": True},
         {"key": "TF_LOG", "value": "INFO", "category": "env"},
         {"key": "retention_days", "value": "7", "hcl": True}]


def test_set_converges_with_one_read_and_check_mode_predicts(sandbox, tfc_args, module_runner):
    name, ws_id = new_workspace(module_runner, tfc_args, "vset")
    args = dict(tfc_args, workspace=name, variables=PLAIN)
    check, real, again = converge(module_runner, "tfc_workspace_variables", args)
    assert sorted(check["created"]) == sorted(real["created"]) == ["env/TF_LOG", "terraform/region",
                                                                   "terraform/retention_days", "terraform/zones"]
    assert [(v["key"], v.get("value")) for v in check["variables"]] == \
        [(v["key"], v.get("value")) for v in real["variables"]], "check mode predicts what the real run leaves"
    got = rows(sandbox, name)
    assert got["terraform/zones"]["hcl"] is True and got["env/TF_LOG"]["value"] == "INFO"
    assert got["terraform/region"]["description"] == "where"
    # Non-sensitive values are not masked in the result, so a value such as "7" leaves IDs and the digest intact.
    assert real["diff"]["after"]["terraform/retention_days"]["value"] == "7"
    assert all("*" not in v["id"] for v in real["variables"]) and "*" not in real["variables_digest"]
    assert again["created"] == [] and again["updated"] == {} and again["deleted"] == []
    assert again["variables_digest"] == real["variables_digest"] and len(real["variables_digest"]) == 16
    assert again["workspace_id"] == ws_id

    # By ID: no workspace read at all, one variable list, and no write on a no-op.
    before = sandbox.log.mark()
    by_id = module_runner("tfc_workspace_variables", dict(tfc_args, workspace_id=ws_id, variables=PLAIN))
    assert by_id["changed"] is False and by_id["variables_digest"] == real["variables_digest"]
    assert reads(sandbox, before) == [("GET", "/api/v2/workspaces/%s/vars" % ws_id)]
    assert writes(sandbox, before) == []
    # By name: one workspace read and one list, whatever the number of variables.
    before = sandbox.log.mark()
    module_runner("tfc_workspace_variables", args)
    assert sorted(p for _m, p in reads(sandbox, before)) == sorted([
        "/api/v2/organizations/%s/workspaces/%s" % (tfc_args["organization"], name),
        "/api/v2/workspaces/%s/vars" % ws_id])


def test_only_what_differs_is_written_and_the_diff_is_keyed(sandbox, tfc_args, module_runner):
    name, ws_id = new_workspace(module_runner, tfc_args, "vdiff")
    module_runner("tfc_workspace_variables", dict(tfc_args, workspace=name, variables=PLAIN))
    changed = [dict(PLAIN[0], value="europe-west4")] + PLAIN[1:]
    args = dict(tfc_args, workspace_id=ws_id, variables=changed)
    before = sandbox.log.mark()
    check = module_runner("tfc_workspace_variables", args, check=True)
    assert check["changed"] and check["updated"] == {"terraform/region": ["value"]} and not writes(sandbox, before)
    assert check["diff"]["before"]["terraform/region"]["value"] == "europe-west1"
    assert check["diff"]["after"]["terraform/region"]["value"] == "europe-west4"
    assert check["variables_digest"] != module_runner("tfc_workspace_variables", dict(
        tfc_args, workspace_id=ws_id, variables=PLAIN), check=True)["variables_digest"], \
        "a predicted change must not produce the current digest"
    before = sandbox.log.mark()
    real = module_runner("tfc_workspace_variables", args)
    assert real["updated"] == {"terraform/region": ["value"]}
    region_id = rows(sandbox, name)["terraform/region"]["id"]
    assert [(e["method"], e["path"]) for e in writes(sandbox, before)] == [
        ("PATCH", "/api/v2/workspaces/%s/vars/%s" % (ws_id, region_id))]
    assert rows(sandbox, name)["terraform/region"]["value"] == "europe-west4"
    # The digest returned after writing is that of the variables as they now are.
    after = module_runner("tfc_workspace_variables", args)
    assert after["changed"] is False and after["variables_digest"] == real["variables_digest"]


def test_purge_deletes_only_unlisted_variables(sandbox, tfc_args, module_runner):
    name, ws_id = new_workspace(module_runner, tfc_args, "vpurge")
    module_runner("tfc_workspace_variables", dict(tfc_args, workspace=name, variables=PLAIN))
    keep = PLAIN[:2]
    kept = module_runner("tfc_workspace_variables", dict(tfc_args, workspace=name, variables=keep))
    assert kept["changed"] is False and len(rows(sandbox, name)) == 4, "without purge, unlisted variables stay"
    args = dict(tfc_args, workspace=name, variables=keep, purge=True)
    check = module_runner("tfc_workspace_variables", args, check=True)
    assert check["deleted"] == ["env/TF_LOG", "terraform/retention_days"] and len(rows(sandbox, name)) == 4
    assert "env/TF_LOG" in check["diff"]["before"] and "env/TF_LOG" not in check["diff"]["after"]
    real = module_runner("tfc_workspace_variables", args)
    assert real["deleted"] == check["deleted"] and sorted(rows(sandbox, name)) == ["terraform/region", "terraform/zones"]
    assert module_runner("tfc_workspace_variables", args)["changed"] is False


def test_sensitive_values_are_never_compared_diffed_or_printed(sandbox, tfc_args, module_runner):
    name, ws_id = new_workspace(module_runner, tfc_args, "vsecret")
    secret = "s3cr3t-" + unique("v")
    variables = PLAIN[:1] + [{"key": "db_password", "value": secret, "sensitive": True},
                             {"key": "API_TOKEN", "value": "tok-" + secret, "category": "env", "sensitive": True}]
    args = dict(tfc_args, workspace=name, variables=variables)
    check, created, again = converge(module_runner, "tfc_workspace_variables", args)
    assert created["sensitive_values"] == {"terraform/db_password": "written", "env/API_TOKEN": "written"}
    assert again["sensitive_values"] == {"terraform/db_password": "not_compared", "env/API_TOKEN": "not_compared"}
    assert rows(sandbox, name)["terraform/db_password"]["value"] == secret
    other = [dict(v, value="another-" + v["value"]) if v.get("sensitive") else v for v in variables]
    unchanged = module_runner("tfc_workspace_variables", dict(args, variables=other))
    assert unchanged["changed"] is False and rows(sandbox, name)["terraform/db_password"]["value"] == secret
    forced = module_runner("tfc_workspace_variables", dict(args, variables=other, force_update_sensitive=True))
    assert forced["updated"] == {"terraform/db_password": ["value"], "env/API_TOKEN": ["value"]}
    assert rows(sandbox, name)["terraform/db_password"]["value"] == "another-" + secret
    for out in (check, created, again, unchanged, forced):
        assert secret not in out["_stdout"] and secret not in out["_stderr"]
        for side in ("before", "after"):
            for var in out["diff"][side].values():
                assert var["sensitive"] is False or "value" not in var
        assert all("value" not in v for v in out["variables"] if v["sensitive"])
    # A plain value that becomes sensitive is rewritten, so the stored value is the one asked for.
    made = module_runner("tfc_workspace_variables", dict(args, variables=[dict(PLAIN[0], value="hidden", sensitive=True)]))
    assert made["updated"] == {"terraform/region": ["sensitive"]}
    assert rows(sandbox, name)["terraform/region"]["value"] == "hidden" and rows(sandbox, name)["terraform/region"]["sensitive"]
    before = sandbox.log.mark()
    refused = module_runner("tfc_workspace_variables", dict(args, variables=PLAIN[:1]), expect_fail=True)
    assert "cannot make it non-sensitive" in refused["msg"] and "purge" in refused["msg"]
    assert writes(sandbox, before) == []


def test_a_workspace_that_does_not_exist_yet(sandbox, tfc_args, module_runner):
    name = unique("vnew")
    args = dict(tfc_args, workspace=name, variables=PLAIN[:2])
    check = module_runner("tfc_workspace_variables", args, check=True)
    assert check["changed"] and check["workspace_id"] is None and len(check["created"]) == 2
    out = module_runner("tfc_workspace_variables", args, expect_fail=True)
    assert "does not exist" in out["msg"] and "tfc_workspace" in out["msg"]
    out = module_runner("tfc_workspace_variables", dict(tfc_args, workspace_id="ws-doesnotexist1", variables=[]),
                        expect_fail=True)
    assert "ws-doesnotexist1 does not exist" in out["msg"]


def test_bad_input_fails_before_any_api_call(sandbox, tfc_args, module_runner):
    before = sandbox.log.mark()
    cases = [
        ([{"key": "1bad", "value": "x"}], "not a valid Terraform variable name"),
        ([{"key": "A", "value": "x", "category": "env", "hcl": True}], "category=terraform"),
        ([{"key": "a", "value": "1"}, {"key": "a", "value": "2"}], "lists terraform/a twice"),
        ([{"key": "a"}], "value"),
    ]
    for variables, expected in cases:
        out = module_runner("tfc_workspace_variables", dict(tfc_args, workspace="w", variables=variables),
                            expect_fail=True)
        assert expected in out["msg"], out["msg"]
    out = module_runner("tfc_workspace_variables", dict(tfc_args, workspace="w", workspace_id="ws-x", variables=[]),
                        expect_fail=True)
    assert "mutually exclusive" in out["msg"]
    out = module_runner("tfc_workspace_variables", dict(tfc_args, variables=[]), expect_fail=True)
    assert "workspace" in out["msg"]
    assert [e for e in sandbox.log.entries[before:] if e["family"] == "tfc"] == []
