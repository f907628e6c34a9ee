#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_security_policy
short_description: Manage a Cloud Armor backend security policy that filters by source IP
version_added: 0.1.0
description:
  - Creates, updates or deletes a Cloud Armor security policy of type C(CLOUD_ARMOR), the kind a GKE BackendConfig
    attaches to the backend service of an external HTTP(S) load balancer. Firewall rules do not see the clients of
    such a load balancer; a backend security policy does.
  - Rules match source IP ranges (C(SRC_IPS_V1)). GCP takes at most 10 ranges per rule, so a rule with more ranges
    becomes several consecutive rules, at O(rules[].priority), O(rules[].priority)+1 and so on; the second and later parts are
    described as the rule with its part number appended.
  - Ranges are sorted before they are split, so the order the ranges come in never causes a change.
  - Updates touch only what differs. New rules are added first, changed rules patched next, rules no longer wanted
    removed after that, and the default rule changed last, so sources that stay allowed are never refused while
    the policy changes. The description is patched with the policy fingerprint.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The policy name.
    type: str
    required: true
  description:
    description: A description of the policy.
    type: str
    default: ""
  default_action:
    description:
      - The action of the default rule (priority 2147483647, every source). With O(allow_only) it defaults to
        C(deny(403)), otherwise to C(allow).
    type: str
    choices: [allow, deny(403), deny(404), deny(502)]
  rules:
    description:
      - The rules besides the default rule. Rules of the policy that are not listed are removed.
      - Mutually exclusive with O(allow_only).
    type: list
    elements: dict
    suboptions:
      priority:
        description: 0 (evaluated first) to 2147483646. A rule with more than 10 ranges also takes the next priorities.
        type: int
        required: true
      action:
        description: What happens to a matching request.
        type: str
        choices: [allow, deny(403), deny(404), deny(502)]
        required: true
      src_ip_ranges:
        description: Source addresses or CIDR ranges, any number of them; C(*) alone matches every source.
        type: list
        elements: str
        required: true
      description:
        description: A description of the rule.
        type: str
        default: ""
      preview:
        description: Log what the rule would do without enforcing it.
        type: bool
        default: false
  allow_only:
    description:
      - Allow these CIDR ranges and refuse everything else. Becomes allow rules from O(allow_only_priority) on,
        10 ranges each, and a default rule of C(deny(403)) unless O(default_action) says another deny.
      - An empty list is refused, since it would lock every client out; leave the policy absent instead.
    type: list
    elements: str
  allow_only_priority:
    description: The first priority the O(allow_only) rules take.
    type: int
    default: 1000
  state:
    description: Whether the policy should exist. A policy still attached to a backend service cannot be deleted.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Only Cloudflare's edge may reach the origin
  skyforge.prefect_platform.gcp_security_policy:
    project: my-project
    name: prefect-origin-cloudflare-only
    description: Origin accepts Cloudflare's edge only
    allow_only: "{{ cloudflare_zero_trust_edge_ranges }}"

- name: Explicit rules
  skyforge.prefect_platform.gcp_security_policy:
    project: my-project
    name: office-only
    default_action: deny(404)
    rules:
      - priority: 100
        action: allow
        src_ip_ranges: [203.0.113.0/24]
        description: office
"""

RETURN = r"""
security_policy:
  description: The policy as the API returns it (predicted in check mode).
  returned: success
  type: dict
changes:
  description: What differed, as C(description), C(type) or C(rules[PRIORITY]).
  returned: when an existing policy changed
  type: list
  elements: str
rule_operations:
  description: The rule calls an update made (or would make in check mode), in order, each with C(method) and C(priority).
  returned: when an existing policy changed
  type: list
  elements: dict
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name

DEFAULT_PRIORITY = 2147483647
MAX_RANGES = 10
DEFAULT_RULE_DESCRIPTION = "Default rule, higher priority overrides it"
ACTIONS = ["allow", "deny(403)", "deny(404)", "deny(502)"]


def _sort_key(cidr):
    net = ipaddress.ip_network(cidr)
    return (net.version, int(net.network_address), net.prefixlen)


def normalise_ranges(module, option, ranges):
    """Canonical, de-duplicated, sorted ranges; fail on anything GCP would refuse or silently widen."""
    if ranges == ["*"]:
        return ["*"]
    out = set()
    for cidr in ranges:
        if cidr == "*":
            module.fail_json(msg="%s: '*' matches every source and must be the only range of its rule" % option)
        try:
            out.add(str(ipaddress.ip_network(cidr.strip(), strict=True)))
        except ValueError as exc:
            module.fail_json(msg="%s: %r is not an IP address or CIDR range (%s); write it like 173.245.48.0/20"
                             % (option, cidr, exc))
    return sorted(out, key=_sort_key)


def src_rule(priority, action, ranges, description="", preview=False):
    return {"priority": priority, "action": action, "description": description, "preview": preview,
            "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": list(ranges)}}}


def expand(module, specs):
    """User rules -> API rules of at most 10 ranges, keyed by priority."""
    out = {}
    for idx, spec in enumerate(specs):
        option = "rules[%d].src_ip_ranges" % idx
        if not spec["src_ip_ranges"]:
            module.fail_json(msg="%s is empty: a rule needs at least one range" % option)
        ranges = normalise_ranges(module, option, spec["src_ip_ranges"])
        chunks = [ranges[i:i + MAX_RANGES] for i in range(0, len(ranges), MAX_RANGES)]
        for part, chunk in enumerate(chunks):
            priority = spec["priority"] + part
            if not 0 <= spec["priority"] or priority >= DEFAULT_PRIORITY:
                module.fail_json(msg="rules[%d].priority=%d: a rule (with %d ranges it takes %d priorities) must stay "
                                 "within 0 to %d; the default rule owns %d" % (
                                     idx, spec["priority"], len(ranges), len(chunks), DEFAULT_PRIORITY - 1,
                                     DEFAULT_PRIORITY))
            if priority in out:
                module.fail_json(msg="rules[%d] needs priority %d, which another rule already takes (a rule with more "
                                 "than %d ranges takes consecutive priorities): space the priorities further apart"
                                 % (idx, priority, MAX_RANGES))
            description = spec["description"]
            if part:
                # The first part keeps the plain description and later parts are numbered, never "i of n", so a
                # part whose ranges stay the same never changes when the range count crosses a multiple of 10.
                description = ("%s (part %d)" % (description, part + 1)).strip()
            out[priority] = src_rule(priority, spec["action"], chunk, description, spec["preview"])
    return out


def _rule_key(rule):
    """What of a rule the module manages, comparable whatever order the API returns ranges in."""
    match = rule.get("match") or {}
    return (rule.get("action"), match.get("versionedExpr"), match.get("expr"),
            frozenset((match.get("config") or {}).get("srcIpRanges") or []),
            rule.get("description") or "", bool(rule.get("preview")))


class SecurityPolicy(ComputeResource):
    kind = "security_policy"
    collection = "securityPolicies"
    name_param = "securityPolicy"
    immutable = ("type",)

    def __init__(self, module, rules, default_action):
        super(SecurityPolicy, self).__init__(module)
        self.rules = rules
        self.default_action = default_action
        self.operations = []

    def default_rule(self):
        return src_rule(DEFAULT_PRIORITY, self.default_action, ["*"], DEFAULT_RULE_DESCRIPTION)

    def desired(self):
        rules = [self.rules[p] for p in sorted(self.rules)] + [self.default_rule()]
        return {"name": self.name, "description": self.params["description"], "type": "CLOUD_ARMOR", "rules": rules}

    def plan(self, desired, current):
        """[(method, priority, rule body)] in the order that keeps allowed sources allowed throughout."""
        have = dict((r["priority"], r) for r in current.get("rules", []))
        want = dict((r["priority"], r) for r in desired["rules"])
        add, patch, remove = [], [], []
        for priority in sorted(want):
            if priority == DEFAULT_PRIORITY:
                continue
            if priority not in have:
                add.append(("addRule", priority, want[priority]))
            elif _rule_key(have[priority]) != _rule_key(want[priority]):
                patch.append(("patchRule", priority, want[priority]))
        for priority in sorted(have):
            if priority not in want:
                remove.append(("removeRule", priority, None))
        steps = add + patch + remove
        default = have.get(DEFAULT_PRIORITY, {})
        if default.get("action") != self.default_action or default.get("preview"):
            steps.append(("patchRule", DEFAULT_PRIORITY, {"action": self.default_action, "preview": False}))
        return steps

    def changes(self, desired, current):
        out = []
        if (current.get("description") or "") != desired["description"]:
            out.append("description")
        if current.get("type", "CLOUD_ARMOR") != desired["type"]:
            out.append("type")
        out.extend("rules[%d]" % p for _m, p, _b in self.plan(desired, current))
        return out

    def predict(self, current, desired):
        out = dict(current or {})
        out.update(desired)
        self.operations = [dict(method=m, priority=p) for m, p, _b in self.plan(desired, current)] if current else []
        rules = []
        for rule in desired["rules"]:
            rule = dict(rule, kind="compute#securityPolicyRule")
            if current and rule["priority"] == DEFAULT_PRIORITY:
                have = [r for r in current.get("rules", []) if r["priority"] == DEFAULT_PRIORITY]
                rule["description"] = have[0].get("description", "") if have else rule["description"]
            rules.append(rule)
        out["rules"] = rules
        return out

    def update(self, current, desired, changes):
        if "description" in changes:
            fresh = self.get() or current
            body = {"description": desired["description"], "fingerprint": fresh.get("fingerprint")}
            self._run(self._coll().patch(body=body, **self._args(securityPolicy=self.name)), "patch")
        coll = self._coll()
        for method, priority, body in self.plan(desired, current):
            self.operations.append(dict(method=method, priority=priority))
            args = self._args(securityPolicy=self.name)
            if method == "addRule":
                request = coll.addRule(body=body, **args)
            elif method == "patchRule":
                request = coll.patchRule(priority=priority, body=body, **args)
            else:
                request = coll.removeRule(priority=priority, **args)
            try:
                op = self.module.execute(request, action="%s %d" % (method, priority), resource=self.label(),
                                         allow=(400,) if method != "patchRule" else ())
            except GcpApiError as exc:
                if not self._landed(exc, method, priority, body):
                    self.module.fail_json(msg=str(exc), status=exc.status)
                continue
            self.module.wait("compute", op, resource=self.label())

    def _landed(self, exc, method, priority, body):
        """A retried addRule/removeRule whose first attempt got through is refused (duplicate or missing priority):
        that is success, when the policy holds the rule asked for (or no longer holds the one removed)."""
        def matches(current):
            have = [r for r in current.get("rules", []) if r.get("priority") == priority]
            if method == "addRule":
                return bool(have) and _rule_key(have[0]) == _rule_key(body)
            return not have

        return self.module.adopt_duplicate(exc, self.get, matches) is not None


def main():
    rule = dict(
        priority=dict(type="int", required=True),
        action=dict(type="str", required=True, choices=ACTIONS),
        src_ip_ranges=dict(type="list", elements="str", required=True),
        description=dict(type="str", default=""),
        preview=dict(type="bool", default=False),
    )
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str", default=""),
            default_action=dict(type="str", choices=ACTIONS),
            rules=dict(type="list", elements="dict", options=rule),
            allow_only=dict(type="list", elements="str"),
            allow_only_priority=dict(type="int", default=1000),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("rules", "allow_only")],
    )
    p = module.params
    check_name(module, p["name"])
    default_action = p["default_action"]
    specs = p["rules"] or []
    if p["allow_only"] is not None and p["state"] == "present":
        if not p["allow_only"]:
            module.fail_json(msg="allow_only is empty, which would refuse every client: pass the allowed CIDR ranges "
                             "(for Cloudflare, cloudflare_ip_ranges_info) or use state=absent")
        if default_action == "allow":
            module.fail_json(msg="allow_only with default_action=allow would let every source in: leave "
                             "default_action unset (deny(403)) or pick another deny")
        default_action = default_action or "deny(403)"
        specs = [dict(priority=p["allow_only_priority"], action="allow", src_ip_ranges=p["allow_only"],
                      description="allow_only", preview=False)]
    rules = expand(module, specs) if p["state"] == "present" else {}
    resource = SecurityPolicy(module, rules, default_action or "allow")
    module.ensure(resource, extra=lambda after: {"rule_operations": resource.operations} if resource.operations else {})


if __name__ == "__main__":
    one_exit(main)()
