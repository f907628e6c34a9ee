"""gcp_security_policy against the sandbox: check mode predicts, a change touches exactly the rules it must."""

import json
import random

import pytest

from sandbox.cloudflare.app import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

DEFAULT = 2147483647
CF = CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6  # 22 ranges: three rules of 10, 10 and 2


@pytest.fixture(scope="module", autouse=True)
def apis(sandbox):
    app = sandbox.apps["gcp"]
    app.enabled["projects/%s/services/compute.googleapis.com" % app.project_number] = True


def policy(sandbox, project, name):
    return sandbox.store.table("compute.securityPolicies").get("projects/%s/global/securityPolicies/%s" % (project, name))


def writes_since(sandbox, mark):
    """(method, last path segment) of the GCP writes that reached the API after `mark` (not the token endpoint, not
    an attempt the sandbox's fault injection answered)."""
    return [(e["method"], e["path"].rsplit("/", 1)[-1]) for e in sandbox.log.entries[mark:]
            if e["family"] == "gcp" and e["method"] in ("POST", "PATCH", "PUT", "DELETE") and e["path"] != "/token"
            and not e.get("fault")]


def summary(pol):
    return [(r["priority"], r["action"], r["match"]["config"]["srcIpRanges"]) for r in pol["rules"]]


def test_allow_only_create_idempotent_range_change_and_absent(sandbox, gcp_args, module_runner):
    project = gcp_args["project"]
    args = dict(gcp_args, name="origin-cf-only", description="Cloudflare only", allow_only=CF)

    mark = sandbox.log.mark()
    check = module_runner("gcp_security_policy", args, check=True)
    assert check["changed"] is True and writes_since(sandbox, mark) == [], "check mode writes nothing"
    assert policy(sandbox, project, "origin-cf-only") is None
    predicted = check["security_policy"]
    assert check["diff"]["before"] is None or check["diff"]["before"] == {}

    real = module_runner("gcp_security_policy", args)
    assert real["changed"] is True
    stored = policy(sandbox, project, "origin-cf-only")
    rules = summary(stored)
    assert [r[0] for r in rules] == [1000, 1001, 1002, DEFAULT]
    assert [len(r[2]) for r in rules] == [10, 10, 2, 1], "at most 10 ranges per rule, as GCP enforces"
    assert all(r[1] == "allow" for r in rules[:3]) and rules[3][1:] == ("deny(403)", ["*"])
    assert sorted(sum((r[2] for r in rules[:3]), [])) == sorted(CF)
    assert summary(predicted) == rules, "check mode predicted the rules the real run made"
    assert real["security_policy"]["fingerprint"] == stored["fingerprint"]

    mark = sandbox.log.mark()
    shuffled = list(CF)
    random.Random(7).shuffle(shuffled)
    again = module_runner("gcp_security_policy", dict(args, allow_only=shuffled))
    assert again["changed"] is False, "the order of the ranges never causes a change: %r" % again.get("changes")
    assert writes_since(sandbox, mark) == []

    # One IPv6 range replaced: only the last rule (the IPv6 tail after sorting) is patched.
    swapped = [c for c in CF if c != "2c0f:f248::/32"] + ["2c0f:f249::/32"]
    mark = sandbox.log.mark()
    check = module_runner("gcp_security_policy", dict(args, allow_only=swapped), check=True)
    assert check["changed"] and check["changes"] == ["rules[1002]"]
    assert check["rule_operations"] == [{"method": "patchRule", "priority": 1002}]
    assert writes_since(sandbox, mark) == []
    before_ranges = [r for r in check["diff"]["before"]["rules"] if r["priority"] == 1002][0]
    after_ranges = [r for r in check["diff"]["after"]["rules"] if r["priority"] == 1002][0]
    assert "2c0f:f248::/32" in before_ranges["match"]["config"]["srcIpRanges"]
    assert "2c0f:f249::/32" in after_ranges["match"]["config"]["srcIpRanges"]
    upd = module_runner("gcp_security_policy", dict(args, allow_only=swapped))
    assert upd["rule_operations"] == check["rule_operations"]
    assert writes_since(sandbox, mark) == [("POST", "patchRule")], "exactly one rule call"
    tail = summary(policy(sandbox, project, "origin-cf-only"))[2]
    assert tail[0] == 1002 and "2c0f:f249::/32" in tail[2] and "2c0f:f248::/32" not in tail[2]
    assert module_runner("gcp_security_policy", dict(args, allow_only=swapped))["changed"] is False

    # Two fewer ranges: the tail rule goes, the other two stay untouched.
    shorter = [c for c in swapped if c not in ("2a06:98c0::/29", "2c0f:f249::/32")]
    mark = sandbox.log.mark()
    out = module_runner("gcp_security_policy", dict(args, allow_only=shorter))
    assert out["rule_operations"] == [{"method": "removeRule", "priority": 1002}]
    assert writes_since(sandbox, mark) == [("POST", "removeRule")]
    assert [r[0] for r in summary(policy(sandbox, project, "origin-cf-only"))] == [1000, 1001, DEFAULT]

    # More ranges: a new rule is added before anything else changes.
    longer = shorter + ["198.51.100.0/24", "2001:db8::/32"]
    out = module_runner("gcp_security_policy", dict(args, allow_only=longer))
    assert [o["method"] for o in out["rule_operations"]][0] == "addRule"
    assert [r[0] for r in summary(policy(sandbox, project, "origin-cf-only"))] == [1000, 1001, 1002, DEFAULT]

    # The description is patched with the policy's fingerprint; the rules stay.
    mark = sandbox.log.mark()
    desc = module_runner("gcp_security_policy", dict(args, allow_only=longer, description="edge only"))
    assert desc["changes"] == ["description"] and writes_since(sandbox, mark) == [("PATCH", "origin-cf-only")]
    assert desc["diff"]["before"]["description"] == "Cloudflare only" and desc["diff"]["after"]["description"] == "edge only"

    gone = module_runner("gcp_security_policy", dict(gcp_args, name="origin-cf-only", state="absent"))
    assert gone["changed"] is True and policy(sandbox, project, "origin-cf-only") is None
    assert module_runner("gcp_security_policy", dict(gcp_args, name="origin-cf-only", state="absent"))["changed"] is False


def test_explicit_rules_and_default_action(sandbox, gcp_args, module_runner):
    project = gcp_args["project"]
    args = dict(gcp_args, name="office-only", default_action="deny(404)",
                rules=[{"priority": 100, "action": "allow", "src_ip_ranges": ["203.0.113.0/24"], "description": "office"},
                       {"priority": 50, "action": "deny(403)", "src_ip_ranges": ["203.0.113.66"]}])
    assert module_runner("gcp_security_policy", args)["changed"] is True
    assert summary(policy(sandbox, project, "office-only")) == [
        (50, "deny(403)", ["203.0.113.66/32"]), (100, "allow", ["203.0.113.0/24"]), (DEFAULT, "deny(404)", ["*"])]
    assert module_runner("gcp_security_policy", args)["changed"] is False
    opened = module_runner("gcp_security_policy", dict(args, default_action="allow"), check=True)
    assert opened["rule_operations"] == [{"method": "patchRule", "priority": DEFAULT}]
    assert policy(sandbox, project, "office-only")["rules"][-1]["action"] == "deny(404)"
    module_runner("gcp_security_policy", dict(args, default_action="allow"))
    assert policy(sandbox, project, "office-only")["rules"][-1]["action"] == "allow"
    # Rules the task no longer names are removed; the default rule always stays.
    one = dict(args, default_action="allow", rules=args["rules"][:1])
    out = module_runner("gcp_security_policy", one)
    assert out["rule_operations"] == [{"method": "removeRule", "priority": 50}]
    module_runner("gcp_security_policy", dict(gcp_args, name="office-only", state="absent"))


def test_bad_input_fails_before_any_call_with_the_fix(sandbox, gcp_args, module_runner):
    mark = sandbox.log.mark()
    cases = [
        (dict(allow_only=[]), "allow_only is empty"),
        (dict(allow_only=["10.0.0.1/8"]), "not an IP address or CIDR range"),
        (dict(allow_only=["*", "10.0.0.0/8"]), "must be the only range"),
        (dict(allow_only=CF, default_action="allow"), "default_action"),
        (dict(rules=[{"priority": 100, "action": "allow", "src_ip_ranges": CF},
                     {"priority": 101, "action": "allow", "src_ip_ranges": ["10.0.0.0/8"]}]), "space the priorities"),
        (dict(rules=[{"priority": DEFAULT, "action": "allow", "src_ip_ranges": ["10.0.0.0/8"]}]), "default rule owns"),
        (dict(rules=[{"priority": 1, "action": "deny(418)", "src_ip_ranges": ["10.0.0.0/8"]}]), "action"),
    ]
    for extra, needle in cases:
        out = module_runner("gcp_security_policy", dict(gcp_args, name="bad-policy", **extra), expect_fail=True)
        assert needle in out["msg"], (needle, out["msg"])
        assert "\n" not in out["msg"]
    out = module_runner("gcp_security_policy", dict(gcp_args, name="Bad_Name", allow_only=CF), expect_fail=True)
    assert "not a valid GCP resource name" in out["msg"]
    assert [e for e in sandbox.log.entries[mark:] if e["family"] == "gcp"] == [], "bad input fails before any API call"


def test_no_credential_in_output(sandbox, gcp_args, module_runner):
    with open(gcp_args["service_account_file"]) as fh:
        key = json.load(fh)["private_key"]
    out = module_runner("gcp_security_policy", dict(gcp_args, name="leak-check", allow_only=CLOUDFLARE_IPV4))
    blob = out["_stdout"] + out["_stderr"]
    assert key not in blob and key.splitlines()[1] not in blob
    module_runner("gcp_security_policy", dict(gcp_args, name="leak-check", state="absent"))
