"""gcp_storage_bucket against the sandbox's storage v1: access, lifecycle, versioning, CMEK, labels, 409 when full."""

import pytest

from ...idempotence import converge

LOCATION = "europe-west1"


def writes(sandbox, start):
    return [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token")]


@pytest.fixture
def gcs(sandbox, gcp_args):
    from tests.unit.sandbox.gcp_helpers import enable

    enable(sandbox, "storage.googleapis.com", "cloudkms.googleapis.com")
    return gcp_args


def test_bucket_lifecycle_update_immutable_location_and_delete(sandbox, gcs, module_runner):
    bucket = dict(gcs, name="skyforge-ml-artifacts", location=LOCATION, labels={"profile": "ml"},
                  lifecycle_rules=[{"action": "Delete", "age": 90}])
    check, real, again = converge(module_runner, "gcp_storage_bucket", bucket, sandbox=sandbox, writes=writes)
    assert check["bucket"]["location"] == "EUROPE-WEST1" and check["diff"]["before"] == {}
    b = real["bucket"]
    assert real["url"] == "gs://skyforge-ml-artifacts"
    assert b["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    assert b["iamConfiguration"]["publicAccessPrevention"] == "enforced"
    assert b["lifecycle"] == {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 90}}]}
    assert b["labels"] == {"profile": "ml"} and b["storageClass"] == "STANDARD"
    assert again["bucket"]["metageneration"] == b["metageneration"]

    # Versioning, a second rule, a label dropped and one added: one patch, predicted by check mode.
    changed = dict(bucket, versioning=True, labels={"team": "data"}, lifecycle_rules=[
        {"action": "Delete", "age": 90}, {"action": "Delete", "is_live": False, "num_newer_versions": 3}])
    start = sandbox.log.mark()
    predicted = module_runner("gcp_storage_bucket", changed, check=True)
    assert predicted["changed"] and not writes(sandbox, start)
    assert set(predicted["changes"]) >= {"versioning.enabled", "labels"}
    assert predicted["diff"]["after"]["labels"] == {"team": "data"}
    updated = module_runner("gcp_storage_bucket", changed)
    assert updated["bucket"]["labels"] == {"team": "data"} and updated["bucket"]["versioning"] == {"enabled": True}
    assert len(updated["bucket"]["lifecycle"]["rule"]) == 2
    assert updated["diff"]["before"]["labels"] == {"profile": "ml"}
    assert module_runner("gcp_storage_bucket", changed)["changed"] is False

    moved = module_runner("gcp_storage_bucket", dict(changed, location="us-central1"), expect_fail=True)
    assert "location cannot be changed in place" in moved["msg"] and "EUROPE-WEST1" in moved["msg"]

    # A bucket with an object is refused as GCS refuses it; emptied, it goes; twice is a no-op.
    sandbox.apps["gcp"].storage.objects["skyforge-ml-artifacts/model.bin"] = {
        "name": "model.bin", "bucket": "skyforge-ml-artifacts", "generation": "1"}
    for check_mode in (True, False):
        full = module_runner("gcp_storage_bucket", dict(changed, state="absent"), check=check_mode, expect_fail=True)
        assert "is not empty" in full["msg"] and "Fix:" in full["msg"]
    sandbox.apps["gcp"].storage.objects.pop("skyforge-ml-artifacts/model.bin")
    gone = module_runner("gcp_storage_bucket", dict(changed, state="absent"))
    assert gone["changed"] and gone["diff"]["after"] == {}
    assert module_runner("gcp_storage_bucket", dict(changed, state="absent"))["changed"] is False


def test_bucket_with_cmek_and_argument_checks(sandbox, gcs, module_runner):
    module_runner("gcp_kms_key_ring", dict(gcs, name="gcs-ring", location=LOCATION))
    key_args = dict(gcs, name="gcs-key", key_ring="gcs-ring", location=LOCATION, rotation_period="90d")
    key = module_runner("gcp_kms_crypto_key", key_args)["crypto_key"]["name"]
    bucket = dict(gcs, name="skyforge-ml-cmek", location=LOCATION, kms_key_name=key)
    real = module_runner("gcp_storage_bucket", bucket)
    assert real["bucket"]["encryption"] == {"defaultKmsKeyName": key}
    assert module_runner("gcp_storage_bucket", bucket)["changed"] is False
    plain = dict(bucket, kms_key_name=None)
    removed = module_runner("gcp_storage_bucket", plain)
    assert removed["changed"] and removed["changes"] == ["encryption"] and not removed["bucket"].get("encryption")
    assert module_runner("gcp_storage_bucket", plain)["changed"] is False
    module_runner("gcp_storage_bucket", dict(plain, state="absent"))

    for args, text in ((dict(bucket, name="Bad_Name"), "naming rules"),
                       (dict(bucket, name="google-models"), "goog"),
                       (dict(bucket, location="us-east1"), "bucket's location"),
                       (dict(bucket, lifecycle_rules=[{"action": "Delete"}]), "at least one condition"),
                       (dict(bucket, lifecycle_rules=[{"action": "SetStorageClass", "age": 30}]), "storage_class"),
                       (dict(bucket, lifecycle_rules=[{"action": "Delete", "age": -1}]), "negative")):
        start = sandbox.log.mark()
        failed = module_runner("gcp_storage_bucket", args, expect_fail=True)
        assert text in failed["msg"], failed["msg"]
        assert len(sandbox.log.entries) == start, "argument errors are caught before any API call"


def test_denied_bucket_create_names_the_documented_role(sandbox, gcs, module_runner):
    iam = sandbox.apps["gcp"].iam
    iam.set_roles(["roles/cloudkms.admin", "roles/artifactregistry.admin"])
    try:
        failed = module_runner("gcp_storage_bucket", dict(gcs, name="skyforge-ml-denied", location=LOCATION),
                               expect_fail=True)
    finally:
        iam.set_roles(None)
    assert "storage.buckets" in failed["msg"] and "roles/storage.admin" in failed["msg"], failed["msg"]
