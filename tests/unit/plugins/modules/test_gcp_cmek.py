"""CMEK: Cloud SQL disk encryption and GKE application-layer secrets encryption with a Cloud KMS key."""

import pytest

REGION = "europe-west1"


@pytest.fixture(scope="module")
def cmek(sandbox):
    """A VPC with Private Service Access and a subnetwork for GKE, and a key in REGION and one in another region."""
    from ...conftest import run_module

    ep = sandbox.endpoints()
    args = {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
            "service_account_file": ep["gcp_service_account_file"],
            "api_endpoint_template": ep["gcp_api_endpoint_template"]}
    run_module("gcp_project_services", dict(args, services=[
        "compute.googleapis.com", "servicenetworking.googleapis.com", "sqladmin.googleapis.com",
        "container.googleapis.com", "cloudkms.googleapis.com"]))
    run_module("gcp_network", dict(args, name="cmek-net"))
    run_module("gcp_address", dict(args, name="cmek-psa", address_type="INTERNAL", purpose="VPC_PEERING",
                                   prefix_length=20, network="cmek-net", address="10.170.0.0"))
    run_module("gcp_service_networking_connection", dict(args, network="cmek-net", ranges=["cmek-psa"]))
    run_module("gcp_subnetwork", dict(args, name="cmek-sub", region=REGION, network="cmek-net",
                                      ip_cidr_range="10.180.0.0/20",
                                      secondary_ranges=[{"range_name": "pods", "ip_cidr_range": "10.184.0.0/14"},
                                                        {"range_name": "services", "ip_cidr_range": "10.190.0.0/20"}]))
    keys = {}
    for location in (REGION, "us-central1"):
        run_module("gcp_kms_key_ring", dict(args, name="cmek-ring", location=location))
        for name in ("sql", "gke"):
            run_module("gcp_kms_crypto_key", dict(args, name=name, key_ring="cmek-ring", location=location,
                                                  rotation_period="7776000s"))
            keys[(location, name)] = "projects/%s/locations/%s/keyRings/cmek-ring/cryptoKeys/%s" % (
                args["project"], location, name)
    return args, keys


def test_cloudsql_disk_encryption_key(sandbox, gcp_args, module_runner, cmek):
    _args, keys = cmek
    inst = dict(gcp_args, name="cmek-db", region=REGION, network="cmek-net", deletion_protection=False,
                disk_encryption_key=keys[(REGION, "sql")])
    check = module_runner("gcp_sql_instance", inst, check=True)
    assert check["changed"]
    assert check["instance"]["diskEncryptionConfiguration"]["kmsKeyName"] == keys[(REGION, "sql")]
    real = module_runner("gcp_sql_instance", inst)
    assert real["changed"] and real["instance"]["state"] == "RUNNABLE"
    expected = {"kind": "sql#diskEncryptionConfiguration", "kmsKeyName": keys[(REGION, "sql")]}
    assert real["instance"]["diskEncryptionConfiguration"] == expected
    assert module_runner("gcp_sql_instance", inst)["changed"] is False
    assert module_runner("gcp_sql_instance", inst, check=True)["changed"] is False
    moved = module_runner("gcp_sql_instance", dict(inst, disk_encryption_key=keys[(REGION, "gke")]), expect_fail=True)
    assert "cannot be changed in place" in moved["msg"] and "diskEncryptionConfiguration" in moved["msg"]
    # Omitting the key leaves the instance's encryption alone.
    assert module_runner("gcp_sql_instance", dict(inst, disk_encryption_key=None))["changed"] is False
    module_runner("gcp_sql_instance", dict(inst, state="absent"))


def test_cloudsql_key_refused_by_the_api(sandbox, gcp_args, module_runner, cmek):
    _args, keys = cmek
    inst = dict(gcp_args, name="cmek-far", region=REGION, network="cmek-net", deletion_protection=False)
    far = module_runner("gcp_sql_instance", dict(inst, disk_encryption_key=keys[("us-central1", "sql")]),
                        expect_fail=True)
    assert "same region" in far["msg"] and "us-central1" in far["msg"]
    missing = keys[(REGION, "sql")].replace("/sql", "/nope")
    gone = module_runner("gcp_sql_instance", dict(inst, disk_encryption_key=missing), expect_fail=True)
    assert "does not exist" in gone["msg"]
    malformed = module_runner("gcp_sql_instance", dict(inst, disk_encryption_key="cmek-ring/sql"), expect_fail=True)
    assert "is not a Cloud KMS key name" in malformed["msg"]
    assert module_runner("gcp_sql_instance", dict(inst, state="absent"))["changed"] is False


def test_gke_application_layer_secrets_encryption(sandbox, gcp_args, module_runner, cmek):
    _args, keys = cmek
    key = keys[(REGION, "gke")]
    args = dict(gcp_args, name="cmek-gke", location=REGION, network="cmek-net", subnetwork="cmek-sub",
                deletion_protection=False)
    plain = module_runner("gcp_autopilot_cluster", args)
    assert plain["changed"] and plain["cluster"]["databaseEncryption"]["state"] == "DECRYPTED"
    enc = dict(args, database_encryption_key=key)
    check = module_runner("gcp_autopilot_cluster", enc, check=True)
    assert check["changed"] and check["cluster"]["databaseEncryption"]["keyName"] == key
    start = sandbox.log.mark()
    upd = module_runner("gcp_autopilot_cluster", enc)
    assert upd["changed"] and [c.split(".")[0] for c in upd["changes"]] == ["databaseEncryption", "databaseEncryption"]
    assert upd["cluster"]["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key,
                                                    "currentState": "CURRENT_STATE_ENCRYPTED"}
    writes = [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
              and not e["path"].endswith("/token")]
    assert len(writes) == 1, "one clusters.update with desiredDatabaseEncryption"
    assert module_runner("gcp_autopilot_cluster", enc)["changed"] is False
    assert module_runner("gcp_autopilot_cluster", args)["changed"] is False, "omitted: left alone"
    far = module_runner("gcp_autopilot_cluster", dict(args, database_encryption_key=keys[("us-central1", "gke")]),
                        expect_fail=True)
    assert "same region" in far["msg"]
    module_runner("gcp_autopilot_cluster", dict(args, state="absent"))


def test_gke_created_encrypted_and_wrong_region_refused(sandbox, gcp_args, module_runner, cmek):
    _args, keys = cmek
    args = dict(gcp_args, name="cmek-gke2", location=REGION, network="cmek-net", subnetwork="cmek-sub",
                deletion_protection=False)
    far = module_runner("gcp_autopilot_cluster", dict(args, database_encryption_key=keys[("us-central1", "gke")]),
                        expect_fail=True)
    assert "same region" in far["msg"] and "us-central1" in far["msg"]
    bad = module_runner("gcp_autopilot_cluster", dict(args, database_encryption_key="gke"), expect_fail=True)
    assert "is not a Cloud KMS key name" in bad["msg"]
    enc = dict(args, database_encryption_key=keys[(REGION, "gke")])
    real = module_runner("gcp_autopilot_cluster", enc)
    assert real["changed"] and real["cluster"]["databaseEncryption"]["state"] == "ENCRYPTED"
    assert module_runner("gcp_autopilot_cluster", enc)["changed"] is False
    module_runner("gcp_autopilot_cluster", dict(args, state="absent"))


def test_cloudsql_mysql_instance_database_and_user_lifecycle(sandbox, gcp_args, module_runner, cmek):
    _args, keys = cmek
    inst = dict(gcp_args, name="cmek-mysql", region=REGION, network="cmek-net", database_version="MYSQL_8_4",
                deletion_protection=False, flags={"max_connections": 200}, disk_encryption_key=keys[(REGION, "sql")])
    real = module_runner("gcp_sql_instance", inst)
    assert real["changed"] and real["instance"]["databaseVersion"] == "MYSQL_8_4"
    assert real["instance"]["state"] == "RUNNABLE" and real["private_ip"].startswith("10.170.")
    assert module_runner("gcp_sql_instance", inst)["changed"] is False
    other = module_runner("gcp_sql_instance", dict(inst, database_version="POSTGRES_16"), expect_fail=True)
    assert "cannot be changed in place" in other["msg"]

    db = dict(gcp_args, instance="cmek-mysql", name="app")
    created = module_runner("gcp_sql_database", db)
    assert created["changed"] and created["database"]["charset"] == "utf8mb4"
    assert created["database"]["collation"] == "utf8mb4_0900_ai_ci"
    assert module_runner("gcp_sql_database", db)["changed"] is False
    latin = module_runner("gcp_sql_database", dict(db, charset="latin1"), expect_fail=True)
    assert "cannot be changed in place" in latin["msg"]

    user = dict(gcp_args, instance="cmek-mysql", name="app", password="s3cret-pass-1")
    nohost = module_runner("gcp_sql_user", user, expect_fail=True)
    assert "needs a host" in nohost["msg"]
    anywhere = module_runner("gcp_sql_user", dict(user, host="%"))
    assert anywhere["changed"] and anywhere["user"]["host"] == "%"
    local = module_runner("gcp_sql_user", dict(user, host="10.0.0.5"))
    assert local["changed"], "app@10.0.0.5 is another user than app@%"
    assert module_runner("gcp_sql_user", dict(user, host="%"))["changed"] is False
    assert module_runner("gcp_sql_user", dict(user, host="%", state="absent"))["changed"] is True
    assert module_runner("gcp_sql_user", dict(user, host="10.0.0.5"))["changed"] is False
    assert module_runner("gcp_sql_database", dict(db, state="absent"))["changed"] is True
    assert module_runner("gcp_sql_instance", dict(inst, state="absent"))["changed"] is True
