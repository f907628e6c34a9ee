"""Autopilot cluster and kubeconfig against the sandbox."""

import json
import os
import stat

import pytest

REGION = "europe-west1"


@pytest.fixture(scope="module")
def vpc(sandbox):
    from ...conftest import run_module

    ep = sandbox.endpoints()
    args = {"project": ep["gcp_project"], "auth_kind": "serviceaccount",
            "service_account_file": ep["gcp_service_account_file"],
            "api_endpoint_template": ep["gcp_api_endpoint_template"]}
    run_module("gcp_project_services", dict(args, services=["compute.googleapis.com", "container.googleapis.com"]))
    run_module("gcp_network", dict(args, name="gke-net"))
    run_module("gcp_subnetwork", dict(args, name="gke-sub", region=REGION, network="gke-net", ip_cidr_range="10.140.0.0/20",
                                      secondary_ranges=[{"range_name": "pods", "ip_cidr_range": "10.144.0.0/14"},
                                                        {"range_name": "services", "ip_cidr_range": "10.150.0.0/20"}]))
    return args


def test_autopilot_create_update_and_protection(sandbox, gcp_args, module_runner, vpc):
    args = dict(gcp_args, name="prefect", location=REGION, network="gke-net", subnetwork="gke-sub")
    check = module_runner("gcp_autopilot_cluster", args, check=True)
    assert check["changed"]
    started = module_runner("gcp_autopilot_cluster", dict(args, wait=False))
    assert started["changed"] and started["cluster"]["status"] == "PROVISIONING", "wait=false returns at once"
    waited = module_runner("gcp_autopilot_cluster", args)
    assert waited["changed"] is False and waited["cluster"]["status"] == "RUNNING"
    assert waited["cluster"]["privateClusterConfig"]["enablePrivateNodes"] is True
    assert waited["cluster"]["workloadIdentityConfig"]["workloadPool"] == "%s.svc.id.goog" % gcp_args["project"]
    upd = module_runner("gcp_autopilot_cluster", dict(args, release_channel="STABLE", master_authorized_networks=["203.0.113.0/24"]))
    assert sorted(c.split(".")[0] for c in upd["changes"]) == ["masterAuthorizedNetworksConfig",
                                                               "masterAuthorizedNetworksConfig",
                                                               "releaseChannel"]
    again = module_runner("gcp_autopilot_cluster", dict(args, release_channel="STABLE", master_authorized_networks=["203.0.113.0/24"]))
    assert again["changed"] is False
    moved = module_runner("gcp_autopilot_cluster", dict(args, subnetwork="other"), expect_fail=True)
    assert "cannot be changed in place" in moved["msg"]
    refused = module_runner("gcp_autopilot_cluster", dict(args, state="absent"), expect_fail=True)
    assert "deletion_protection" in refused["msg"]


def test_wrong_secondary_range_is_refused_by_the_api(sandbox, gcp_args, module_runner, vpc):
    out = module_runner("gcp_autopilot_cluster", dict(gcp_args, name="broken", location=REGION, network="gke-net",
                                                      subnetwork="gke-sub", pods_range_name="nope"), expect_fail=True)
    assert "secondary range \"nope\"" in out["msg"] and "HTTP 400" in out["msg"]


def test_kubeconfig_written_0600_without_gcloud_and_token_never_returned(sandbox, gcp_args, module_runner, vpc, tmp_path):
    module_runner("gcp_autopilot_cluster", dict(gcp_args, name="kc", location=REGION, network="gke-net",
                                                subnetwork="gke-sub", master_ipv4_cidr_block="172.16.0.16/28"))
    path = str(tmp_path / "kube" / "config.json")
    args = dict(gcp_args, cluster="kc", location=REGION, path=path, use_private_endpoint=True,
                proxy_url="http://127.0.0.1:9")
    first = module_runner("gcp_gke_kubeconfig", args)
    assert first["changed"] and first["server"] == "https://172.16.0.18"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    config = json.load(open(path))
    token = config["users"][0]["user"]["token"]
    assert token.startswith("ya29.") and token in sandbox.apps["gcp"].auth.tokens
    assert config["clusters"][0]["cluster"]["proxy-url"] == "http://127.0.0.1:9"
    assert token not in first["_stdout"]
    again = module_runner("gcp_gke_kubeconfig", args)
    assert again["changed"] is False, "a refreshed token alone is not a change"
    assert json.load(open(path))["users"][0]["user"]["token"] != token, "but the file holds a fresh token"


def cluster_reads(sandbox, start, name):
    return [e for e in sandbox.log.entries[start:]
            if e["method"] == "GET" and e["path"].split("?")[0].endswith("/clusters/%s" % name)]


def test_kubeconfig_from_the_cluster_a_task_returned_reads_nothing(sandbox, gcp_args, module_runner, vpc, tmp_path):
    created = module_runner("gcp_autopilot_cluster", dict(gcp_args, name="kc2", location=REGION, network="gke-net",
                                                          subnetwork="gke-sub", master_ipv4_cidr_block="172.16.0.32/28"))
    assert created["cluster"]["status"] == "RUNNING"
    path = str(tmp_path / "config.json")
    args = dict(gcp_args, cluster="kc2", location=REGION, path=path)
    read = module_runner("gcp_gke_kubeconfig", dict(args, path=str(tmp_path / "read.json")))

    start = sandbox.log.mark()
    given = module_runner("gcp_gke_kubeconfig", dict(args, cluster_resource=created["cluster"]))
    assert cluster_reads(sandbox, start, "kc2") == [], "the endpoint and CA come from the result passed in"
    assert given["changed"] and given["server"] == read["server"]
    written, reference = json.load(open(path)), json.load(open(str(tmp_path / "read.json")))
    assert written["clusters"] == reference["clusters"], "the same endpoint and CA as a fresh read"
    assert written["users"][0]["user"]["token"].startswith("ya29."), "the token is still fetched"
    assert created["cluster"]["masterAuth"]["clusterCaCertificate"] in json.dumps(written["clusters"])

    check = module_runner("gcp_gke_kubeconfig", dict(args, cluster_resource=created["cluster"]), check=True)
    assert check["changed"] is False and cluster_reads(sandbox, start, "kc2") == []

    # A cluster that is not known to be running (here: a check-mode prediction) is read.
    start = sandbox.log.mark()
    predicted = {k: v for k, v in created["cluster"].items() if k not in ("status", "endpoint", "masterAuth")}
    again = module_runner("gcp_gke_kubeconfig", dict(args, cluster_resource=predicted))
    assert len(cluster_reads(sandbox, start, "kc2")) == 1 and again["changed"] is False

    other = module_runner("gcp_gke_kubeconfig", dict(args, cluster="prefect", cluster_resource=created["cluster"]),
                          expect_fail=True)
    assert "cluster_resource is cluster kc2" in other["msg"] and "Fix:" in other["msg"]


def test_kubeconfig_waits_for_a_cluster_still_provisioning(sandbox, gcp_args, module_runner, vpc, tmp_path):
    args = dict(gcp_args, name="kc3", location=REGION, network="gke-net", subnetwork="gke-sub",
                master_ipv4_cidr_block="172.16.0.48/28")
    kube = dict(gcp_args, cluster="kc3", location=REGION, path=str(tmp_path / "config.json"))
    scale = sandbox.config.time_scale
    sandbox.config.time_scale = 0.01  # about 5 s of provisioning: long enough to catch it, short enough to wait
    try:
        started = module_runner("gcp_autopilot_cluster", dict(args, wait=False))
    finally:
        sandbox.config.time_scale = scale
    assert started["cluster"]["status"] == "PROVISIONING"
    hasty = module_runner("gcp_gke_kubeconfig", dict(kube, cluster_resource=started["cluster"], wait_timeout=0),
                          expect_fail=True)
    assert "is PROVISIONING, not RUNNING after waiting 0s" in hasty["msg"] and "raise wait_timeout" in hasty["msg"]
    assert not os.path.exists(kube["path"]), "nothing is written for a cluster that cannot be reached yet"
    waited = module_runner("gcp_gke_kubeconfig", dict(kube, cluster_resource=started["cluster"]))
    assert waited["changed"] and waited["server"].startswith("https://")
    assert json.load(open(kube["path"]))["clusters"][0]["cluster"]["certificate-authority-data"]
