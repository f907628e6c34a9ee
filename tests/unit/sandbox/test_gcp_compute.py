"""compute v1 and servicenetworking v1 in the sandbox, replayed through google-api-python-client."""

import time

import pytest
from googleapiclient.errors import HttpError

from .gcp_helpers import client, enable, wait_compute, wait_lro

REGION = "europe-west1"


@pytest.fixture(scope="module")
def compute(sandbox):
    enable(sandbox, "compute.googleapis.com", "servicenetworking.googleapis.com")
    return client(sandbox, "compute")


@pytest.fixture(scope="module")
def project(sandbox):
    return sandbox.config.project


def error_of(exc):
    import json

    return json.loads(exc.value.content)["error"]


def test_network_lifecycle_and_shapes(compute, project):
    op = compute.networks().insert(project=project, body={"name": "t-net", "autoCreateSubnetworks": False,
                                                          "routingConfig": {"routingMode": "GLOBAL"}, "mtu": 1500}).execute()
    assert op["kind"] == "compute#operation" and op["operationType"] == "insert"
    assert op["targetLink"] == "https://www.googleapis.com/compute/v1/projects/%s/global/networks/t-net" % project
    with pytest.raises(HttpError) as exc:
        compute.networks().get(project=project, network="t-net").execute()
    assert exc.value.resp.status == 404, "the network exists only once its operation is done"
    done = wait_compute(compute, project, op)
    assert done["status"] == "DONE" and "error" not in done
    net = compute.networks().get(project=project, network="t-net").execute()
    assert net["selfLink"].endswith("/global/networks/t-net") and net["id"] and net["creationTimestamp"]
    assert net["mtu"] == 1500 and net["routingConfig"]["routingMode"] == "GLOBAL" and net["autoCreateSubnetworks"] is False
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"name": "t-net", "autoCreateSubnetworks": False}).execute()
    assert exc.value.resp.status == 409
    wait_compute(compute, project, compute.networks().patch(project=project, network="t-net",
                                                            body={"routingConfig": {"routingMode": "REGIONAL"}}).execute())
    assert compute.networks().get(project=project, network="t-net").execute()["routingConfig"]["routingMode"] == "REGIONAL"


def test_strict_body_validation(compute, project):
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"name": "x", "autoCreateSubnetwork": False}).execute()
    err = error_of(exc)
    assert exc.value.resp.status == 400 and err["status"] == "INVALID_ARGUMENT"
    assert 'Invalid JSON payload received. Unknown name "autoCreateSubnetwork"' in err["message"]
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"name": "x", "mtu": "big"}).execute()
    assert "Invalid value at 'mtu' (TYPE_INT32)" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"name": "x", "routingConfig": {"routingMode": "SIDEWAYS"}}).execute()
    assert exc.value.resp.status == 400
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"autoCreateSubnetworks": False}).execute()
    assert "Required field 'name' not specified" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body={"name": "Bad_Name"}).execute()
    assert "resource.name" in error_of(exc)["message"]


def test_subnetwork_ranges_fingerprint_and_in_use(compute, project):
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "s-net", "autoCreateSubnetworks": False}).execute())
    body = {"name": "s-sub", "network": "global/networks/s-net", "ipCidrRange": "10.10.0.0/20",
            "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "10.20.0.0/16"},
                                  {"rangeName": "services", "ipCidrRange": "10.30.0.0/20"}],
            "privateIpGoogleAccess": True}
    wait_compute(compute, project, compute.subnetworks().insert(project=project, region=REGION, body=body).execute())
    sub = compute.subnetworks().get(project=project, region=REGION, subnetwork="s-sub").execute()
    assert sub["network"].endswith("/global/networks/s-net") and sub["gatewayAddress"] == "10.10.0.1"
    assert sub["fingerprint"] and sub["region"].endswith("/regions/%s" % REGION)
    overlapping = dict(body, name="s-sub2", ipCidrRange="10.20.128.0/20", secondaryIpRanges=[])
    with pytest.raises(HttpError) as exc:
        compute.subnetworks().insert(project=project, region=REGION, body=overlapping).execute()
    assert exc.value.resp.status == 400 and "conflicts with existing secondary range 'pods'" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        compute.subnetworks().patch(project=project, region=REGION, subnetwork="s-sub",
                                    body={"fingerprint": "c3RhbGU=", "logConfig": {"enable": True}}).execute()
    assert exc.value.resp.status == 412
    wait_compute(compute, project, compute.subnetworks().patch(
        project=project, region=REGION, subnetwork="s-sub",
        body={"fingerprint": sub["fingerprint"], "logConfig": {"enable": True}}).execute())
    after = compute.subnetworks().get(project=project, region=REGION, subnetwork="s-sub").execute()
    assert after["logConfig"]["enable"] is True and after["fingerprint"] != sub["fingerprint"]
    # GCP accepts the delete of a network in use (200) and ends its operation in RESOURCE_IN_USE_BY_ANOTHER_RESOURCE.
    op = compute.networks().delete(project=project, network="s-net").execute()
    assert op["kind"] == "compute#operation" and op["operationType"] == "delete"
    done = wait_compute(compute, project, op)
    assert done["status"] == "DONE" and done["httpErrorStatusCode"] == 400
    error = done["error"]["errors"][0]
    assert error["code"] == "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
    assert "already being used by" in error["message"] and "subnetworks/s-sub" in error["message"]
    assert compute.networks().get(project=project, network="s-net").execute()["name"] == "s-net", "still there"


def test_router_nat_manual_ips_and_address_status(compute, project):
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "r-net", "autoCreateSubnetworks": False}).execute())
    wait_compute(compute, project, compute.subnetworks().insert(project=project, region=REGION, body={
        "name": "r-sub", "network": "global/networks/r-net", "ipCidrRange": "10.40.0.0/24"}).execute())
    wait_compute(compute, project, compute.addresses().insert(project=project, region=REGION,
                                                              body={"name": "r-ip"}).execute())
    ip = compute.addresses().get(project=project, region=REGION, address="r-ip").execute()
    assert ip["status"] == "RESERVED" and ip["addressType"] == "EXTERNAL"
    nat = {"name": "nat", "natIpAllocateOption": "MANUAL_ONLY", "natIps": [ip["selfLink"]],
           "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
           "subnetworks": [{"name": "regions/%s/subnetworks/r-sub" % REGION, "sourceIpRangesToNat": ["ALL_IP_RANGES"]}]}
    with pytest.raises(HttpError) as exc:
        compute.routers().insert(project=project, region=REGION, body={
            "name": "r", "network": "global/networks/r-net", "nats": [dict(nat, natIps=[])]}).execute()
    assert "MANUAL_ONLY needs at least one" in error_of(exc)["message"]
    wait_compute(compute, project, compute.routers().insert(project=project, region=REGION, body={
        "name": "r", "network": "global/networks/r-net", "nats": [nat]}).execute())
    assert compute.addresses().get(project=project, region=REGION, address="r-ip").execute()["status"] == "IN_USE"
    with pytest.raises(HttpError) as exc:
        compute.addresses().delete(project=project, region=REGION, address="r-ip").execute()
    assert exc.value.resp.status == 400
    wait_compute(compute, project, compute.routers().delete(project=project, region=REGION, router="r").execute())
    assert compute.addresses().get(project=project, region=REGION, address="r-ip").execute()["status"] == "RESERVED"


def test_private_service_access(sandbox, compute, project):
    sn = client(sandbox, "servicenetworking")
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "p-net", "autoCreateSubnetworks": False}).execute())
    network = "projects/%s/global/networks/p-net" % sandbox.apps["gcp"].project_number
    with pytest.raises(HttpError) as exc:
        sn.services().connections().create(parent="services/servicenetworking.googleapis.com", body={
            "network": network, "reservedPeeringRanges": ["nope"]}).execute()
    assert exc.value.resp.status == 400
    wait_compute(compute, project, compute.globalAddresses().insert(project=project, body={
        "name": "psa", "purpose": "VPC_PEERING", "addressType": "INTERNAL", "prefixLength": 16,
        "network": "global/networks/p-net"}).execute())
    op = sn.services().connections().create(parent="services/servicenetworking.googleapis.com", body={
        "network": network, "reservedPeeringRanges": ["psa"]}).execute()
    assert wait_lro(sn, op).get("error") is None
    conns = sn.services().connections().list(parent="services/servicenetworking.googleapis.com", network=network).execute()
    assert conns["connections"][0]["reservedPeeringRanges"] == ["psa"]
    peering = compute.networks().get(project=project, network="p-net").execute()["peerings"][0]
    assert peering["name"] == "servicenetworking-googleapis-com" and peering["state"] == "ACTIVE"
    with pytest.raises(HttpError) as exc:
        compute.globalAddresses().delete(project=project, address="psa").execute()
    assert exc.value.resp.status == 400, "a peered range cannot be deleted"


def test_request_id_makes_a_retried_insert_return_the_first_operation(compute, project):
    body = {"name": "reqid-net", "autoCreateSubnetworks": False}
    first = compute.networks().insert(project=project, body=body, requestId="7d3b5c0e-0000-4000-8000-000000000001").execute()
    again = compute.networks().insert(project=project, body=body, requestId="7d3b5c0e-0000-4000-8000-000000000001").execute()
    assert again["name"] == first["name"], "the same requestId answers with the first request's operation"
    wait_compute(compute, project, first)
    with pytest.raises(HttpError) as exc:
        compute.networks().insert(project=project, body=body, requestId="7d3b5c0e-0000-4000-8000-000000000002").execute()
    assert exc.value.resp.status == 409, "a new requestId is a new request: the network exists"
    wait_compute(compute, project, compute.networks().delete(project=project, network="reqid-net").execute())


def test_a_failed_instance_insert_leaves_no_instance(sandbox, compute, project):
    enable(sandbox, "compute.googleapis.com")
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "vm-fail-net", "autoCreateSubnetworks": False}).execute())
    wait_compute(compute, project, compute.subnetworks().insert(
        project=project, region="europe-west1",
        body={"name": "vm-fail-sub", "network": "global/networks/vm-fail-net", "ipCidrRange": "10.77.0.0/24"}).execute())
    body = {"name": "vm-fail", "machineType": "zones/europe-west1-b/machineTypes/e2-micro",
            "disks": [{"boot": True, "initializeParams": {"sourceImage": "projects/cos-cloud/global/images/family/cos-stable"}}],
            "networkInterfaces": [{"network": "global/networks/vm-fail-net",
                                   "subnetwork": "regions/europe-west1/subnetworks/vm-fail-sub"}]}
    rate = sandbox.ops.fail_rate
    sandbox.ops.fail_rate = 1.0
    try:
        op = compute.instances().insert(project=project, zone="europe-west1-b", body=body).execute()
    finally:
        sandbox.ops.fail_rate = rate
    deadline = time.time() + 30
    while op["status"] != "DONE":
        assert time.time() < deadline
        time.sleep(0.1)
        op = compute.zoneOperations().get(project=project, zone="europe-west1-b", operation=op["name"]).execute()
    assert "error" in op
    with pytest.raises(HttpError) as exc:
        compute.instances().get(project=project, zone="europe-west1-b", instance="vm-fail").execute()
    assert exc.value.resp.status == 404, "GCP removes an instance whose insert failed"


def test_a_peering_range_with_host_bits_is_a_400_naming_the_start_address(compute, project):
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "hb-net", "autoCreateSubnetworks": False}).execute())
    with pytest.raises(HttpError) as exc:
        compute.globalAddresses().insert(project=project, body={
            "name": "hb-psa", "purpose": "VPC_PEERING", "addressType": "INTERNAL", "prefixLength": 16,
            "address": "10.60.3.0", "network": "global/networks/hb-net"}).execute()
    assert exc.value.resp.status == 400
    err = error_of(exc)
    assert err["status"] == "INVALID_ARGUMENT" and "resource.address" in err["message"]
    assert "10.60.0.0" in err["message"], "the message names the range's first address"
    with pytest.raises(HttpError) as exc:
        compute.globalAddresses().get(project=project, address="hb-psa").execute()
    assert exc.value.resp.status == 404


def test_an_unused_network_delete_still_ends_without_error(compute, project):
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "free-net", "autoCreateSubnetworks": False}).execute())
    done = wait_compute(compute, project, compute.networks().delete(project=project, network="free-net").execute())
    assert done["status"] == "DONE" and "error" not in done
    with pytest.raises(HttpError) as exc:
        compute.networks().get(project=project, network="free-net").execute()
    assert exc.value.resp.status == 404
