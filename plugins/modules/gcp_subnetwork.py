#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_subnetwork
short_description: Manage a regional subnetwork with secondary ranges
version_added: 0.1.0
description:
  - Creates, updates or deletes a subnetwork, including the secondary ranges GKE Autopilot uses for pods and
    services, Private Google Access and VPC flow logs.
  - Updates are sent with the subnetwork's current fingerprint; the primary range can only be expanded.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The subnetwork name.
    type: str
    required: true
  region:
    description: The region, for example C(europe-west1).
    type: str
    required: true
  network:
    description: The network, by name or URL. Required with O(state=present).
    type: str
  ip_cidr_range:
    description: The primary IPv4 range. Required with O(state=present).
    type: str
  secondary_ranges:
    description: Secondary ranges, for example the pod and service ranges of an Autopilot cluster.
    type: list
    elements: dict
    default: []
    suboptions:
      range_name:
        description: The range name the cluster refers to.
        type: str
        required: true
      ip_cidr_range:
        description: The range.
        type: str
        required: true
  private_ip_google_access:
    description: Let VMs without external IPs reach Google APIs.
    type: bool
    default: true
  flow_logs:
    description: Enable VPC flow logs.
    type: bool
    default: false
  description:
    description: A description.
    type: str
    default: ""
  state:
    description: Whether the subnetwork should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Subnet with Autopilot ranges
  skyforge.prefect_platform.gcp_subnetwork:
    project: my-project
    name: prefect-subnet
    region: europe-west1
    network: prefect-vpc
    ip_cidr_range: 10.10.0.0/20
    secondary_ranges:
      - {range_name: pods, ip_cidr_range: 10.20.0.0/16}
      - {range_name: services, ip_cidr_range: 10.30.0.0/20}
"""

RETURN = r"""
subnetwork:
  description: The subnetwork as the API returns it (predicted in check mode).
  returned: success
  type: dict
changes:
  description: The fields that differed and were updated.
  returned: when an existing subnetwork changed
  type: list
  elements: str
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name


class Subnetwork(ComputeResource):
    kind = "subnetwork"
    collection = "subnetworks"
    name_param = "subnetwork"
    regional = True
    patch_with_fingerprint = True
    immutable = ("network",)
    unordered = ("secondaryIpRanges",)

    def desired(self):
        p = self.params
        body = {
            "name": p["name"],
            "description": p["description"],
            "network": self.link(p["network"], "networks", regional=False),
            "ipCidrRange": p["ip_cidr_range"],
            "privateIpGoogleAccess": p["private_ip_google_access"],
            "logConfig": {"enable": p["flow_logs"]},
        }
        if p["secondary_ranges"]:
            body["secondaryIpRanges"] = [
                {"rangeName": r["range_name"], "ipCidrRange": r["ip_cidr_range"]} for r in p["secondary_ranges"]
            ]
        return body

    def changes(self, desired, current):
        changes = super(Subnetwork, self).changes(desired, current)
        if not desired.get("secondaryIpRanges") and current.get("secondaryIpRanges"):
            changes.append("secondaryIpRanges")
        if "ipCidrRange" in changes:
            old = ipaddress.ip_network(current["ipCidrRange"])
            new = ipaddress.ip_network(desired["ipCidrRange"])
            if not old.subnet_of(new):
                self.module.fail_json(
                    msg="subnetwork %s: ip_cidr_range can only be expanded to a range containing %s (asked %s). "
                    "Fix: keep %s, or choose a larger range that contains it." % (self.name, old, new, old)
                )
        return changes

    def update(self, current, desired, changes):
        body = dict((k, v) for k, v in desired.items() if k != "network")
        body.setdefault("secondaryIpRanges", [])
        for _attempt in range(3):
            body["fingerprint"] = current.get("fingerprint")
            request = self._coll().patch(body=body, **self._args(subnetwork=self.name))
            try:
                op = self.module.execute(request, action="patch", resource=self.label(), allow=(412,))
            except GcpApiError:
                # Stale fingerprint: someone (or our own retried request) changed it; re-read and re-decide.
                current = self.get()
                if not self.changes(desired, current):
                    return None
                continue
            return self.module.wait("compute", op, resource=self.label())
        self.module.fail_json(msg="subnetwork %s kept changing while we updated it (stale fingerprint 3 times). "
                                  "Fix: run again when no other change is in flight." % self.name)


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str", required=True),
            network=dict(type="str"),
            ip_cidr_range=dict(type="str"),
            secondary_ranges=dict(
                type="list", elements="dict", default=[],
                options=dict(range_name=dict(type="str", required=True), ip_cidr_range=dict(type="str", required=True)),
            ),
            private_ip_google_access=dict(type="bool", default=True),
            flow_logs=dict(type="bool", default=False),
            description=dict(type="str", default=""),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["network", "ip_cidr_range"])],
    )
    p = module.params
    check_name(module, p["name"])
    if p["state"] == "present":
        ranges = [("ip_cidr_range", p["ip_cidr_range"])] + [
            ("secondary_ranges[%s]" % r["range_name"], r["ip_cidr_range"]) for r in p["secondary_ranges"]
        ]
        nets = []
        for option, value in ranges:
            try:
                nets.append((option, ipaddress.ip_network(value)))
            except ValueError:
                module.fail_json(msg="%s=%r is not a valid IPv4 CIDR range such as 10.10.0.0/20" % (option, value))
        for i, (oa, a) in enumerate(nets):
            for ob, b in nets[i + 1:]:
                if a.overlaps(b):
                    module.fail_json(msg="%s (%s) overlaps %s (%s): choose ranges that do not overlap" % (oa, a, ob, b))
        for r in p["secondary_ranges"]:
            check_name(module, r["range_name"], "secondary_ranges.range_name")
    module.ensure(Subnetwork(module))


if __name__ == "__main__":
    one_exit(main)()
