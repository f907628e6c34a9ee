"""The network-layer modules against the sandbox: check mode predicts, real run matches, second run is a no-op."""

import pytest

from tests.unit.idempotence import converge

REGION = "europe-west1"


@pytest.fixture(scope="module", autouse=True)
def apis(sandbox):
    app = sandbox.apps["gcp"]
    for svc in ("compute.googleapis.com", "servicenetworking.googleapis.com"):
        app.enabled["projects/%s/services/%s" % (app.project_number, svc)] = True


def rows(sandbox, table):
    return sandbox.store.table(table)


def test_network_create_update_delete(sandbox, gcp_args, module_runner):
    args = dict(gcp_args, name="m-net", routing_mode="GLOBAL")
    check, real = converge(module_runner, "gcp_network", args)[:2]
    assert check["network"]["routingConfig"] == real["network"]["routingConfig"] == {"routingMode": "GLOBAL"} or \
        real["network"]["routingConfig"]["routingMode"] == "GLOBAL"
    key = "projects/%s/global/networks/m-net" % gcp_args["project"]
    assert key in rows(sandbox, "compute.networks")
    upd = module_runner("gcp_network", dict(args, mtu=1500), check=True)
    assert upd["changed"] and upd["changes"] == ["mtu"]
    assert upd["diff"]["before"]["mtu"] == 1460 and upd["diff"]["after"]["mtu"] == 1500
    assert rows(sandbox, "compute.networks")[key]["mtu"] == 1460, "check mode changed nothing"
    real_upd = module_runner("gcp_network", dict(args, mtu=1500))
    assert real_upd["changes"] == upd["changes"] and rows(sandbox, "compute.networks")[key]["mtu"] == 1500
    gone = module_runner("gcp_network", dict(args, state="absent"))
    assert gone["changed"] and key not in rows(sandbox, "compute.networks")
    assert module_runner("gcp_network", dict(args, state="absent"))["changed"] is False


def test_subnetwork_ranges_and_fingerprinted_update(sandbox, gcp_args, module_runner):
    module_runner("gcp_network", dict(gcp_args, name="sub-net"))
    args = dict(gcp_args, name="sub-a", region=REGION, network="sub-net", ip_cidr_range="10.50.0.0/20",
                secondary_ranges=[{"range_name": "pods", "ip_cidr_range": "10.60.0.0/16"},
                                  {"range_name": "services", "ip_cidr_range": "10.70.0.0/20"}])
    converge(module_runner, "gcp_subnetwork", args)
    upd = module_runner("gcp_subnetwork", dict(args, flow_logs=True))
    assert upd["changes"] == ["logConfig.enable"]
    assert module_runner("gcp_subnetwork", dict(args, flow_logs=True))["changed"] is False
    shrink = module_runner("gcp_subnetwork", dict(args, flow_logs=True, ip_cidr_range="10.50.0.0/24"), expect_fail=True)
    assert "can only be expanded" in shrink["msg"]
    grow = module_runner("gcp_subnetwork", dict(args, flow_logs=True, ip_cidr_range="10.50.0.0/19"))
    assert grow["changes"] == ["ipCidrRange"]


def test_subnetwork_bad_input_fails_before_any_call(sandbox, gcp_args, module_runner):
    before = sandbox.log.mark()
    out = module_runner("gcp_subnetwork", dict(gcp_args, name="x", region=REGION, network="n", ip_cidr_range="10.0.0.0/33"),
                        expect_fail=True)
    assert "ip_cidr_range" in out["msg"] and "CIDR" in out["msg"]
    out = module_runner("gcp_subnetwork", dict(gcp_args, name="x", region=REGION, network="n", ip_cidr_range="10.0.0.0/16",
                                               secondary_ranges=[{"range_name": "pods", "ip_cidr_range": "10.0.128.0/20"}]),
                        expect_fail=True)
    assert "overlaps" in out["msg"]
    out = module_runner("gcp_network", dict(gcp_args, name="Not_Valid"), expect_fail=True)
    assert "not a valid GCP resource name" in out["msg"]
    assert len(sandbox.log.entries) == before, "bad input must fail before any API call"


def test_firewall_replace_semantics(sandbox, gcp_args, module_runner):
    module_runner("gcp_network", dict(gcp_args, name="fw-net"))
    args = dict(gcp_args, name="fw-allow", network="fw-net", allow=[{"protocol": "tcp", "ports": ["443"]}],
                source_ranges=["10.0.0.0/8"], target_tags=["web"])
    converge(module_runner, "gcp_firewall", args)
    no_tags = dict(args)
    del no_tags["target_tags"]
    check = module_runner("gcp_firewall", no_tags, check=True)
    assert check["changed"] and "targetTags" in check["changes"]
    module_runner("gcp_firewall", no_tags)
    key = "projects/%s/global/firewalls/fw-allow" % gcp_args["project"]
    assert "targetTags" not in rows(sandbox, "compute.firewalls")[key], "removed options are removed from the rule"
    assert module_runner("gcp_firewall", no_tags)["changed"] is False


def test_addresses_and_private_service_access(sandbox, gcp_args, module_runner):
    module_runner("gcp_network", dict(gcp_args, name="psa-net"))
    ip = converge(module_runner, "gcp_address", dict(gcp_args, name="egress-1", region=REGION))[1]
    assert ip["ip"] and ip["address"]["addressType"] == "EXTERNAL"
    psa = dict(gcp_args, name="psa-range", address_type="INTERNAL", purpose="VPC_PEERING", prefix_length=16,
               network="psa-net")
    converge(module_runner, "gcp_address", psa)
    diff = module_runner("gcp_address", dict(psa, prefix_length=20), expect_fail=True)
    assert "cannot be changed in place" in diff["msg"] and "prefixLength" in diff["msg"]
    conn = dict(gcp_args, network="psa-net", ranges=["psa-range"])
    check, real = converge(module_runner, "gcp_service_networking_connection", conn)[:2]
    assert check["connection"] == real["connection"]
    net = rows(sandbox, "compute.networks")["projects/%s/global/networks/psa-net" % gcp_args["project"]]
    assert net["peerings"][0]["name"] == "servicenetworking-googleapis-com"
    assert module_runner("gcp_service_networking_connection", dict(conn, state="absent"))["changed"] is True
    assert module_runner("gcp_service_networking_connection", dict(conn, state="absent"))["changed"] is False


def test_router_nat_on_reserved_ips(sandbox, gcp_args, module_runner):
    module_runner("gcp_network", dict(gcp_args, name="nat-net"))
    module_runner("gcp_subnetwork", dict(gcp_args, name="nat-sub", region=REGION, network="nat-net",
                                         ip_cidr_range="10.80.0.0/24"))
    ip = module_runner("gcp_address", dict(gcp_args, name="nat-ip-1", region=REGION))["ip"]
    args = dict(gcp_args, router="nat-router", name="nat", region=REGION, network="nat-net", nat_ips=["nat-ip-1"],
                subnetworks=["nat-sub"])
    check, real = converge(module_runner, "gcp_router_nat", args)[:2]
    assert real["nat"]["natIpAllocateOption"] == "MANUAL_ONLY"
    addr = rows(sandbox, "compute.addresses")["projects/%s/regions/%s/addresses/nat-ip-1" % (gcp_args["project"], REGION)]
    assert addr["status"] == "IN_USE" and addr["address"] == ip
    upd = module_runner("gcp_router_nat", dict(args, min_ports_per_vm=128))
    assert upd["changed"] and upd["changes"] == ["minPortsPerVm"]
    gone = module_runner("gcp_router_nat", dict(args, state="absent"))
    assert gone["changed"] and addr["status"] == "RESERVED"
    assert "projects/%s/regions/%s/routers/nat-router" % (gcp_args["project"], REGION) not in rows(sandbox, "compute.routers")


def test_deleting_a_network_in_use_names_the_user_and_the_fix(sandbox, gcp_args, module_runner):
    module_runner("gcp_network", dict(gcp_args, name="busy-net"))
    module_runner("gcp_firewall", dict(gcp_args, name="busy-fw", network="busy-net", deny=[{"protocol": "all"}],
                                       source_ranges=["0.0.0.0/0"]))
    result = module_runner("gcp_network", dict(gcp_args, name="busy-net", state="absent"), expect_fail=True)
    msg = result["msg"]
    assert "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" in msg and "firewalls/busy-fw" in msg, msg
    assert "Fix: remove what still uses it" in msg and "\n" not in msg
    key = "projects/%s/global/networks/busy-net" % gcp_args["project"]
    assert key in rows(sandbox, "compute.networks"), "the network stays while it is in use"
    module_runner("gcp_firewall", dict(gcp_args, name="busy-fw", state="absent"))
    assert module_runner("gcp_network", dict(gcp_args, name="busy-net", state="absent"))["changed"] is True
    assert key not in rows(sandbox, "compute.networks")


def test_a_failed_operation_ends_with_a_hint_to_run_again(sandbox, gcp_args, module_runner):
    sandbox.ops.fail_rate = 1.0
    try:
        result = module_runner("gcp_network", dict(gcp_args, name="opfail-hint-net"), expect_fail=True)
    finally:
        sandbox.ops.fail_rate = 0.0
    assert "run the playbook again" in result["msg"], result["msg"]
