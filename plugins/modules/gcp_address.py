#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_address
short_description: Reserve a static IP address or an allocated range
version_added: 0.1.0
description:
  - Reserves a regional or global, external or internal static address, for example the Cloud NAT egress IP, the
    ingress IP, a VM's static internal IP, or the C(VPC_PEERING) range that Private Service Access needs.
  - Addresses cannot be changed in place; a differing setting fails with a clear message.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The address name.
    type: str
    required: true
  region:
    description: The region of a regional address; omit for a global address.
    type: str
  address_type:
    description: C(EXTERNAL) or C(INTERNAL).
    type: str
    choices: [EXTERNAL, INTERNAL]
    default: EXTERNAL
  purpose:
    description: C(VPC_PEERING) for a Private Service Access range (global, internal); C(GCE_ENDPOINT) for a VM's internal IP.
    type: str
    choices: [VPC_PEERING, GCE_ENDPOINT]
  address:
    description: The IP (or the first address of the range) to reserve; the API picks one when omitted.
    type: str
  prefix_length:
    description: Prefix length of a C(VPC_PEERING) range.
    type: int
  network:
    description: The network of a C(VPC_PEERING) range, by name or URL.
    type: str
  subnetwork:
    description: The subnetwork of a regional internal address, by name or URL.
    type: str
  description:
    description: A description.
    type: str
    default: ""
  state:
    description: Whether the address should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Cloud NAT egress IP
  skyforge.prefect_platform.gcp_address:
    project: my-project
    name: prefect-nat-ip-1
    region: europe-west1

- name: Private Service Access range
  skyforge.prefect_platform.gcp_address:
    project: my-project
    name: prefect-psa
    address_type: INTERNAL
    purpose: VPC_PEERING
    prefix_length: 16
    network: prefect-vpc
"""

RETURN = r"""
address:
  description: The address resource (predicted in check mode, where the IP is not known yet).
  returned: success
  type: dict
ip:
  description: The reserved IP address (the first address of a range).
  returned: when present, unless check mode predicts a new address whose IP the API has not picked yet
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name


class Address(ComputeResource):
    kind = "address"
    name_param = "address"
    immutable = ("addressType", "purpose", "address", "prefixLength", "network", "subnetwork", "description")

    def __init__(self, module):
        super(Address, self).__init__(module)
        self.regional = bool(self.params["region"])
        self.collection = "addresses" if self.regional else "globalAddresses"

    def desired(self):
        p = self.params
        body = {"name": p["name"], "description": p["description"], "addressType": p["address_type"]}
        if p["purpose"]:
            body["purpose"] = p["purpose"]
        if p["address"]:
            body["address"] = p["address"]
        if p["prefix_length"]:
            body["prefixLength"] = p["prefix_length"]
        if p["network"]:
            body["network"] = self.link(p["network"], "networks", regional=False)
        if p["subnetwork"]:
            body["subnetwork"] = self.link(p["subnetwork"], "subnetworks", regional=True)
        return body

    def changes(self, desired, current):
        wanted = dict(desired)
        if self.params["address_type"] == "INTERNAL" and self.regional and "purpose" not in wanted:
            wanted["purpose"] = current.get("purpose")
        return super(Address, self).changes(wanted, current)


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str"),
            address_type=dict(type="str", choices=["EXTERNAL", "INTERNAL"], default="EXTERNAL"),
            purpose=dict(type="str", choices=["VPC_PEERING", "GCE_ENDPOINT"]),
            address=dict(type="str"),
            prefix_length=dict(type="int"),
            network=dict(type="str"),
            subnetwork=dict(type="str"),
            description=dict(type="str", default=""),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    check_name(module, p["name"])
    if p["state"] == "present":
        if p["purpose"] == "VPC_PEERING" and (p["region"] or p["address_type"] != "INTERNAL" or not p["network"]
                                              or not p["prefix_length"]):
            module.fail_json(msg="purpose=VPC_PEERING needs a global (no region) INTERNAL address with network and "
                                 "prefix_length, for example prefix_length: 16")
        if p["region"] and p["address_type"] == "INTERNAL" and not p["subnetwork"]:
            module.fail_json(msg="a regional INTERNAL address needs subnetwork: the subnet its IP comes from")
    module.ensure(Address(module), extra=lambda after: {"ip": after.get("address")} if after and after.get("address") else {})


if __name__ == "__main__":
    one_exit(main)()
