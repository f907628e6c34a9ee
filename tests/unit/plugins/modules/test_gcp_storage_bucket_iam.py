"""gcp_storage_bucket_iam_member against the sandbox's bucket IAM policies: check mode, diff, idempotence, etag
conflicts retried, strict roles, and a bucket that is gone holding nothing to revoke."""

import pytest

from ...idempotence import converge

LOCATION = "europe-west1"


def writes(sandbox, start):
    return [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token")]


@pytest.fixture
def bucket(sandbox, gcp_args, module_runner):
    from tests.unit.sandbox.gcp_helpers import enable

    enable(sandbox, "storage.googleapis.com")
    module_runner("gcp_storage_bucket", dict(gcp_args, name="skyforge-iam-bucket", location=LOCATION))
    return "skyforge-iam-bucket"


def test_member_on_one_bucket_check_diff_idempotence_and_absent(sandbox, gcp_args, module_runner, bucket):
    member = "serviceAccount:mlflow@%s.iam.gserviceaccount.com" % gcp_args["project"]
    args = dict(gcp_args, bucket=bucket, role="roles/storage.objectAdmin", member=member)
    check, real, again = converge(module_runner, "gcp_storage_bucket_iam_member", args, sandbox=sandbox,
                                  writes=writes)
    assert check["members"] == real["members"] == again["members"] == [member]
    assert check["diff"] == real["diff"] == {"before": {"role": "roles/storage.objectAdmin", "members": []},
                                             "after": {"role": "roles/storage.objectAdmin", "members": [member]}}
    policy = sandbox.store.table("iam.policies")["projects/_/buckets/%s" % bucket]
    roles = dict((b["role"], b["members"]) for b in policy["bindings"])
    assert roles["roles/storage.objectAdmin"] == [member]
    assert "projectOwner:%s" % gcp_args["project"] in roles["roles/storage.legacyBucketOwner"], \
        "the bucket's other bindings are left alone"
    project = sandbox.store.table("iam.policies").get("projects/%s" % gcp_args["project"]) or {}
    assert not [b for b in project.get("bindings", []) if member in b.get("members", [])], "nothing project-wide"

    several = dict(gcp_args, bucket=bucket, roles=["roles/storage.objectViewer", "roles/storage.objectAdmin"],
                   member=member)
    both = module_runner("gcp_storage_bucket_iam_member", several, check=True)
    assert both["changed"] and both["bindings"] == [{"role": "roles/storage.objectAdmin", "members": [member]},
                                                    {"role": "roles/storage.objectViewer", "members": [member]}]
    assert "members" not in both

    gone = dict(args, state="absent")
    start = sandbox.log.mark()
    predicted = module_runner("gcp_storage_bucket_iam_member", gone, check=True)
    assert predicted["changed"] and predicted["members"] == [] and not writes(sandbox, start)
    assert module_runner("gcp_storage_bucket_iam_member", gone)["members"] == []
    assert module_runner("gcp_storage_bucket_iam_member", gone)["changed"] is False


def test_a_concurrent_policy_change_is_kept(sandbox, gcp_args, module_runner, bucket):
    """The sandbox refuses a stale etag (412); the module reads again, so another writer's member stays."""
    from sandbox.web import ApiError

    storage = sandbox.apps["gcp"].storage
    policy = dict(storage.policy(bucket))

    class Req:
        def __init__(self, body):
            self.json = body

    storage.bucket_set_iam(Req(dict(policy, bindings=policy["bindings"] + [
        {"role": "roles/storage.objectViewer", "members": ["user:other@example.com"]}])), {"bucket": bucket})
    with pytest.raises(ApiError) as err:
        storage.bucket_set_iam(Req(policy), {"bucket": bucket})
    assert err.value.status == 412

    member = "serviceAccount:reader@%s.iam.gserviceaccount.com" % gcp_args["project"]
    result = module_runner("gcp_storage_bucket_iam_member", dict(gcp_args, bucket=bucket,
                                                                 role="roles/storage.objectViewer", member=member))
    assert result["members"] == sorted(["user:other@example.com", member])


def test_roles_members_and_missing_buckets(sandbox, gcp_args, module_runner, bucket):
    member = "serviceAccount:mlflow@%s.iam.gserviceaccount.com" % gcp_args["project"]
    bad = module_runner("gcp_storage_bucket_iam_member", dict(gcp_args, bucket=bucket, role="roles/editor",
                                                              member=member), expect_fail=True)
    assert "not a Cloud Storage role" in bad["msg"]
    bad = module_runner("gcp_storage_bucket_iam_member", dict(gcp_args, bucket=bucket, role="roles/storage.objectAdmin",
                                                              member="mlflow@x.iam.gserviceaccount.com"),
                        expect_fail=True)
    assert "needs a type prefix" in bad["msg"]

    missing = dict(gcp_args, bucket="skyforge-no-such-bucket", role="roles/storage.objectAdmin", member=member)
    planned = module_runner("gcp_storage_bucket_iam_member", missing, check=True)
    assert planned["changed"] and planned["members"] == [member], "check mode plans on a bucket still to come"
    failed = module_runner("gcp_storage_bucket_iam_member", missing, expect_fail=True)
    assert "skyforge-no-such-bucket" in failed["msg"]
    assert module_runner("gcp_storage_bucket_iam_member", dict(missing, state="absent"))["changed"] is False


def test_the_sandbox_takes_only_storage_roles_and_gcs_members(sandbox, bucket):
    from sandbox.web import ApiError

    storage = sandbox.apps["gcp"].storage

    class Req:
        def __init__(self, body):
            self.json = body

    for binding, text in (({"role": "roles/editor", "members": ["user:a@b.c"]}, "not supported"),
                          ({"role": "roles/storage.objectViewer", "members": ["a@b.c"]}, "Invalid argument")):
        with pytest.raises(ApiError) as err:
            storage.bucket_set_iam(Req({"bindings": [binding]}), {"bucket": bucket})
        assert err.value.status == 400 and text in err.value.message
