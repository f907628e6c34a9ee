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


def policy_calls(sandbox, start, resource):
    """(reads, writes) of one IAM policy since log entry `start`."""
    calls = [e for e in sandbox.log.entries[start:] if e["path"].split("?")[0].endswith(resource + ":getIamPolicy")
             or e["path"].split("?")[0].endswith(resource + ":setIamPolicy")]
    return (sum(1 for e in calls if e["path"].split("?")[0].endswith(":getIamPolicy")),
            sum(1 for e in calls if e["path"].split("?")[0].endswith(":setIamPolicy")))


def test_several_roles_one_read_and_at_most_one_write(sandbox, gcp_args, module_runner):
    project = "projects/%s" % gcp_args["project"]
    member = "serviceAccount:tfc-agent@%s.iam.gserviceaccount.com" % gcp_args["project"]
    roles = ["roles/secretmanager.secretAccessor", "roles/storage.admin", "roles/artifactregistry.admin"]
    args = dict(gcp_args, roles=roles, member=member)

    start = sandbox.log.mark()
    check = module_runner("gcp_iam_member", args, check=True)
    assert check["changed"] and policy_calls(sandbox, start, project) == (1, 0)
    assert check["bindings"] == [{"role": r, "members": [member]} for r in sorted(roles)]
    assert "members" not in check, "members is the one-role answer"

    start = sandbox.log.mark()
    real = module_runner("gcp_iam_member", args)
    assert real["changed"] and policy_calls(sandbox, start, project) == (1, 1), "one read, one write for three roles"
    assert real["bindings"] == check["bindings"] and real["diff"] == check["diff"]
    assert real["diff"]["before"] == {"bindings": [{"role": r, "members": []} for r in sorted(roles)]}
    policy = sandbox.store.table("iam.policies")[project]
    assert all(member in next(b for b in policy["bindings"] if b["role"] == r)["members"] for r in roles)
    assert [b for b in policy["bindings"] if b["role"] == "roles/owner"], "other bindings are left alone"

    start = sandbox.log.mark()
    again = module_runner("gcp_iam_member", args)
    assert again["changed"] is False and policy_calls(sandbox, start, project) == (1, 0), "a no-op only reads"

    # One role missing: only it is added, still in one write.
    sandbox.store.table("iam.policies")[project]["bindings"] = [
        b for b in policy["bindings"] if b["role"] != "roles/storage.admin"]
    start = sandbox.log.mark()
    healed = module_runner("gcp_iam_member", args)
    assert healed["changed"] and policy_calls(sandbox, start, project) == (1, 1)
    assert healed["diff"]["before"]["bindings"][2] == {"role": "roles/storage.admin", "members": []}

    gone = module_runner("gcp_iam_member", dict(args, state="absent"))
    assert gone["changed"] and gone["bindings"] == [{"role": r, "members": []} for r in sorted(roles)]
    assert module_runner("gcp_iam_member", dict(args, state="absent"))["changed"] is False


def test_bindings_with_different_members(sandbox, gcp_args, module_runner):
    worker = "serviceAccount:bw-worker@%s.iam.gserviceaccount.com" % gcp_args["project"]
    runtime = "serviceAccount:bw-runtime@%s.iam.gserviceaccount.com" % gcp_args["project"]
    args = dict(gcp_args, bindings=[{"role": "roles/run.developer", "member": worker},
                                    {"role": "roles/secretmanager.secretAccessor", "member": runtime},
                                    {"role": "roles/run.developer", "member": runtime}])
    real = module_runner("gcp_iam_member", args)
    assert real["changed"]
    got = dict((b["role"], b["members"]) for b in real["bindings"])
    assert sorted([runtime, worker]) == got["roles/run.developer"]
    assert runtime in got["roles/secretmanager.secretAccessor"] and worker not in got["roles/secretmanager.secretAccessor"]
    assert module_runner("gcp_iam_member", args)["changed"] is False
    # Revoking one pair leaves the role's other member.
    one = module_runner("gcp_iam_member", dict(gcp_args, bindings=[{"role": "roles/run.developer", "member": worker}],
                                               state="absent"))
    assert one["changed"] and one["bindings"] == [{"role": "roles/run.developer", "members": [runtime]}]


def test_concurrent_change_is_read_again_and_kept(sandbox, gcp_args, module_runner):
    """An etag conflict makes the module read again; the other writer's binding survives."""
    from sandbox.gcp.iam import get_policy, set_policy

    project = "projects/%s" % gcp_args["project"]
    member = "serviceAccount:race@%s.iam.gserviceaccount.com" % gcp_args["project"]
    app = sandbox.apps["gcp"]
    original = app.handlers["cloudresourcemanager.projects.setIamPolicy"]
    state = {"raced": False}

    def racing(req, p):
        if not state["raced"]:
            state["raced"] = True
            policy = dict(get_policy(sandbox, project))
            set_policy(sandbox, project, dict(policy, bindings=policy["bindings"] + [
                {"role": "roles/viewer", "members": ["user:other@example.com"]}]))
        return original(req, p)

    app.handlers["cloudresourcemanager.projects.setIamPolicy"] = racing
    try:
        start = sandbox.log.mark()
        out = module_runner("gcp_iam_member", dict(gcp_args, roles=["roles/logging.viewer", "roles/monitoring.viewer"],
                                                   member=member))
    finally:
        app.handlers["cloudresourcemanager.projects.setIamPolicy"] = original
    assert out["changed"] and policy_calls(sandbox, start, project) == (2, 2)
    bindings = sandbox.store.table("iam.policies")[project]["bindings"]
    assert any(b["role"] == "roles/viewer" and "user:other@example.com" in b["members"] for b in bindings)
    assert all(any(b["role"] == r and member in b["members"] for b in bindings)
               for r in ["roles/logging.viewer", "roles/monitoring.viewer"])


def test_member_is_required_with_roles_and_checked(sandbox, gcp_args, module_runner):
    out = module_runner("gcp_iam_member", dict(gcp_args, roles=["roles/viewer"]), expect_fail=True)
    assert "member is required" in out["msg"]
    out = module_runner("gcp_iam_member", dict(gcp_args, bindings=[{"role": "roles/viewer", "member": "bob@example.com"}]),
                        expect_fail=True)
    assert "needs a type prefix" in out["msg"]
    out = module_runner("gcp_iam_member", dict(gcp_args, roles=["viewer"], member="user:a@example.com"), expect_fail=True)
    assert "is not a role name" in out["msg"]
    out = module_runner("gcp_iam_member", dict(gcp_args, role="roles/viewer", roles=["roles/viewer"],
                                               member="user:a@example.com"), expect_fail=True)
    assert "mutually exclusive" in out["msg"]
