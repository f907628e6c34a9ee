"""compute v1 securityPolicies (Cloud Armor) in the sandbox, replayed through google-api-python-client."""

import json

import pytest
from googleapiclient.errors import HttpError

from .gcp_helpers import client, enable, wait_compute

DEFAULT = 2147483647


@pytest.fixture(scope="module")
def compute(sandbox):
    enable(sandbox, "compute.googleapis.com")
    return client(sandbox, "compute")


@pytest.fixture(scope="module")
def project(sandbox):
    return sandbox.config.project


def error_of(exc):
    return json.loads(exc.value.content)["error"]


def src_rule(priority, ranges, action="allow", **extra):
    rule = {"priority": priority, "action": action,
            "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ranges}}}
    rule.update(extra)
    return rule


def test_insert_without_rules_gets_the_default_allow_rule(compute, project):
    sp = compute.securityPolicies()
    op = sp.insert(project=project, body={"name": "sp-plain", "description": "d"}).execute()
    assert op["kind"] == "compute#operation" and op["operationType"] == "insert" and "region" not in op
    assert op["targetLink"].endswith("/projects/%s/global/securityPolicies/sp-plain" % project)
    assert wait_compute(compute, project, op)["status"] == "DONE"
    pol = sp.get(project=project, securityPolicy="sp-plain").execute()
    assert pol["kind"] == "compute#securityPolicy" and pol["type"] == "CLOUD_ARMOR" and pol["fingerprint"]
    assert pol["selfLink"] == "https://www.googleapis.com/compute/v1/projects/%s/global/securityPolicies/sp-plain" % project
    assert pol["rules"] == [{"kind": "compute#securityPolicyRule", "description": "Default rule, higher priority overrides it",
                             "priority": DEFAULT, "action": "allow", "preview": False,
                             "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}}]
    with pytest.raises(HttpError) as exc:
        sp.insert(project=project, body={"name": "sp-plain"}).execute()
    assert exc.value.resp.status == 409
    listed = sp.list(project=project, filter='name = "sp-plain"').execute()
    assert listed["kind"] == "compute#securityPolicyList" and [p["name"] for p in listed["items"]] == ["sp-plain"]


def test_rules_are_validated_as_gcp_does(sandbox, compute, project):
    sp = compute.securityPolicies()
    eleven = ["198.51.100.%d/32" % i for i in range(11)]
    cases = [
        ({"name": "sp-bad", "rules": [src_rule(1000, eleven), src_rule(DEFAULT, ["*"], "deny(403)")]},
         "maximum number of srcIpRanges"),
        ({"name": "sp-bad", "rules": [src_rule(1000, ["10.0.0.0/8"])]}, "default rule"),
        ({"name": "sp-bad", "rules": [src_rule(DEFAULT, ["10.0.0.0/8"])]}, "must match all traffic"),
        ({"name": "sp-bad", "rules": [src_rule(1, ["10.0.0.0/8"]), src_rule(1, ["10.1.0.0/16"]),
                                      src_rule(DEFAULT, ["*"])]}, "same priorities"),
        ({"name": "sp-bad", "rules": [src_rule(1, ["not-an-ip"]), src_rule(DEFAULT, ["*"])]}, "srcIpRanges[0]"),
        ({"name": "sp-bad", "rules": [src_rule(1, ["10.0.0.0/8"], "deny(418)"), src_rule(DEFAULT, ["*"])]},
         "deny(403)"),
        ({"name": "sp-bad", "rules": [src_rule(1, ["10.0.0.0/8"], "throttle"), src_rule(DEFAULT, ["*"])]},
         "rateLimitOptions"),
        ({"name": "sp-bad", "rules": [{"priority": 1, "action": "allow"}, src_rule(DEFAULT, ["*"])]}, "match"),
    ]
    for body, needle in cases:
        with pytest.raises(HttpError) as exc:
            sp.insert(project=project, body=body).execute()
        assert exc.value.resp.status == 400 and needle in error_of(exc)["message"], (needle, error_of(exc))
    # The discovery document's strictness: unknown fields and bad enums never get through.
    with pytest.raises(HttpError) as exc:
        sp.insert(project=project, body={"name": "sp-bad", "rules": [
            {"priority": 1, "action": "allow", "match": {"versionedExpr": "SRC_IPS_V2",
                                                         "config": {"srcIpRanges": ["*"]}}}]}).execute()
    assert "type.googleapis.com/enum" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        sp.insert(project=project, body={"name": "sp-bad", "rules": [
            {"priority": 1, "action": "allow", "match": {"versionedExpr": "SRC_IPS_V1",
                                                         "config": {"srcIpRange": ["*"]}}}]}).execute()
    assert 'Unknown name "srcIpRange"' in error_of(exc)["message"]
    assert "projects/%s/global/securityPolicies/sp-bad" % project not in sandbox.store.table("compute.securityPolicies")


def test_rule_methods_patch_and_delete(compute, project):
    sp = compute.securityPolicies()
    body = {"name": "sp-rules", "rules": [src_rule(1000, ["173.245.48.0/20", "103.21.244.0/22"], description="cf"),
                                          src_rule(DEFAULT, ["*"], "deny(403)", description="default deny")]}
    wait_compute(compute, project, sp.insert(project=project, body=body).execute())
    first = sp.get(project=project, securityPolicy="sp-rules").execute()
    assert [r["priority"] for r in first["rules"]] == [1000, DEFAULT]
    assert first["rules"][1]["action"] == "deny(403)"

    op = sp.addRule(project=project, securityPolicy="sp-rules", body=src_rule(1001, ["2400:cb00::/32"])).execute()
    assert op["operationType"] == "addRule"
    wait_compute(compute, project, op)
    second = sp.get(project=project, securityPolicy="sp-rules").execute()
    assert [r["priority"] for r in second["rules"]] == [1000, 1001, DEFAULT]
    assert second["fingerprint"] != first["fingerprint"], "a rule change gives the policy a new fingerprint"
    assert sp.getRule(project=project, securityPolicy="sp-rules", priority=1001).execute()["match"]["config"] == \
        {"srcIpRanges": ["2400:cb00::/32"]}
    with pytest.raises(HttpError) as exc:
        sp.addRule(project=project, securityPolicy="sp-rules", body=src_rule(1001, ["10.0.0.0/8"])).execute()
    assert exc.value.resp.status == 400 and "same priorities" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        sp.addRule(project=project, securityPolicy="sp-rules",
                   body=src_rule(5, ["10.%d.0.0/16" % i for i in range(11)])).execute()
    assert "maximum number of srcIpRanges" in error_of(exc)["message"]

    wait_compute(compute, project, sp.patchRule(project=project, securityPolicy="sp-rules", priority=1000,
                                                body=src_rule(1000, ["104.16.0.0/13"])).execute())
    patched = sp.getRule(project=project, securityPolicy="sp-rules", priority=1000).execute()
    assert patched["match"]["config"]["srcIpRanges"] == ["104.16.0.0/13"] and patched["description"] == "cf"
    with pytest.raises(HttpError) as exc:
        sp.patchRule(project=project, securityPolicy="sp-rules", priority=4, body=src_rule(4, ["1.1.1.1/32"])).execute()
    assert exc.value.resp.status == 400 and "no rule with this priority" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        sp.patchRule(project=project, securityPolicy="sp-rules", priority=DEFAULT,
                     body={"match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["10.0.0.0/8"]}}}).execute()
    assert "must match all traffic" in error_of(exc)["message"]
    wait_compute(compute, project, sp.patchRule(project=project, securityPolicy="sp-rules", priority=DEFAULT,
                                                body={"action": "deny(404)"}).execute())
    assert sp.getRule(project=project, securityPolicy="sp-rules", priority=DEFAULT).execute()["action"] == "deny(404)"

    with pytest.raises(HttpError) as exc:
        sp.removeRule(project=project, securityPolicy="sp-rules", priority=DEFAULT).execute()
    assert exc.value.resp.status == 400 and "default rule" in error_of(exc)["message"]
    wait_compute(compute, project, sp.removeRule(project=project, securityPolicy="sp-rules", priority=1001).execute())
    assert [r["priority"] for r in sp.get(project=project, securityPolicy="sp-rules").execute()["rules"]] == [1000, DEFAULT]

    current = sp.get(project=project, securityPolicy="sp-rules").execute()
    with pytest.raises(HttpError) as exc:
        sp.patch(project=project, securityPolicy="sp-rules", body={"description": "x"}).execute()
    assert "fingerprint" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        sp.patch(project=project, securityPolicy="sp-rules",
                 body={"description": "x", "fingerprint": "c3RhbGU="}).execute()
    assert exc.value.resp.status == 412
    with pytest.raises(HttpError) as exc:
        sp.patch(project=project, securityPolicy="sp-rules",
                 body={"rules": current["rules"], "fingerprint": current["fingerprint"]}).execute()
    assert "addRule" in error_of(exc)["message"]
    wait_compute(compute, project, sp.patch(project=project, securityPolicy="sp-rules",
                                            body={"description": "only cloudflare",
                                                  "fingerprint": current["fingerprint"]}).execute())
    assert sp.get(project=project, securityPolicy="sp-rules").execute()["description"] == "only cloudflare"

    op = sp.delete(project=project, securityPolicy="sp-rules").execute()
    assert op["operationType"] == "delete"
    wait_compute(compute, project, op)
    with pytest.raises(HttpError) as exc:
        sp.get(project=project, securityPolicy="sp-rules").execute()
    assert exc.value.resp.status == 404


def test_evaluate_takes_the_first_matching_rule_by_priority():
    from sandbox.gcp.security_policies import evaluate

    policy = {"rules": [src_rule(DEFAULT, ["*"], "deny(403)"), src_rule(1000, ["173.245.48.0/20"]),
                        src_rule(10, ["173.245.48.7/32"], "deny(404)"),
                        src_rule(5, ["0.0.0.0/0"], "deny(502)", preview=True)]}
    assert evaluate(policy, "173.245.48.7") == ("deny(404)", 10)
    assert evaluate(policy, "173.245.49.1") == ("allow", 1000)
    assert evaluate(policy, "203.0.113.9") == ("deny(403)", DEFAULT), "a previewed rule is not enforced"


def test_a_failed_insert_frees_the_name(sandbox, compute, project):
    sp = compute.securityPolicies()
    rate = sandbox.ops.fail_rate
    sandbox.ops.fail_rate = 1.0
    try:
        op = sp.insert(project=project, body={"name": "sp-failed"}).execute()
    finally:
        sandbox.ops.fail_rate = rate
    assert "error" in wait_compute(compute, project, op)
    with pytest.raises(HttpError) as exc:
        sp.get(project=project, securityPolicy="sp-failed").execute()
    assert exc.value.resp.status == 404, "GCP keeps nothing of an insert whose operation failed"
    # The re-sent insert is not refused as a duplicate of what failed.
    assert wait_compute(compute, project, sp.insert(project=project, body={"name": "sp-failed"}).execute())["status"] == "DONE"
