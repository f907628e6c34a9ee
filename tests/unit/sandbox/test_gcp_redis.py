"""redis v1 (Memorystore) in the sandbox through google-api-python-client, down to a real redis-server."""

import json
import os
import shutil
import ssl
import tempfile
import time

import pytest
from googleapiclient.errors import HttpError

from .gcp_helpers import client, enable, wait_compute

REGION = "europe-west1"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed: apt-get install redis-server (bindep.txt)")


def error_of(exc):
    return json.loads(exc.value.content)["error"]


def wait_op(redis_api, op, timeout=30):
    deadline = time.time() + timeout
    while not op.get("done"):
        assert time.time() < deadline, "operation did not finish"
        time.sleep(0.02)
        op = redis_api.operations().get(name=op["name"]).execute()
    return op


def network(sandbox, name, psa_range=None):
    compute = client(sandbox, "compute")
    project = sandbox.config.project
    wait_compute(compute, project, compute.networks().insert(project=project, body={
        "name": name, "autoCreateSubnetworks": False}).execute())
    if psa_range:
        wait_compute(compute, project, compute.globalAddresses().insert(project=project, body={
            "name": name + "-psa", "addressType": "INTERNAL", "purpose": "VPC_PEERING", "prefixLength": 20,
            "address": psa_range, "network": "projects/%s/global/networks/%s" % (project, name)}).execute())
        sn = client(sandbox, "servicenetworking")
        op = sn.services().connections().create(parent="services/servicenetworking.googleapis.com", body={
            "network": "projects/%s/global/networks/%s" % (sandbox.apps["gcp"].project_number, name),
            "reservedPeeringRanges": [name + "-psa"]}).execute()
        while not op.get("done"):
            time.sleep(0.02)
            op = sn.operations().get(name=op["name"]).execute()
    return "projects/%s/global/networks/%s" % (project, name)


@pytest.fixture(scope="module")
def api(sandbox):
    enable(sandbox, "compute.googleapis.com", "servicenetworking.googleapis.com", "redis.googleapis.com")
    return client(sandbox, "redis").projects().locations()


@pytest.fixture(scope="module")
def parent(sandbox):
    return "projects/%s/locations/%s" % (sandbox.config.project, REGION)


def test_create_ready_tls_auth_real_redis_then_delete(sandbox, api, parent, tmp_path):
    import redis

    net = network(sandbox, "ms-net", psa_range="10.140.0.0")
    op = api.instances().create(parent=parent, instanceId="cache", body={
        "tier": "STANDARD_HA", "memorySizeGb": 1, "authorizedNetwork": net, "connectMode": "PRIVATE_SERVICE_ACCESS",
        "authEnabled": True, "transitEncryptionMode": "SERVER_AUTHENTICATION", "redisVersion": "REDIS_7_2",
        "labels": {"app": "prefect"}}).execute()
    assert op["name"].startswith(parent + "/operations/") and not op["done"]
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.redis.v1.OperationMetadata"
    assert op["metadata"]["verb"] == "create" and op["metadata"]["target"] == parent + "/instances/cache"
    inst = api.instances().get(name=parent + "/instances/cache").execute()
    assert inst["state"] == "CREATING"
    with pytest.raises(HttpError) as exc:
        api.instances().patch(name=inst["name"], updateMask="memorySizeGb", body={"memorySizeGb": 2}).execute()
    assert exc.value.resp.status == 400 and error_of(exc)["status"] == "FAILED_PRECONDITION"
    done = wait_op(api, op)
    assert "error" not in done, done.get("error")
    assert done["response"]["@type"] == "type.googleapis.com/google.cloud.redis.v1.Instance"

    inst = api.instances().get(name=parent + "/instances/cache").execute()
    assert inst["state"] == "READY" and inst["tier"] == "STANDARD_HA" and inst["redisVersion"] == "REDIS_7_2"
    assert inst["host"].startswith("10.140.") and inst["port"] == 6378
    assert inst["currentLocationId"] == inst["locationId"] == REGION + "-b"
    assert [n["id"] for n in inst["nodes"]] == ["node-0", "node-1"] and inst["alternativeLocationId"] != REGION + "-b"
    assert inst["authorizedNetwork"] == net and inst["connectMode"] == "PRIVATE_SERVICE_ACCESS"
    assert inst["authEnabled"] is True and inst["labels"] == {"app": "prefect"}
    assert "authString" not in json.dumps(inst), "a read never holds the AUTH string"
    ca = inst["serverCaCerts"][0]
    assert ca["cert"].startswith("-----BEGIN CERTIFICATE-----") and ca["sha1Fingerprint"] and ca["expireTime"]
    auth = api.instances().getAuthString(name=inst["name"]).execute()["authString"]
    listed = api.instances().list(parent=parent).execute()["instances"]
    assert [i["name"] for i in listed] == [inst["name"]]
    assert [i["name"] for i in api.instances().list(parent="projects/%s/locations/-" % sandbox.config.project)
            .execute()["instances"]] == [inst["name"]]

    host, port = sandbox.resolve(inst["host"], inst["port"])
    assert host == "127.0.0.1"
    tls = dict(host=host, port=port, ssl=True, ssl_cert_reqs="required", ssl_check_hostname=False, socket_timeout=5)
    good = redis.Redis(password=auth, ssl_ca_data=ca["cert"], **tls)
    assert good.ping() and good.set("k", "v") and good.get("k") == b"v"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(ssl_ca_data=ca["cert"], **tls).get("k")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(password="not-the-auth-string", ssl_ca_data=ca["cert"], **tls).ping()
    # The server certificate is for the instance's address (and the loopback address the sandbox serves it from,
    # which a pod's rewritten URL dials), signed by the CA serverCaCerts returns, and only by it.
    pem = ssl.get_server_certificate((host, port))
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem.encode())
    ips = [str(ip) for ip in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
           .get_values_for_type(x509.IPAddress)]
    assert ips == [inst["host"], host]
    # So a client that checks the hostname, as redis-py does by default, verifies the mapped endpoint.
    assert redis.Redis(password=auth, ssl_ca_data=ca["cert"], **dict(tls, ssl_check_hostname=True)).ping()
    other_ca = os.path.join(sandbox.config.state_dir, "googleapis-ca.pem")
    with pytest.raises(redis.ConnectionError):
        redis.Redis(password=auth, ssl_ca_certs=other_ca, **tls).ping()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=host, port=port, password=auth, socket_timeout=5).ping()  # TLS only

    # AUTH off, size up, in place: the data stays.
    wait_op(api, api.instances().patch(name=inst["name"], updateMask="memory_size_gb,auth_enabled",
                                       body={"memorySizeGb": 3, "authEnabled": False}).execute())
    inst = api.instances().get(name=inst["name"]).execute()
    assert inst["memorySizeGb"] == 3 and "authEnabled" not in inst, "false is left out, as proto3 JSON does"
    assert api.instances().getAuthString(name=inst["name"]).execute() == {}
    plain = redis.Redis(ssl_ca_data=ca["cert"], **tls)
    assert plain.get("k") == b"v" and plain.config_get("maxmemory")["maxmemory"] == str(3 * 1024 ** 3)
    with pytest.raises(HttpError) as exc:
        api.instances().patch(name=inst["name"], updateMask="tier", body={"tier": "BASIC"}).execute()
    assert exc.value.resp.status == 400 and "cannot be updated in place" in error_of(exc)["message"]
    wait_op(api, api.instances().upgrade(name=inst["name"], body={"redisVersion": "REDIS_7_2"}).execute())
    with pytest.raises(HttpError) as exc:
        api.instances().upgrade(name=inst["name"], body={"redisVersion": "REDIS_6_X"}).execute()
    assert "Cannot downgrade" in error_of(exc)["message"]

    sn = client(sandbox, "servicenetworking")
    with pytest.raises(HttpError) as exc:
        connection = "services/servicenetworking.googleapis.com/connections/servicenetworking-googleapis-com"
        consumer = "projects/%s/global/networks/ms-net" % sandbox.apps["gcp"].project_number
        sn.services().connections().deleteConnection(name=connection, body={"consumerNetwork": consumer}).execute()
    assert "Producer services" in error_of(exc)["message"], "the instance holds an address of the peered range"

    server = sandbox.apps["gcp"].memorystore.servers[inst["name"]]
    pid = server.proc.pid
    from sandbox import procs

    assert pid in [e["pid"] for e in procs.recorded(sandbox.config.state_dir)], "`sandbox down` would stop it"
    op = api.instances().delete(name=inst["name"]).execute()
    assert api.instances().get(name=inst["name"]).execute()["state"] == "DELETING"
    assert wait_op(api, op)["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    with pytest.raises(HttpError) as exc:
        api.instances().get(name=inst["name"]).execute()
    assert exc.value.resp.status == 404
    assert procs._start_time(pid) is None, "the redis-server process is gone"
    assert pid not in [e["pid"] for e in procs.recorded(sandbox.config.state_dir)]
    with pytest.raises(LookupError):
        sandbox.resolve(inst["host"], inst["port"])


def test_direct_peering_plain_port_and_reserved_range(sandbox, api, parent):
    import redis

    net = network(sandbox, "ms-direct")
    op = api.instances().create(parent=parent, instanceId="direct", body={
        "tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net, "reservedIpRange": "10.77.0.8/29"}).execute()
    wait_op(api, op)
    inst = api.instances().get(name=parent + "/instances/direct").execute()
    assert inst["connectMode"] == "DIRECT_PEERING" and inst["reservedIpRange"] == "10.77.0.8/29"
    assert inst["host"] == "10.77.0.11" and inst["port"] == 6379 and "serverCaCerts" not in inst
    assert "transitEncryptionMode" in inst and inst["redisVersion"] == "REDIS_7_0"
    host, port = sandbox.resolve(inst["host"], inst["port"])
    assert redis.Redis(host=host, port=port, socket_timeout=5).ping()
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="direct2", body={
            "tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net, "reservedIpRange": "10.77.0.8/29"}).execute()
    assert "overlaps" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="direct", body={
            "tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net}).execute()
    assert exc.value.resp.status == 409
    wait_op(api, api.instances().delete(name=inst["name"]).execute())


def test_strict_requests(sandbox, api, parent):
    net = network(sandbox, "ms-strict")
    body = {"tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net}
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, memorySize=1)).execute()
    assert exc.value.resp.status == 400 and 'Unknown name "memorySize"' in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, memorySizeGb="big")).execute()
    assert "Invalid value at 'memorySizeGb' (TYPE_INT32)" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, tier="PREMIUM")).execute()
    assert "Invalid value at 'tier' (type.googleapis.com/enum)" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="Bad_Id", body=body).execute()
    assert "Invalid instance_id" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body={"memorySizeGb": 1}).execute()
    assert "tier" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, redisVersion="REDIS_9")).execute()
    assert "Invalid redis_version" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, connectMode="PRIVATE_SERVICE_ACCESS"))\
            .execute()
    assert error_of(exc)["status"] == "FAILED_PRECONDITION" and "Private service access" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, authorizedNetwork="ms-strict")).execute()
    assert "Invalid authorized network" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="x", body=dict(body, redisConfigs={"save": "60 1"})).execute()
    assert "Invalid Redis configuration parameter 'save'" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        api.instances().get(name=parent + "/instances/missing").execute()
    assert exc.value.resp.status == 404
    assert not [k for k in sandbox.store.table("redis.instances") if k.endswith("/instances/x")], "nothing was created"


def test_without_redis_server_create_names_the_package(sandbox, api, parent, monkeypatch):
    net = network(sandbox, "ms-nobin")
    monkeypatch.setenv("SKYFORGE_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(HttpError) as exc:
        api.instances().create(parent=parent, instanceId="nobin", body={
            "tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net}).execute()
    err = error_of(exc)
    assert exc.value.resp.status == 400 and err["status"] == "FAILED_PRECONDITION"
    assert "install the Debian package 'redis-server'" in err["message"]
    assert not [k for k in sandbox.store.table("redis.instances") if k.endswith("/nobin")]


def test_service_enablement_least_privilege_and_stop(tmp_path):
    """A sandbox of its own: the API starts disabled, IAM wants roles/redis.admin, stop() ends every redis-server."""
    from sandbox import procs
    from sandbox.core import Config, Sandbox

    sb = Sandbox(Config(state_dir=tempfile.mkdtemp(dir=str(tmp_path)), port_base=0, time_scale=0.002),
                 with_postgres=False).start()
    try:
        enable(sb, "compute.googleapis.com")
        net = network(sb, "default")
        api = client(sb, "redis").projects().locations()
        parent = "projects/%s/locations/%s" % (sb.config.project, REGION)
        body = {"tier": "BASIC", "memorySizeGb": 1, "authorizedNetwork": net, "authEnabled": True}
        with pytest.raises(HttpError) as exc:
            api.instances().create(parent=parent, instanceId="c", body=body).execute()
        assert exc.value.resp.status == 403
        assert "Google Cloud Memorystore for Redis API has not been used" in error_of(exc)["message"]
        enable(sb, "redis.googleapis.com")
        sb.apps["gcp"].iam.set_roles(["roles/compute.networkAdmin"])
        with pytest.raises(HttpError) as exc:
            api.instances().create(parent=parent, instanceId="c", body=body).execute()
        assert exc.value.resp.status == 403 and "redis.instances.create" in error_of(exc)["message"]
        sb.apps["gcp"].iam.set_roles(["roles/redis.admin"])
        inst = wait_op(api, api.instances().create(parent=parent, instanceId="c", body=body).execute())["response"]
        assert api.instances().getAuthString(name=inst["name"]).execute()["authString"]
        assert sb.apps["gcp"].iam.describe()["denied"] == []
        pid = sb.apps["gcp"].memorystore.servers[inst["name"]].proc.pid
    finally:
        sb.stop()
    assert procs._start_time(pid) is None, "stopping the sandbox stops the instance's redis-server"
    assert procs.recorded(sb.config.state_dir) == []
