"""gcp_kms_key_ring and gcp_kms_crypto_key against the sandbox's cloudkms v1."""

import pytest

from ...idempotence import converge

LOCATION = "europe-west1"


def writes(sandbox, start):
    return [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token")]


@pytest.fixture
def kms(sandbox, gcp_args):
    from tests.unit.sandbox.gcp_helpers import enable

    enable(sandbox, "cloudkms.googleapis.com")
    return gcp_args


def test_key_ring_lifecycle_and_refusal_while_it_holds_keys(sandbox, kms, module_runner):
    ring = dict(kms, name="ml-ring", location=LOCATION)
    check, real, again = converge(module_runner, "gcp_kms_key_ring", ring, sandbox=sandbox, writes=writes)
    name = "projects/%s/locations/%s/keyRings/ml-ring" % (kms["project"], LOCATION)
    assert check["key_ring"]["name"] == name and real["key_ring"]["name"] == name
    assert real["diff"]["before"] == {} and real["diff"]["after"]["name"] == name
    assert again["key_ring"]["createTime"] == real["key_ring"]["createTime"]

    module_runner("gcp_kms_crypto_key", dict(kms, name="k1", key_ring="ml-ring", location=LOCATION))
    for check_mode in (True, False):
        failed = module_runner("gcp_kms_key_ring", dict(ring, state="absent"), check=check_mode, expect_fail=True)
        assert "still holds the key(s) k1" in failed["msg"] and "Fix:" in failed["msg"]

    empty = dict(kms, name="ml-empty", location=LOCATION)
    module_runner("gcp_kms_key_ring", empty)
    gone = module_runner("gcp_kms_key_ring", dict(empty, state="absent"))
    assert gone["changed"] and gone["diff"]["after"] == {}
    assert module_runner("gcp_kms_key_ring", dict(empty, state="absent"))["changed"] is False


def test_crypto_key_rotation_update_immutable_and_retire(sandbox, kms, module_runner):
    module_runner("gcp_kms_key_ring", dict(kms, name="cmek", location=LOCATION))
    key = dict(kms, name="artifacts", key_ring="cmek", location=LOCATION, rotation_period="90d",
               labels={"profile": "ml"})
    check, real, again = converge(module_runner, "gcp_kms_crypto_key", key, sandbox=sandbox, writes=writes)
    assert check["crypto_key"]["rotationPeriod"] == "7776000s" and check["crypto_key"]["nextRotationTime"]
    ck = real["crypto_key"]
    assert ck["purpose"] == "ENCRYPT_DECRYPT" and ck["rotationPeriod"] == "7776000s"
    assert ck["primary"]["state"] == "ENABLED" and ck["primary"]["name"].endswith("/cryptoKeyVersions/1")
    assert ck["versionTemplate"] == {"protectionLevel": "SOFTWARE", "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"}
    assert ck["labels"] == {"profile": "ml"}

    # Rotation period and labels change in place; check mode predicts without writing.
    changed = dict(key, rotation_period="30d", labels={"profile": "ml", "team": "data"})
    start = sandbox.log.mark()
    predicted = module_runner("gcp_kms_crypto_key", changed, check=True)
    assert predicted["changed"] and predicted["changes"] == ["labels", "rotationPeriod"]
    assert predicted["diff"]["after"]["rotationPeriod"] == "2592000s" and not writes(sandbox, start)
    updated = module_runner("gcp_kms_crypto_key", changed)
    assert updated["crypto_key"]["rotationPeriod"] == "2592000s"
    assert updated["crypto_key"]["labels"] == {"profile": "ml", "team": "data"}
    assert updated["crypto_key"]["nextRotationTime"] != ck["nextRotationTime"]
    assert module_runner("gcp_kms_crypto_key", changed)["changed"] is False

    for field, value, named in (("protection_level", "HSM", "versionTemplate.protectionLevel"),
                                ("destroy_scheduled_duration", "2d", "destroyScheduledDuration")):
        failed = module_runner("gcp_kms_crypto_key", dict(changed, **{field: value}), expect_fail=True)
        assert "%s cannot be changed in place" % named in failed["msg"], failed["msg"]
    bad = module_runner("gcp_kms_crypto_key", dict(changed, rotation_period="12h"), expect_fail=True)
    assert "24 hours" in bad["msg"]

    # Absent: versions are scheduled for destruction and rotation stops; the key stays (GCP keeps it).
    absent = dict(changed, state="absent")
    start = sandbox.log.mark()
    check = module_runner("gcp_kms_crypto_key", absent, check=True)
    assert check["changed"] and check["destroyed_versions"] == [ck["primary"]["name"]] and not writes(sandbox, start)
    assert check["diff"]["after"]["versions"] == {"1": "DESTROY_SCHEDULED"}
    real = module_runner("gcp_kms_crypto_key", absent)
    assert real["changed"] and real["deleted"] is False and "rotationPeriod" not in real["crypto_key"]
    assert "scheduled for destruction" in repr(real.get("warnings"))
    versions = sandbox.store.table("cloudkms.cryptoKeyVersions")
    assert versions[ck["primary"]["name"]]["state"] == "DESTROY_SCHEDULED"
    assert module_runner("gcp_kms_crypto_key", absent)["changed"] is False

    # Once DESTROYED, the next absent run deletes the versions and the key.
    versions[ck["primary"]["name"]]["destroyTime"] = "2000-01-01T00:00:00Z"
    final = module_runner("gcp_kms_crypto_key", absent)
    assert final["changed"] and final["deleted"] is True and final["crypto_key"] == {}
    assert not any(k.endswith("/cryptoKeys/artifacts") for k in sandbox.store.table("cloudkms.cryptoKeys"))
    assert module_runner("gcp_kms_crypto_key", absent)["changed"] is False


def test_present_again_after_versions_were_destroyed_makes_a_new_primary(sandbox, kms, module_runner):
    module_runner("gcp_kms_key_ring", dict(kms, name="cmek2", location=LOCATION))
    key = dict(kms, name="k", key_ring="cmek2", location=LOCATION)
    module_runner("gcp_kms_crypto_key", key)
    module_runner("gcp_kms_crypto_key", dict(key, state="absent"))
    back = module_runner("gcp_kms_crypto_key", key)
    assert back["changed"] and back["changes"] == ["primary"]
    assert back["crypto_key"]["primary"]["state"] == "ENABLED"
    assert back["crypto_key"]["primary"]["name"].endswith("/cryptoKeyVersions/2")
    assert module_runner("gcp_kms_crypto_key", key)["changed"] is False
