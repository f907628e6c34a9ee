"""gcp_project_services against the sandbox over HTTP, through google-auth's real JWT flow."""

import pytest


SERVICES = ["compute.googleapis.com", "sqladmin.googleapis.com"]


def enabled(sandbox, service):
    app = sandbox.apps["gcp"]
    return app.service_enabled(service)


def test_check_mode_predicts_then_enable_is_idempotent(sandbox, gcp_args, module_runner):
    services = ["bigquery.googleapis.com", "logging.googleapis.com"]
    app = sandbox.apps["gcp"]
    for svc in services:  # the sandbox is shared by the whole session: start from a known state
        app.enabled["projects/%s/services/%s" % (app.project_number, svc)] = False
    before = [enabled(sandbox, s) for s in services]
    assert before == [False, False]

    check = module_runner("gcp_project_services", dict(gcp_args, services=services), check=True)
    assert check["changed"] is True
    assert sorted(check["changed_services"]) == sorted(services)
    assert [enabled(sandbox, s) for s in services] == [False, False], "check mode must not enable anything"

    real = module_runner("gcp_project_services", dict(gcp_args, services=services))
    assert real["changed"] is True
    assert real["changed_services"] == check["changed_services"], "check mode predicted the real change"
    assert real["diff"] == check["diff"]
    assert [enabled(sandbox, s) for s in services] == [True, True]

    again = module_runner("gcp_project_services", dict(gcp_args, services=services))
    assert again["changed"] is False
    assert again["changed_services"] == []


def test_disable_and_diff(sandbox, gcp_args, module_runner):
    svc = ["run.googleapis.com"]
    module_runner("gcp_project_services", dict(gcp_args, services=svc))
    out = module_runner("gcp_project_services", dict(gcp_args, services=svc, state="absent"))
    assert out["changed"] is True
    assert out["diff"] == {"before": {"enabled": svc}, "after": {"enabled": []}}
    assert not enabled(sandbox, svc[0])


def test_bad_service_name_fails_before_any_call(sandbox, gcp_args, module_runner):
    count = sandbox.log.mark()
    out = module_runner("gcp_project_services", dict(gcp_args, services=["compute"]), expect_fail=True)
    assert "compute.googleapis.com" in out["msg"]
    assert len(sandbox.log.entries) == count


def test_disabled_api_error_says_what_to_enable(sandbox, gcp_args, module_runner):
    """A call to an API that is not enabled reaches the user as one line naming the fix."""
    from ansible_collections.skyforge.prefect_platform.plugins.module_utils import gcp  # noqa: F401

    import googleapiclient.discovery as d  # the real client, over HTTP
    import google.oauth2.service_account as sa

    creds = sa.Credentials.from_service_account_file(gcp_args["service_account_file"],
                                                     scopes=["https://www.googleapis.com/auth/cloud-platform"])
    iam = d.build("iam", "v1", credentials=creds, static_discovery=True,
                  client_options={"api_endpoint": gcp_args["api_endpoint_template"].format(api="iam")})
    from googleapiclient.errors import HttpError

    app = sandbox.apps["gcp"]
    key = "projects/%s/services/iam.googleapis.com" % app.project_number
    was = app.enabled.get(key)
    app.enabled[key] = False  # other tests share this sandbox and may have enabled it
    try:
        with pytest.raises(HttpError) as err:
            iam.projects().serviceAccounts().list(name="projects/%s" % gcp_args["project"]).execute()
    finally:
        app.enabled[key] = was
    msg = gcp.http_error("iam", "list", "service accounts", err.value, gcp_args["project"]).msg
    assert "enable iam.googleapis.com on project %s" % gcp_args["project"] in msg
    assert "\n" not in msg


def test_wrong_credentials_are_rejected(sandbox, gcp_args, module_runner, tmp_path):
    import json

    key = json.load(open(gcp_args["service_account_file"]))
    key["private_key_id"] = "0" * 40
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(key))
    out = module_runner("gcp_project_services", dict(gcp_args, services=SERVICES, service_account_file=str(bad)),
                        expect_fail=True)
    assert "could not get a token" in out["msg"]
