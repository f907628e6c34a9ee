"""gcp_memorystore_instance against the sandbox: a real redis-server behind the instance, AUTH in Secret Manager."""

import shutil

import pytest

REGION = "europe-west1"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed: apt-get install redis-server (bindep.txt)")


@pytest.fixture(scope="module")
def psa(sandbox):
    """A VPC with Private Service Access, built with the modules themselves."""
    from ...conftest import run_module

    ep = sandbox.endpoints()
    args = {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
            "service_account_file": ep["gcp_service_account_file"],
            "api_endpoint_template": ep["gcp_api_endpoint_template"]}
    run_module("gcp_project_services", dict(args, services=[
        "compute.googleapis.com", "servicenetworking.googleapis.com", "redis.googleapis.com",
        "secretmanager.googleapis.com"]))
    run_module("gcp_network", dict(args, name="redis-net"))
    run_module("gcp_address", dict(args, name="redis-psa", address_type="INTERNAL", purpose="VPC_PEERING",
                                   prefix_length=20, network="redis-net", address="10.130.0.0"))
    run_module("gcp_service_networking_connection", dict(args, network="redis-net", ranges=["redis-psa"]))
    return args


def writes(sandbox, start):
    return [e for e in sandbox.log.entries[start:] if e["method"] not in ("GET", "HEAD")
            and not e["path"].endswith("/token")]


def connect(sandbox, result, password):
    import redis

    host, port = sandbox.resolve(result["host"], result["port"])
    assert host == "127.0.0.1", "the private address is mapped to loopback, never dialled"
    return redis.Redis(host=host, port=port, password=password, ssl=True, ssl_check_hostname=False,
                       ssl_cert_reqs="required", ssl_ca_data="".join(result["server_ca_certs"]), socket_timeout=5)


def test_memorystore_lifecycle_auth_in_secret_manager(sandbox, gcp_args, module_runner, psa):
    from sandbox.gcp.secretmanager import latest_payload

    inst = dict(gcp_args, name="prefect-redis", region=REGION, authorized_network="redis-net",
                auth_string_secret="prefect-redis-auth")
    key = "projects/%s/locations/%s/instances/prefect-redis" % (gcp_args["project"], REGION)

    start = sandbox.log.mark()
    check = module_runner("gcp_memorystore_instance", inst, check=True)
    assert check["changed"] and check["state"] == "READY" and check["port"] == 6378
    assert check["auth_string_version"] == "pending"
    assert check["diff"]["before"] == {"auth_string_secret": "none"}
    assert check["diff"]["after"]["tier"] == "BASIC" and check["diff"]["after"]["auth_string_secret"] == "new value"
    assert not writes(sandbox, start), "check mode writes nothing"
    assert key not in sandbox.store.table("redis.instances")

    real = module_runner("gcp_memorystore_instance", inst)
    assert real["changed"] and real["state"] == "READY" and real["instance"]["state"] == "READY"
    assert real["host"].startswith("10.130."), "the address comes from the PSA range"
    assert real["port"] == 6378 and real["instance"]["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    assert real["server_ca_certs"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert real["auth_string_version"].endswith("/versions/1")
    auth = latest_payload(sandbox, gcp_args["project"], "prefect-redis-auth").decode()
    assert len(auth) >= 16
    for out in (check, real):
        assert auth not in out["_stdout"] + out["_stderr"]
        assert auth not in repr(out["diff"])

    client = connect(sandbox, real, auth)
    assert client.ping() and client.set("flow", "42")
    assert client.get("flow") == b"42"

    start = sandbox.log.mark()
    again = module_runner("gcp_memorystore_instance", inst)
    assert again["changed"] is False and again["auth_string_version"] == real["auth_string_version"]
    assert again["diff"]["before"] == again["diff"]["after"]
    assert not writes(sandbox, start), "a second run writes nothing, no new secret version either"
    assert auth not in again["_stdout"] + again["_stderr"]

    bigger = module_runner("gcp_memorystore_instance", dict(inst, memory_size_gb=2), check=True)
    assert bigger["changed"] and bigger["changes"] == ["memorySizeGb"]
    assert bigger["diff"]["before"]["memorySizeGb"] == 1 and bigger["diff"]["after"]["memorySizeGb"] == 2
    bigger = module_runner("gcp_memorystore_instance", dict(inst, memory_size_gb=2))
    assert bigger["changed"] and bigger["instance"]["memorySizeGb"] == 2
    assert client.get("flow") == b"42", "a resize keeps the data"
    assert client.config_get("maxmemory")["maxmemory"] == str(2 * 1024 ** 3)

    for field, value, name in (("tier", "STANDARD_HA", "tier"), ("connect_mode", "DIRECT_PEERING", "connectMode"),
                               ("authorized_network", "other-net", "authorizedNetwork"),
                               ("transit_encryption_mode", "DISABLED", "transitEncryptionMode")):
        refused = module_runner("gcp_memorystore_instance", dict(inst, memory_size_gb=2, **{field: value}),
                                expect_fail=True)
        assert "%s cannot be changed in place" % name in refused["msg"], refused["msg"]
        assert "create it again" in refused["msg"]
    moved = module_runner("gcp_memorystore_instance", dict(inst, memory_size_gb=2, region="us-central1"),
                          expect_fail=True)
    assert "region cannot be changed in place (current %s)" % REGION in moved["msg"]

    gone = dict(gcp_args, name="prefect-redis", region=REGION, state="absent")
    assert module_runner("gcp_memorystore_instance", gone, check=True)["changed"] is True
    assert key in sandbox.store.table("redis.instances")
    deleted = module_runner("gcp_memorystore_instance", gone)
    assert deleted["changed"] is True and deleted["state"] == "ABSENT"
    assert key not in sandbox.store.table("redis.instances")
    with pytest.raises(LookupError):
        sandbox.resolve(real["host"], real["port"])
    start = sandbox.log.mark()
    assert module_runner("gcp_memorystore_instance", gone)["changed"] is False
    assert not writes(sandbox, start), "deleting a missing instance writes nothing"
    assert latest_payload(sandbox, gcp_args["project"], "prefect-redis-auth") is not None, "the secret is left alone"


def test_memorystore_auth_toggle_rotates_the_secret(sandbox, gcp_args, module_runner, psa):
    from sandbox.gcp.secretmanager import latest_payload

    inst = dict(gcp_args, name="plain-redis", region=REGION, authorized_network="redis-net", auth_enabled=False,
                transit_encryption_mode="DISABLED", auth_string_secret="plain-redis-auth", redis_version="REDIS_7_0")
    first = module_runner("gcp_memorystore_instance", inst)
    assert first["changed"] and first["port"] == 6379 and "server_ca_certs" not in first
    assert "auth_string_version" not in first, "no AUTH, nothing to store"
    assert latest_payload(sandbox, gcp_args["project"], "plain-redis-auth") is None

    # An upgrade and AUTH in one run: the upgrade's operation ends before the patch starts.
    on = module_runner("gcp_memorystore_instance", dict(inst, auth_enabled=True, redis_version="REDIS_7_2"))
    assert on["changed"] and on["changes"] == ["redisVersion", "authEnabled"]
    assert on["instance"]["redisVersion"] == "REDIS_7_2" and on["instance"]["authEnabled"] is True
    assert on["auth_string_version"].endswith("/versions/1")
    down = module_runner("gcp_memorystore_instance", dict(inst, auth_enabled=True), expect_fail=True)
    assert "redis_version cannot go from REDIS_7_2 down to REDIS_7_0" in down["msg"]
    auth = latest_payload(sandbox, gcp_args["project"], "plain-redis-auth").decode()
    assert auth not in on["_stdout"] + on["_stderr"]
    import redis

    host, port = sandbox.resolve(on["host"], on["port"])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=port, password="wrong", socket_timeout=5).ping()
    assert redis.Redis(host=host, port=port, password=auth, socket_timeout=5).ping()
    module_runner("gcp_memorystore_instance", dict(inst, state="absent"))


def test_memorystore_wait_false_then_wait(sandbox, gcp_args, module_runner, psa):
    from sandbox.gcp.secretmanager import latest_payload

    inst = dict(gcp_args, name="later-redis", region=REGION, authorized_network="redis-net",
                auth_string_secret="later-redis-auth", wait=False)
    scale = sandbox.config.time_scale
    sandbox.config.time_scale = 0.01  # a create of 3 s: still CREATING when the module reads it back
    try:
        started = module_runner("gcp_memorystore_instance", inst)
    finally:
        sandbox.config.time_scale = scale
    assert started["changed"] and started["state"] == "CREATING" and "auth_string_version" not in started
    assert "Run again with wait: true to store it" in started["_stdout"], "the module warns"
    waited = module_runner("gcp_memorystore_instance", dict(inst, wait=True))
    assert waited["state"] == "READY" and waited["changed"] is True, "the AUTH string is stored now"
    assert waited["auth_string_version"].endswith("/versions/1") and "changes" not in waited
    assert latest_payload(sandbox, gcp_args["project"], "later-redis-auth") is not None
    gone = module_runner("gcp_memorystore_instance", dict(inst, state="absent", wait=True))
    assert gone["changed"] and gone["state"] == "ABSENT"


def test_memorystore_arguments_fail_clearly(gcp_args, module_runner):
    bad = module_runner("gcp_memorystore_instance", dict(gcp_args, name="Bad_Name", region=REGION,
                                                         authorized_network="redis-net"), expect_fail=True)
    assert "not a valid Memorystore instance ID" in bad["msg"]
    zone = module_runner("gcp_memorystore_instance", dict(gcp_args, name="x", region="europe-west1-b",
                                                          authorized_network="redis-net"), expect_fail=True)
    assert "not a region" in zone["msg"]
    size = module_runner("gcp_memorystore_instance", dict(gcp_args, name="x", region=REGION, memory_size_gb=0,
                                                          authorized_network="redis-net"), expect_fail=True)
    assert "memory_size_gb=0 is out of range" in size["msg"]
