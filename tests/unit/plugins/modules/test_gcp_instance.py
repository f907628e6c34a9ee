"""gcp_instance against the sandbox: a private VM, in-place metadata, refused in-place changes, what booting needs."""

import pytest

REGION = "europe-west1"
ZONE = "europe-west1-b"


@pytest.fixture(scope="module", autouse=True)
def apis(sandbox):
    app = sandbox.apps["gcp"]
    for svc in ("compute.googleapis.com", "iam.googleapis.com", "secretmanager.googleapis.com",
                "cloudresourcemanager.googleapis.com"):
        app.enabled["projects/%s/services/%s" % (app.project_number, svc)] = True


@pytest.fixture(scope="module")
def net(sandbox, module_runner_module, gcp_args_module):
    run, g = module_runner_module, gcp_args_module
    run("gcp_network", dict(g, name="vm-net"))
    run("gcp_subnetwork", dict(g, name="vm-sub", region=REGION, network="vm-net", ip_cidr_range="10.80.0.0/24"))
    run("gcp_address", dict(g, name="vm-ip", region=REGION, address_type="INTERNAL", subnetwork="vm-sub",
                            address="10.80.0.10"))
    run("gcp_service_account", dict(g, name="vm-agent"))
    return g


@pytest.fixture(scope="module")
def module_runner_module():
    from tests.unit.conftest import run_module

    return run_module


@pytest.fixture(scope="module")
def gcp_args_module(sandbox):
    ep = sandbox.endpoints()
    return {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
            "service_account_file": ep["gcp_service_account_file"],
            "api_endpoint_template": ep["gcp_api_endpoint_template"]}


def test_private_vm_lifecycle(sandbox, net, module_runner):
    email = "vm-agent@%s.iam.gserviceaccount.com" % net["project"]
    args = dict(net, name="agent-vm", zone=ZONE, network="vm-net", subnetwork="vm-sub", network_ip="vm-ip",
                service_account_email=email, metadata={"tfc-agent-token-secret": "vm-token"}, tags=["tfc-agent"])
    check = module_runner("gcp_instance", args, check=True)
    assert check["changed"] is True
    made = module_runner("gcp_instance", args)
    assert made["changed"] is True and made["internal_ip"] == "10.80.0.10" and "external_ip" not in made
    assert "accessConfigs" not in made["instance"]["networkInterfaces"][0]
    again = module_runner("gcp_instance", args)
    assert again["changed"] is False, again.get("changes")
    row = sandbox.store.table("compute.instances")["projects/%s/zones/%s/instances/agent-vm" % (net["project"], ZONE)]
    assert row["status"] == "RUNNING"
    # Booting reads the agent token as the VM's service account, which has no access yet.
    assert "PERMISSION_DENIED" in row["bootReport"]
    addr = sandbox.store.table("compute.addresses")["projects/%s/regions/%s/addresses/vm-ip" % (net["project"], REGION)]
    assert addr["status"] == "IN_USE"

    upd = dict(args, metadata={"tfc-agent-token-secret": "vm-token-2"}, labels={"role": "tfc-agent"})
    pred = module_runner("gcp_instance", upd, check=True)
    assert pred["changed"] and pred["changes"] == ["metadata", "labels"]
    real = module_runner("gcp_instance", upd)
    assert real["changes"] == pred["changes"]
    assert module_runner("gcp_instance", upd)["changed"] is False

    bad = module_runner("gcp_instance", dict(upd, machine_type="e2-small"), expect_fail=True)
    assert "machineType cannot be changed in place" in bad["msg"]
    pub = module_runner("gcp_instance", dict(upd, external_ip=True), expect_fail=True)
    assert "accessConfigs" in pub["msg"]

    gone = module_runner("gcp_instance", dict(upd, state="absent"))
    assert gone["changed"] is True
    assert addr["status"] == "RESERVED"
    assert module_runner("gcp_instance", dict(upd, state="absent"))["changed"] is False


def test_bad_input_is_refused_with_the_fix(net, module_runner):
    res = module_runner("gcp_instance", dict(net, name="Bad_VM", zone=ZONE, network="vm-net", subnetwork="vm-sub"),
                        expect_fail=True)
    assert "not a valid GCP resource name" in res["msg"]
    res = module_runner("gcp_instance", dict(net, name="vm2", zone=ZONE, network="vm-net", subnetwork="vm-sub",
                                             machine_type="e2-gigantic"), expect_fail=True)
    assert "e2-gigantic" in res["msg"]
    res = module_runner("gcp_instance", dict(net, name="vm3", zone=ZONE, network="vm-net", subnetwork="vm-sub",
                                             network_ip="10.99.0.5"), expect_fail=True)
    assert "not within subnetwork" in res["msg"]
