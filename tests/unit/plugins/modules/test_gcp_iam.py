"""Service accounts and IAM bindings: idempotent, check mode predicts, etag conflicts retried."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def apis(sandbox):
    app = sandbox.apps["gcp"]
    app.enabled["projects/%s/services/iam.googleapis.com" % app.project_number] = True


def test_service_account_lifecycle(sandbox, gcp_args, module_runner):
    args = dict(gcp_args, name="prefect-worker", display_name="Prefect worker")
    check = module_runner("gcp_service_account", args, check=True)
    real = module_runner("gcp_service_account", args)
    assert check["changed"] and real["changed"]
    assert real["email"] == "prefect-worker@%s.iam.gserviceaccount.com" % gcp_args["project"]
    assert module_runner("gcp_service_account", args)["changed"] is False
    upd = module_runner("gcp_service_account", dict(args, description="runs Cloud Run jobs"))
    assert upd["changes"] == ["description"]
    bad = module_runner("gcp_service_account", dict(args, name="pw"), expect_fail=True)
    assert "6-30 characters" in bad["msg"]


def test_project_binding_read_modify_write(sandbox, gcp_args, module_runner):
    member = "serviceAccount:prefect-worker@%s.iam.gserviceaccount.com" % gcp_args["project"]
    args = dict(gcp_args, role="roles/run.developer", member=member)
    check = module_runner("gcp_iam_member", args, check=True)
    assert check["changed"] and check["members"] == [member]
    real = module_runner("gcp_iam_member", args)
    assert real["members"] == check["members"] and real["diff"] == check["diff"]
    assert module_runner("gcp_iam_member", args)["changed"] is False
    policy = sandbox.store.table("iam.policies")["projects/%s" % gcp_args["project"]]
    owners = [b for b in policy["bindings"] if b["role"] == "roles/owner"]
    assert owners, "other bindings are left alone"
    gone = module_runner("gcp_iam_member", dict(args, state="absent"))
    assert gone["changed"] and gone["members"] == []


def test_workload_identity_binding_on_a_service_account(sandbox, gcp_args, module_runner):
    module_runner("gcp_service_account", dict(gcp_args, name="prefect-wi"))
    args = dict(gcp_args, resource_type="service_account",
                service_account="prefect-wi@%s.iam.gserviceaccount.com" % gcp_args["project"],
                role="roles/iam.workloadIdentityUser",
                member="serviceAccount:%s.svc.id.goog[prefect/prefect-worker]" % gcp_args["project"])
    assert module_runner("gcp_iam_member", args)["changed"] is True
    assert module_runner("gcp_iam_member", args)["changed"] is False


def test_stale_etag_is_refused_by_the_sandbox(sandbox):
    from sandbox.gcp.iam import get_policy, set_policy
    from sandbox.web import ApiError

    policy = dict(get_policy(sandbox, "projects/etag-test"))
    set_policy(sandbox, "projects/etag-test", dict(policy, bindings=[{"role": "roles/viewer", "members": ["user:a@b.c"]}]))
    with pytest.raises(ApiError) as err:
        set_policy(sandbox, "projects/etag-test", policy)
    assert err.value.status == 409
