#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_router_nat
short_description: Manage a Cloud Router and its Cloud NAT on reserved static IPs
version_added: 0.1.0
description:
  - Ensures a Cloud Router exists in the network and holds one NAT gateway with the given settings. With
    O(nat_ips) the NAT uses only those reserved addresses (C(MANUAL_ONLY)), so egress leaves from known IPs.
  - The router is read, changed and written back; other NATs on the router are left alone. When another writer
    changed the router in between, the write is refused and the module reads it again and retries.
  - With O(state=absent) the NAT is removed, and the router too when nothing else is on it.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  router:
    description: The Cloud Router name.
    type: str
    required: true
  name:
    description: The NAT gateway name.
    type: str
    required: true
  region:
    description: The region.
    type: str
    required: true
  network:
    description: The router's network, by name or URL. Required with O(state=present).
    type: str
  nat_ips:
    description:
      - Names or URLs of reserved regional external addresses; the NAT uses only these (C(MANUAL_ONLY)).
      - Empty means Google allocates addresses (C(AUTO_ONLY)).
    type: list
    elements: str
    default: []
  subnetworks:
    description: Subnetworks (names or URLs) whose ranges are translated; empty means every subnetwork in the region.
    type: list
    elements: str
    default: []
  min_ports_per_vm:
    description: Minimum ports allocated to each VM.
    type: int
    default: 64
  log:
    description: Which NAT events to log, or C(none).
    type: str
    choices: [none, ERRORS_ONLY, TRANSLATIONS_ONLY, ALL]
    default: ERRORS_ONLY
  state:
    description: Whether the NAT should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Cloud NAT on a reserved egress IP
  skyforge.prefect_platform.gcp_router_nat:
    project: my-project
    region: europe-west1
    router: prefect-router
    name: prefect-nat
    network: prefect-vpc
    nat_ips: [prefect-nat-ip-1]
    subnetworks: [prefect-subnet]
"""

RETURN = r"""
nat:
  description: The NAT entry of the router (predicted in check mode).
  returned: success
  type: dict
router:
  description: The router as the API returns it after the change.
  returned: success
  type: dict
changes:
  description: What differed, C(nat) when the NAT is added or removed, else the fields of the NAT that changed.
  returned: when changed
  type: list
  elements: str
"""

import uuid

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import differs
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import (
    basename,
    CONFLICT,
    GcpMember,
    GcpModule,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name


class Router(ComputeResource):
    kind = "router"
    collection = "routers"
    name_param = "router"
    regional = True

    @property
    def name(self):
        return self.params["router"]


class Nat(GcpMember):
    """The NAT entry of a router; the router is written whole, so a concurrent writer's NATs are re-read and kept."""

    kind = "nat"
    unordered = ("natIps", "subnetworks")
    report_changes = True

    def __init__(self, module):
        super(Nat, self).__init__(module)
        self.router = Router(module)

    def parent_label(self):
        return "router %s" % self.router.name

    def read(self):
        router = self.router.get()
        p = self.params
        if router is not None and p["state"] == "present" and basename(router.get("network", "")) != basename(
                p["network"]):
            self.module.fail_json(msg="router %s already exists in network %s, not %s. Fix: use another router name, "
                                      "or the router's network." % (p["router"], basename(router["network"]),
                                                                    p["network"]))
        return router

    def find(self, parent):
        return next((nat for nat in (parent or {}).get("nats", []) if nat["name"] == self.name), None)

    def desired(self):
        p = self.params
        link = self.router.link
        nat = {
            "name": p["name"],
            "natIpAllocateOption": "MANUAL_ONLY" if p["nat_ips"] else "AUTO_ONLY",
            "minPortsPerVm": p["min_ports_per_vm"],
            "logConfig": {"enable": p["log"] != "none", "filter": "ALL" if p["log"] == "none" else p["log"]},
        }
        if p["nat_ips"]:
            nat["natIps"] = [link(ip, "addresses", regional=True) for ip in p["nat_ips"]]
        if p["subnetworks"]:
            nat["sourceSubnetworkIpRangesToNat"] = "LIST_OF_SUBNETWORKS"
            nat["subnetworks"] = [
                {"name": link(s, "subnetworks", regional=True), "sourceIpRangesToNat": ["ALL_IP_RANGES"]}
                for s in p["subnetworks"]
            ]
        else:
            nat["sourceSubnetworkIpRangesToNat"] = "ALL_SUBNETWORKS_ALL_IP_RANGES"
        return nat

    def target(self, current, state):
        # The entry is written whole: what is not asked for is removed from it.
        return None if state == "absent" else self.desired()

    def changes(self, current, target):
        if current is None or target is None:
            return super(Nat, self).changes(current, target)
        changes = differs(target, current, unordered=self.unordered)
        if target["sourceSubnetworkIpRangesToNat"] != "LIST_OF_SUBNETWORKS" and current.get("subnetworks"):
            changes.append("subnetworks")
        if "natIps" not in target and current.get("natIps"):
            changes.append("natIps")
        return changes

    def write(self, parent, current, target):
        r = self.router
        if parent is None:
            body = {"name": r.name, "network": r.link(self.params["network"], "networks", regional=False),
                    "nats": [target]}
            action, request = "insert", r._coll().insert(body=body, requestId=str(uuid.uuid4()), **r._args())
        else:
            nats = [nat for nat in parent.get("nats", []) if nat["name"] != self.name] + ([target] if target else [])
            if not (nats or parent.get("bgpPeers") or parent.get("interfaces")):
                r.delete(parent)
                return {}
            if target is None:
                action, request = "update", r._coll().update(body=dict(parent, nats=nats), **r._args(router=r.name))
            else:
                action, request = "patch", r._coll().patch(body={"nats": nats}, **r._args(router=r.name))
        op = self.module.execute(request, action=action, resource=r.label(), allow=CONFLICT)
        self.module.wait("compute", op, resource=r.label())
        return r.get()

    def result(self, parent, before, after, changes):
        return {"nat": after or {}, "router": parent or {}}


def main():
    module = GcpModule(
        argument_spec=dict(
            router=dict(type="str", required=True),
            name=dict(type="str", required=True),
            region=dict(type="str", required=True),
            network=dict(type="str"),
            nat_ips=dict(type="list", elements="str", default=[]),
            subnetworks=dict(type="list", elements="str", default=[]),
            min_ports_per_vm=dict(type="int", default=64),
            log=dict(type="str", choices=["none", "ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"], default="ERRORS_ONLY"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["network"])],
    )
    p = module.params
    check_name(module, p["router"], "router")
    check_name(module, p["name"])
    if p["min_ports_per_vm"] < 2 or p["min_ports_per_vm"] > 65536:
        module.fail_json(msg="min_ports_per_vm=%d is out of range: use a power of two from 2 to 65536 (64 is "
                             "the default)" % p["min_ports_per_vm"])
    module.ensure(Nat(module))


if __name__ == "__main__":
    one_exit(main)()
