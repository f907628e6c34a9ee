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
  - The router is read, changed and written back; other NATs on the router are left alone.
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
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict, differs
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name


class Router(ComputeResource):
    kind = "router"
    collection = "routers"
    name_param = "router"
    regional = True

    @property
    def name(self):
        return self.params["router"]

    def nat_body(self):
        p = self.params
        nat = {
            "name": p["name"],
            "natIpAllocateOption": "MANUAL_ONLY" if p["nat_ips"] else "AUTO_ONLY",
            "minPortsPerVm": p["min_ports_per_vm"],
            "logConfig": {"enable": p["log"] != "none", "filter": "ALL" if p["log"] == "none" else p["log"]},
        }
        if p["nat_ips"]:
            nat["natIps"] = [self.link(ip, "addresses", regional=True) for ip in p["nat_ips"]]
        if p["subnetworks"]:
            nat["sourceSubnetworkIpRangesToNat"] = "LIST_OF_SUBNETWORKS"
            nat["subnetworks"] = [
                {"name": self.link(s, "subnetworks", regional=True), "sourceIpRangesToNat": ["ALL_IP_RANGES"]}
                for s in p["subnetworks"]
            ]
        else:
            nat["sourceSubnetworkIpRangesToNat"] = "ALL_SUBNETWORKS_ALL_IP_RANGES"
        return nat


def find_nat(router, name):
    for nat in (router or {}).get("nats", []):
        if nat["name"] == name:
            return nat
    return None


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
    res = Router(module)
    # Routers carry no fingerprint in compute v1: re-read and retry if another writer raced us.
    for attempt in range(3):
        router = res.get()
        current = find_nat(router, p["name"])
        if p["state"] == "absent":
            changed = current is not None
            after_router = None
            if changed and not module.check_mode:
                others = [n for n in router.get("nats", []) if n["name"] != p["name"]]
                if others or router.get("bgpPeers") or router.get("interfaces"):
                    body = dict(router, nats=others)
                    res._run(res._coll().update(body=body, **res._args(router=res.name)), "update")
                    after_router = res.get()
                else:
                    res.delete(router)
            module.exit_json(changed=changed, nat={}, router=after_router or {}, diff=diff_dict(current, None))
        desired = res.nat_body()
        if router is not None and router.get("network", "").rsplit("/", 1)[-1] != p["network"].rsplit("/", 1)[-1]:
            module.fail_json(msg="router %s already exists in network %s, not %s. Fix: use another router name, or "
                                 "the router's network." % (p["router"], router["network"].rsplit("/", 1)[-1], p["network"]))
        if current is not None:
            changes = differs(desired, current, unordered=("natIps", "subnetworks"))
            if desired["sourceSubnetworkIpRangesToNat"] != "LIST_OF_SUBNETWORKS" and current.get("subnetworks"):
                changes.append("subnetworks")
            if "natIps" not in desired and current.get("natIps"):
                changes.append("natIps")
            if not changes:
                module.exit_json(changed=False, nat=current, router=router, diff=diff_dict(current, current))
        predicted = dict(desired)
        if module.check_mode:
            module.exit_json(changed=True, nat=predicted, router=router or {}, diff=diff_dict(current, predicted))
        if router is None:
            body = {"name": p["router"], "network": res.link(p["network"], "networks", regional=False), "nats": [desired]}
            try:
                res.create(body)
            except Exception:  # pylint: disable=broad-except
                if attempt < 2:
                    continue
                raise
        else:
            nats = [n for n in router.get("nats", []) if n["name"] != p["name"]] + [desired]
            res._run(res._coll().patch(body={"nats": nats}, **res._args(router=res.name)), "patch")
        router = res.get()
        nat = find_nat(router, p["name"])
        module.exit_json(changed=True, nat=nat, router=router, diff=diff_dict(current, nat),
                         changes=changes if current is not None else ["nat"])


if __name__ == "__main__":
    main()
