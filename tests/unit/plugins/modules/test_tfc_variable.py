"""tfc_variable: values compared and diffed, sensitive values never read back, never diffed."""

from tests.unit.idempotence import converge
from tests.unit.plugins.modules.tfc_helpers import unique


def var_row(sandbox, ws_name, key):
    app = sandbox.apps["tfc"]
    ws = next(w for w in app.workspaces.values() if w["name"] == ws_name)
    return next((v for v in app.vars.values() if v["ws_id"] == ws["id"] and v["key"] == key), None)


def test_plain_variable_lifecycle(sandbox, tfc_args, module_runner):
    ws = unique("vars")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    args = dict(tfc_args, workspace=ws, key="region", value="europe-west1", description="where")
    converge(module_runner, "tfc_variable", args)
    assert var_row(sandbox, ws, "region")["value"] == "europe-west1"
    upd = module_runner("tfc_variable", dict(args, value="europe-west4"), check=True)
    assert upd["changed"] and upd["changes"] == ["value"] and var_row(sandbox, ws, "region")["value"] == "europe-west1"
    real = module_runner("tfc_variable", dict(args, value="europe-west4"))
    assert real["changes"] == ["value"] and var_row(sandbox, ws, "region")["value"] == "europe-west4"
    hcl = dict(tfc_args, workspace=ws, key="zones", value='["b", "c"]', hcl=True)
    converge(module_runner, "tfc_variable", hcl)
    env = dict(tfc_args, workspace=ws, key="TF_LOG", value="INFO", category="env")
    converge(module_runner, "tfc_variable", env)
    gone = module_runner("tfc_variable", dict(args, state="absent", value=None))
    assert gone["changed"] and var_row(sandbox, ws, "region") is None


def test_sensitive_variable_is_never_read_back_or_diffed(sandbox, tfc_args, module_runner):
    ws = unique("secret")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    secret = "s3cr3t-" + unique("v")
    args = dict(tfc_args, workspace=ws, key="db_password", value=secret, sensitive=True)
    created = module_runner("tfc_variable", args)
    assert created["changed"] and created["sensitive_value"] == "written"
    assert var_row(sandbox, ws, "db_password")["value"] == secret
    again = module_runner("tfc_variable", dict(args, value="another-" + secret))
    assert again["changed"] is False and again["sensitive_value"] == "not_compared"
    assert var_row(sandbox, ws, "db_password")["value"] == secret, "not rewritten without force_update_sensitive"
    forced = module_runner("tfc_variable", dict(args, value="rotated-" + secret, force_update_sensitive=True))
    assert forced["changed"] and forced["sensitive_value"] == "written" and forced["changes"] == ["value"]
    assert var_row(sandbox, ws, "db_password")["value"] == "rotated-" + secret
    for out in (created, again, forced):
        assert secret not in out["_stdout"] and secret not in out["_stderr"]
        assert "value" not in out["variable"] and "value" not in out["diff"]["after"]
    refused = module_runner("tfc_variable", dict(args, sensitive=False), expect_fail=True)
    assert "cannot make it non-sensitive" in refused["msg"] and "state=absent" in refused["msg"]


def test_making_a_variable_sensitive_rewrites_it(sandbox, tfc_args, module_runner):
    ws = unique("tosec")
    module_runner("tfc_workspace", dict(tfc_args, name=ws))
    module_runner("tfc_variable", dict(tfc_args, workspace=ws, key="token", value="plain"))
    out = module_runner("tfc_variable", dict(tfc_args, workspace=ws, key="token", value="hidden", sensitive=True))
    assert out["changed"] and "sensitive" in out["changes"] and out["sensitive_value"] == "written"
    row = var_row(sandbox, ws, "token")
    assert row["sensitive"] and row["value"] == "hidden"


def test_variable_bad_input(sandbox, tfc_args, module_runner):
    before = sandbox.log.mark()
    out = module_runner("tfc_variable", dict(tfc_args, workspace="w", key="1bad", value="x"), expect_fail=True)
    assert "not a valid Terraform variable name" in out["msg"]
    out = module_runner("tfc_variable", dict(tfc_args, workspace="w", key="A", value="x", category="env", hcl=True),
                        expect_fail=True)
    assert "category=terraform" in out["msg"]
    assert [e for e in sandbox.log.entries[before:] if e["family"] == "tfc"] == []
    out = module_runner("tfc_variable", dict(tfc_args, workspace=unique("missing"), key="a", value="some-value"),
                        expect_fail=True)
    assert "does not exist" in out["msg"] and "tfc_workspace" in out["msg"]


def test_one_variable_list_per_call_and_none_by_id(sandbox, tfc_args, module_runner):
    ws = unique("varreads")
    ws_id = module_runner("tfc_workspace", dict(tfc_args, name=ws))["workspace"]["id"]
    args = dict(tfc_args, workspace=ws, key="region", value="europe-west1")
    module_runner("tfc_variable", args)

    def reads(since):
        return sorted(e["path"] for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] == "GET"
                      and not e["path"].startswith("/_sandbox"))

    before = sandbox.log.mark()
    assert module_runner("tfc_variable", args)["changed"] is False
    assert reads(before) == ["/api/v2/organizations/%s/workspaces/%s" % (tfc_args["organization"], ws),
                             "/api/v2/workspaces/%s/vars" % ws_id]
    before = sandbox.log.mark()
    by_id = dict(tfc_args, workspace_id=ws_id, key="region", value="europe-west4")
    out = module_runner("tfc_variable", by_id)
    assert out["changes"] == ["value"] and var_row(sandbox, ws, "region")["value"] == "europe-west4"
    assert reads(before) == ["/api/v2/workspaces/%s/vars" % ws_id], "the PATCH answer is the read-back"
    out = module_runner("tfc_variable", dict(by_id, workspace=ws), expect_fail=True)
    assert "mutually exclusive" in out["msg"]
