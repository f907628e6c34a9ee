#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_firewall
short_description: Manage a VPC firewall rule
version_added: 0.1.0
description:
  - Creates, replaces or deletes an ingress or egress firewall rule. An update replaces the whole rule, so options
    removed from the task are removed from the rule.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The rule name.
    type: str
    required: true
  network:
    description: The network, by name or URL. Required with O(state=present).
    type: str
  direction:
    description: Traffic direction the rule applies to.
    type: str
    choices: [INGRESS, EGRESS]
    default: INGRESS
  priority:
    description: 0 (highest) to 65535 (lowest).
    type: int
    default: 1000
  allow:
    description: Protocols and ports to allow. Exactly one of O(allow) and O(deny) is required with O(state=present).
    type: list
    elements: dict
    suboptions:
      protocol:
        description: C(tcp), C(udp), C(icmp), C(all) or an IP protocol number.
        type: str
        required: true
      ports:
        description: Ports or ranges such as C(443) or C(8000-8100).
        type: list
        elements: str
  deny:
    description: Protocols and ports to deny.
    type: list
    elements: dict
    suboptions:
      protocol:
        description: C(tcp), C(udp), C(icmp), C(all) or an IP protocol number.
        type: str
        required: true
      ports:
        description: Ports or ranges.
        type: list
        elements: str
  source_ranges:
    description: Source CIDR ranges (ingress).
    type: list
    elements: str
  destination_ranges:
    description: Destination CIDR ranges (egress).
    type: list
    elements: str
  source_tags:
    description: Source network tags (ingress).
    type: list
    elements: str
  target_tags:
    description: Instances with these network tags are targeted.
    type: list
    elements: str
  target_service_accounts:
    description: Instances running as these service accounts are targeted.
    type: list
    elements: str
  log:
    description: Log connections matched by the rule.
    type: bool
    default: false
  disabled:
    description: Keep the rule but do not enforce it.
    type: bool
    default: false
  description:
    description: A description.
    type: str
    default: ""
  state:
    description: Whether the rule should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Deny all ingress at the lowest priority
  skyforge.prefect_platform.gcp_firewall:
    project: my-project
    name: prefect-deny-all-ingress
    network: prefect-vpc
    priority: 65534
    deny: [{protocol: all}]
    source_ranges: [0.0.0.0/0]
"""

RETURN = r"""
firewall:
  description: The rule as the API returns it (predicted in check mode).
  returned: success
  type: dict
changes:
  description: The fields that differed and were updated.
  returned: when an existing rule changed
  type: list
  elements: str
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name

LISTS = (
    ("source_ranges", "sourceRanges"),
    ("destination_ranges", "destinationRanges"),
    ("source_tags", "sourceTags"),
    ("target_tags", "targetTags"),
    ("target_service_accounts", "targetServiceAccounts"),
)


def _rules(items):
    out = []
    for item in items or []:
        rule = {"IPProtocol": item["protocol"]}
        if item.get("ports"):
            rule["ports"] = [str(x) for x in item["ports"]]
        out.append(rule)
    return out


class Firewall(ComputeResource):
    kind = "firewall"
    collection = "firewalls"
    name_param = "firewall"
    immutable = ("network", "direction")
    unordered = ("sourceRanges", "destinationRanges", "sourceTags", "targetTags", "targetServiceAccounts")

    def desired(self):
        p = self.params
        body = {
            "name": p["name"],
            "description": p["description"],
            "network": self.link(p["network"], "networks", regional=False),
            "direction": p["direction"],
            "priority": p["priority"],
            "disabled": p["disabled"],
            "logConfig": {"enable": p["log"]},
        }
        if p["allow"]:
            body["allowed"] = _rules(p["allow"])
        if p["deny"]:
            body["denied"] = _rules(p["deny"])
        for option, field in LISTS:
            if p[option]:
                body[field] = p[option]
        if p["direction"] == "INGRESS" and not (p["source_ranges"] or p["source_tags"]):
            body["sourceRanges"] = ["0.0.0.0/0"]
        return body

    def changes(self, desired, current):
        changes = super(Firewall, self).changes(desired, current)
        # A list the task no longer names must go too: the update replaces the rule.
        for _option, field in LISTS + (("allow", "allowed"), ("deny", "denied")):
            if field not in desired and current.get(field):
                changes.append(field)
        return changes

    def predict(self, current, desired):
        out = dict(current or {})
        for _option, field in LISTS + (("allow", "allowed"), ("deny", "denied")):
            out.pop(field, None)
        out.update(desired)
        return out

    def update(self, current, desired, changes):
        return self._run(self._coll().update(body=desired, **self._args(firewall=self.name)), "update")


def main():
    rule = dict(protocol=dict(type="str", required=True), ports=dict(type="list", elements="str"))
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            network=dict(type="str"),
            direction=dict(type="str", choices=["INGRESS", "EGRESS"], default="INGRESS"),
            priority=dict(type="int", default=1000),
            allow=dict(type="list", elements="dict", options=rule),
            deny=dict(type="list", elements="dict", options=rule),
            source_ranges=dict(type="list", elements="str"),
            destination_ranges=dict(type="list", elements="str"),
            source_tags=dict(type="list", elements="str"),
            target_tags=dict(type="list", elements="str"),
            target_service_accounts=dict(type="list", elements="str"),
            log=dict(type="bool", default=False),
            disabled=dict(type="bool", default=False),
            description=dict(type="str", default=""),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("allow", "deny")],
        required_if=[("state", "present", ["network"]), ("state", "present", ["allow", "deny"], True)],
    )
    p = module.params
    check_name(module, p["name"])
    if not 0 <= p["priority"] <= 65535:
        module.fail_json(msg="priority=%d is out of range: use 0 (highest) to 65535 (lowest)" % p["priority"])
    for option in ("source_ranges", "destination_ranges"):
        for cidr in p[option] or []:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                module.fail_json(msg="%s: %r is not a CIDR range such as 10.0.0.0/8 or 0.0.0.0/0" % (option, cidr))
    module.ensure(Firewall(module))


if __name__ == "__main__":
    one_exit(main)()
