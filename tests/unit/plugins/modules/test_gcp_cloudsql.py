"""Secret Manager and Cloud SQL modules against the sandbox, down to a real TLS connection to PostgreSQL."""

import os
import subprocess

import pytest

REGION = "europe-west1"


@pytest.fixture(scope="module")
def psa(sandbox):
    """A VPC with Private Service Access, built with the modules themselves."""
    from ...conftest import run_module

    ep = sandbox.endpoints()
    args = {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
            "service_account_file": ep["gcp_service_account_file"],
            "api_endpoint_template": ep["gcp_api_endpoint_template"]}
    run_module("gcp_project_services", dict(args, services=["compute.googleapis.com", "servicenetworking.googleapis.com",
                                                            "sqladmin.googleapis.com", "secretmanager.googleapis.com"]))
    run_module("gcp_network", dict(args, name="sql-net"))
    run_module("gcp_address", dict(args, name="sql-psa", address_type="INTERNAL", purpose="VPC_PEERING",
                                   prefix_length=20, network="sql-net", address="10.120.0.0"))
    run_module("gcp_service_networking_connection", dict(args, network="sql-net", ranges=["sql-psa"]))
    return args


def test_secret_generate_once_never_shown(sandbox, gcp_args, module_runner, psa):
    args = dict(gcp_args, name="db-password", generate=True)
    check = module_runner("gcp_secret", args, check=True)
    assert check["changed"] and check["version"] == "pending"
    first = module_runner("gcp_secret", args)
    assert first["changed"] and first["version"].endswith("/versions/1")
    assert "secret_value" not in first
    again = module_runner("gcp_secret", args)
    assert again["changed"] is False and again["version"] == first["version"]
    shown = module_runner("gcp_secret", dict(gcp_args, name="db-password", return_value=True))
    value = shown["secret_value"]
    assert len(value) == 32 and shown["changed"] is False
    for out in (check, first, again):
        assert value not in out["_stdout"] + out["_stderr"]
    from sandbox.gcp.secretmanager import latest_payload

    assert latest_payload(sandbox, gcp_args["project"], "db-password").decode() == value


def test_secret_value_change_adds_a_version_and_diff_hides_it(sandbox, gcp_args, module_runner, psa):
    args = dict(gcp_args, name="api-key", value="first-value-123")
    module_runner("gcp_secret", args)
    same = module_runner("gcp_secret", args)
    assert same["changed"] is False
    new = module_runner("gcp_secret", dict(args, value="second-value-456"))
    assert new["changed"] and new["version"].endswith("/versions/2")
    text = new["_stdout"] + new["_stderr"]
    assert "second-value-456" not in text and "first-value-123" not in text
    assert new["diff"]["after"]["latest_version"] == "new value"


def test_cloudsql_private_ip_tier_change_and_real_connection(sandbox, gcp_args, module_runner, psa, tmp_path):
    inst = dict(gcp_args, name="prefect-db", region=REGION, network="sql-net", tier="db-custom-1-3840",
                maintenance_window={"day": 7, "hour": 3}, deletion_protection=False)
    check = module_runner("gcp_sql_instance", inst, check=True)
    assert check["changed"]
    real = module_runner("gcp_sql_instance", inst)
    assert real["changed"] and real["instance"]["state"] == "RUNNABLE"
    assert real["private_ip"].startswith("10.120.")
    assert [ip["type"] for ip in real["instance"]["ipAddresses"]] == ["PRIVATE"], "no public IP"
    assert real["instance"]["settings"]["ipConfiguration"]["requireSsl"] is True
    assert module_runner("gcp_sql_instance", inst)["changed"] is False

    module_runner("gcp_sql_database", dict(gcp_args, instance="prefect-db", name="prefect"))
    password = module_runner("gcp_secret", dict(gcp_args, name="prefect-db-password", generate=True, return_value=True))["secret_value"]
    user = module_runner("gcp_sql_user", dict(gcp_args, instance="prefect-db", name="prefect", password=password))
    assert user["changed"] and password not in user["_stdout"]
    assert module_runner("gcp_sql_user", dict(gcp_args, instance="prefect-db", name="prefect", password=password))["changed"] is False

    host, port = sandbox.resolve(real["private_ip"], 5432)
    assert host == "127.0.0.1", "the private IP is mapped to loopback, never dialled"

    def psql(sql):
        env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="require")
        return subprocess.run(["psql", "-h", host, "-p", str(port), "-U", "prefect", "-d", "prefect", "-qAt", "-c", sql],
                              capture_output=True, text=True, env=env, check=True).stdout.strip()

    assert psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t", "the connection uses TLS"
    psql("CREATE TABLE flows (id int); INSERT INTO flows VALUES (42)")

    upgrade = module_runner("gcp_sql_instance", dict(inst, tier="db-custom-2-7680"))
    assert upgrade["changed"] and upgrade["changes"] == ["settings.tier"]
    assert upgrade["instance"]["settings"]["settingsVersion"] == "2"
    assert psql("SELECT id FROM flows") == "42", "a tier change keeps the data"

    moved = module_runner("gcp_sql_instance", dict(inst, tier="db-custom-2-7680", network="other-net"), expect_fail=True)
    assert "cannot be changed in place" in moved["msg"]

    protected = dict(inst, tier="db-custom-2-7680", deletion_protection=True)
    module_runner("gcp_sql_instance", protected)
    refused = module_runner("gcp_sql_instance", dict(protected, state="absent"), expect_fail=True)
    assert "deletion protection" in refused["msg"] and "force: true" in refused["msg"]

    # force: only the protection setting is patched, then the instance goes; a second call writes nothing.
    gone = dict(gcp_args, name="prefect-db", force=True, state="absent")
    assert module_runner("gcp_sql_instance", gone, check=True)["changed"] is True
    assert "projects/%s/instances/prefect-db" % gcp_args["project"] in sandbox.store.table("sqladmin.instances")
    start = sandbox.log.mark()
    assert module_runner("gcp_sql_instance", gone)["changed"] is True
    patches = [e for e in sandbox.log.entries[start:] if e["method"] == "PATCH"]
    assert len(patches) == 1
    assert "projects/%s/instances/prefect-db" % gcp_args["project"] not in sandbox.store.table("sqladmin.instances")
    start = sandbox.log.mark()
    assert module_runner("gcp_sql_instance", gone)["changed"] is False
    assert not [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
                and not e["path"].endswith("/token")], "a missing instance is neither created nor patched"


def sql_calls(sandbox, start, name):
    """(instance reads, operation lists) since log entry `start`."""
    entries = [e for e in sandbox.log.entries[start:] if e["method"] == "GET"]
    reads = [e for e in entries if e["path"].split("?")[0].endswith("/instances/%s" % name)]
    # The log keeps no query string: each test runs one module at a time, so every list is of this instance.
    lists = [e for e in entries if e["path"].split("?")[0].endswith("/operations")]
    return len(reads), len(lists)


def test_wait_only_lists_operations_then_reads_once(sandbox, gcp_args, module_runner, psa):
    inst = dict(gcp_args, name="settle-db", region=REGION, network="sql-net", deletion_protection=False)
    started = module_runner("gcp_sql_instance", dict(inst, wait=False))
    assert started["changed"] and started["instance"]["state"] == "PENDING_CREATE"

    start = sandbox.log.mark()
    settled = module_runner("gcp_sql_instance", dict(inst, wait_only=True))
    assert settled["changed"] is False and settled["instance"]["state"] == "RUNNABLE"
    assert settled["private_ip"].startswith("10.120.")
    assert sql_calls(sandbox, start, "settle-db") == (1, 1), "the running create is waited for, then one read"
    list_at = next(i for i, e in enumerate(sandbox.log.entries[start:]) if e["path"].split("?")[0].endswith("/operations"))
    read_at = next(i for i, e in enumerate(sandbox.log.entries[start:])
                   if e["path"].split("?")[0].endswith("/instances/settle-db"))
    assert list_at < read_at, "the read comes after the wait, so it shows what the operations did"

    start = sandbox.log.mark()
    assert module_runner("gcp_sql_instance", dict(inst, wait_only=True))["instance"]["state"] == "RUNNABLE"
    assert sql_calls(sandbox, start, "settle-db") == (1, 1), "nothing running: one list, one read"

    start = sandbox.log.mark()
    check = module_runner("gcp_sql_instance", dict(inst, wait_only=True), check=True)
    assert check["instance"]["state"] == "RUNNABLE" and sql_calls(sandbox, start, "settle-db") == (1, 0)

    missing = module_runner("gcp_sql_instance", dict(inst, name="no-such-db", wait_only=True))
    assert missing["changed"] is False and missing["instance"] == {} and "private_ip" not in missing
    module_runner("gcp_sql_instance", dict(inst, state="absent"))


def test_user_password_from_a_secret_read_only_to_create(sandbox, gcp_args, module_runner, psa):
    module_runner("gcp_sql_instance", dict(gcp_args, name="pwsecret-db", region=REGION, network="sql-net",
                                           deletion_protection=False))
    value = module_runner("gcp_secret", dict(gcp_args, name="pwsecret-password", generate=True,
                                             return_value=True))["secret_value"]
    args = dict(gcp_args, instance="pwsecret-db", name="app", password_secret="pwsecret-password")

    def secret_reads(start):
        return [e for e in sandbox.log.entries[start:] if "/secrets/pwsecret-password" in e["path"]]

    start = sandbox.log.mark()
    check = module_runner("gcp_sql_user", args, check=True)
    assert check["changed"] and secret_reads(start) == [], "check mode predicts without the password"

    start = sandbox.log.mark()
    created = module_runner("gcp_sql_user", args)
    assert created["changed"] and len(secret_reads(start)) == 1
    assert value not in created["_stdout"] + created["_stderr"]
    settled = module_runner("gcp_sql_instance", dict(gcp_args, name="pwsecret-db", region=REGION, network="sql-net",
                                                     wait_only=True))
    pg_host, pg_port = sandbox.resolve(settled["private_ip"], 5432)
    env = dict(os.environ, PGPASSWORD=value, PGSSLMODE="require")
    subprocess.run(["psql", "-h", pg_host, "-p", str(pg_port), "-U", "app", "-d", "postgres", "-qAt", "-c", "SELECT 1"],
                   capture_output=True, text=True, env=env, check=True)

    start = sandbox.log.mark()
    again = module_runner("gcp_sql_user", args)
    assert again["changed"] is False and secret_reads(start) == [], "an existing user needs no password"

    always = module_runner("gcp_sql_user", dict(args, update_password="always"))
    assert always["changed"] and value not in always["_stdout"] + always["_stderr"]

    missing = module_runner("gcp_sql_user", dict(args, name="other", password_secret="no-such-secret"), expect_fail=True)
    assert "has no version" in missing["msg"] and "generate: true" in missing["msg"]
    both = module_runner("gcp_sql_user", dict(args, password="x" * 16), expect_fail=True)
    assert "mutually exclusive" in both["msg"]
    module_runner("gcp_sql_instance", dict(gcp_args, name="pwsecret-db", state="absent"))


def test_a_secret_read_never_creates_the_secret(sandbox, gcp_args, module_runner, psa):
    start = sandbox.log.mark()
    read = module_runner("gcp_secret", dict(gcp_args, name="never-stored", return_value=True))
    assert read["changed"] is False and read["exists"] is False and "secret_value" not in read
    writes = [e for e in sandbox.log.entries[start:] if e["method"] in ("POST", "PATCH", "PUT", "DELETE")
              and not e["path"].endswith("/token")]
    assert not writes, "a read wrote: %r" % writes
    number = sandbox.apps["gcp"].project_number
    assert "projects/%s/secrets/never-stored" % number not in sandbox.store.table("secretmanager.secrets")
    bad = module_runner("gcp_secret", dict(gcp_args, name="bad name!", return_value=True), expect_fail=True)
    assert "not a valid Secret Manager secret ID" in bad["msg"]
