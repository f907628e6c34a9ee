"""gcp_artifact_registry_repository against the sandbox's artifactregistry v1 (create and delete are operations)."""

import pytest

from ...idempotence import converge

LOCATION = "europe-west1"


def writes(sandbox, start):
    return [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token")]


@pytest.fixture
def ar(sandbox, gcp_args):
    from tests.unit.sandbox.gcp_helpers import enable

    enable(sandbox, "artifactregistry.googleapis.com", "cloudkms.googleapis.com")
    return gcp_args


POLICIES = [{"id": "delete-untagged", "action": "DELETE", "tag_state": "UNTAGGED", "older_than": "30d"},
            {"id": "keep-recent", "action": "KEEP", "keep_count": 10}]


def test_repository_lifecycle_cleanup_policies_and_cmek(sandbox, ar, module_runner):
    module_runner("gcp_kms_key_ring", dict(ar, name="ar-ring", location=LOCATION))
    key_args = dict(ar, name="ar-key", key_ring="ar-ring", location=LOCATION)
    key = module_runner("gcp_kms_crypto_key", key_args)["crypto_key"]["name"]
    repo = dict(ar, name="ml-images", location=LOCATION, cleanup_policies=POLICIES, kms_key_name=key,
                labels={"profile": "ml"})
    check, real, again = converge(module_runner, "gcp_artifact_registry_repository", repo, sandbox=sandbox,
                                  writes=writes)
    name = "projects/%s/locations/%s/repositories/ml-images" % (ar["project"], LOCATION)
    assert check["repository"]["name"] == name and check["diff"]["before"] == {}
    r = real["repository"]
    assert r["format"] == "DOCKER" and r["kmsKeyName"] == key and r["mode"] == "STANDARD_REPOSITORY"
    assert real["registry_uri"] == "europe-west1-docker.pkg.dev/%s/ml-images" % ar["project"]
    assert r["cleanupPolicies"] == {
        "delete-untagged": {"id": "delete-untagged", "action": "DELETE",
                            "condition": {"tagState": "UNTAGGED", "olderThan": "2592000s"}},
        "keep-recent": {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 10}}}

    # One policy dropped, dry run on, tags immutable, labels changed: patched in place, predicted by check mode.
    changed = dict(repo, cleanup_policies=POLICIES[1:], cleanup_policy_dry_run=True, immutable_tags=True,
                   labels={"team": "data"})
    start = sandbox.log.mark()
    predicted = module_runner("gcp_artifact_registry_repository", changed, check=True)
    assert predicted["changed"] and not writes(sandbox, start)
    assert predicted["changes"] == ["cleanupPolicies", "cleanupPolicyDryRun", "dockerConfig.immutableTags", "labels"]
    updated = module_runner("gcp_artifact_registry_repository", changed)
    assert list(updated["repository"]["cleanupPolicies"]) == ["keep-recent"]
    assert updated["repository"]["cleanupPolicyDryRun"] is True and updated["repository"]["labels"] == {"team": "data"}
    assert updated["diff"]["before"]["labels"] == {"profile": "ml"}
    assert module_runner("gcp_artifact_registry_repository", changed)["changed"] is False

    for args, text in ((dict(changed, format="PYTHON", immutable_tags=False), "format cannot be changed in place"),
                       (dict(changed, kms_key_name=key.replace("ar-key", "other")),
                        "kmsKeyName cannot be changed in place")):
        failed = module_runner("gcp_artifact_registry_repository", args, expect_fail=True)
        assert text in failed["msg"], failed["msg"]

    gone = module_runner("gcp_artifact_registry_repository", dict(changed, state="absent"))
    assert gone["changed"] and gone["diff"]["after"] == {}
    assert name not in sandbox.store.table("artifactregistry.repositories")
    assert module_runner("gcp_artifact_registry_repository", dict(changed, state="absent"))["changed"] is False


def test_argument_checks_come_before_any_call(sandbox, ar, module_runner):
    repo = dict(ar, name="ml-bad", location=LOCATION)
    for extra, text in (({"name": "Bad"}, "repository ID"),
                        ({"cleanup_policies": [{"id": "a", "action": "DELETE", "keep_count": 3}]},
                         "only for action KEEP"),
                        ({"cleanup_policies": [{"id": "a", "action": "DELETE"}]}, "needs a condition"),
                        ({"cleanup_policies": [{"id": "a", "action": "DELETE", "older_than": "1 month"}]},
                         "not a duration"),
                        ({"cleanup_policies": [{"id": "a", "action": "DELETE", "tag_state": "TAGGED"}]},
                         "needs tag_prefixes"),
                        ({"format": "PYTHON", "immutable_tags": True}, "only for format DOCKER"),
                        ({"kms_key_name": "projects/p/locations/us/keyRings/r/cryptoKeys/k"}, "repository's location")):
        start = sandbox.log.mark()
        failed = module_runner("gcp_artifact_registry_repository", dict(repo, **extra), expect_fail=True)
        assert text in failed["msg"], failed["msg"]
        assert len(sandbox.log.entries) == start
