#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_service_networking_connection
short_description: Manage the Private Service Access peering of a VPC
version_added: 0.1.0
description:
  - Peers a VPC with Google's service producer network through C(servicenetworking.googleapis.com), using
    allocated C(VPC_PEERING) ranges. Cloud SQL private IPs come from these ranges.
  - Changing the ranges updates the connection in place; removing a range still used by a service needs O(force).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  network:
    description: The VPC network name.
    type: str
    required: true
  ranges:
    description: Names of global C(VPC_PEERING) addresses to peer. Required with O(state=present).
    type: list
    elements: str
  service:
    description: The producer service.
    type: str
    default: servicenetworking.googleapis.com
  force:
    description: Update the ranges even if a removed range is in use by a producer service.
    type: bool
    default: false
  state:
    description: Whether the peering should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Private Service Access for Cloud SQL
  skyforge.prefect_platform.gcp_service_networking_connection:
    project: my-project
    network: prefect-vpc
    ranges: [prefect-psa]
"""

RETURN = r"""
connection:
  description: The connection (predicted in check mode).
  returned: success
  type: dict
  sample: {"network": "projects/123/global/networks/prefect-vpc", "reservedPeeringRanges": ["prefect-psa"]}
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import check_name


def main():
    module = GcpModule(
        argument_spec=dict(
            network=dict(type="str", required=True),
            ranges=dict(type="list", elements="str"),
            service=dict(type="str", default="servicenetworking.googleapis.com"),
            force=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["ranges"])],
    )
    p = module.params
    check_name(module, p["network"], "network")
    for name in p["ranges"] or []:
        check_name(module, name, "ranges")
    sn = module.client("servicenetworking")
    parent = "services/%s" % p["service"]
    network = "projects/%s/global/networks/%s" % (p["project"], p["network"])
    label = "connection of network %s" % p["network"]
    found = module.execute(sn.services().connections().list(parent=parent, network=network), "list", label) or {}
    current = (found.get("connections") or [None])[0]
    before = {"network": p["network"], "reservedPeeringRanges": current["reservedPeeringRanges"]} if current else None

    if p["state"] == "absent":
        if current and not module.check_mode:
            op = module.execute(sn.services().connections().deleteConnection(
                name="%s/connections/%s" % (parent, current.get("peering", "servicenetworking-googleapis-com")),
                body={"consumerNetwork": network}), "deleteConnection", label)
            module.wait("servicenetworking", op, resource=label)
        module.exit_json(changed=bool(current), connection={}, diff=diff_dict(before, None))

    after = {"network": p["network"], "reservedPeeringRanges": list(p["ranges"])}
    if current and sorted(current["reservedPeeringRanges"]) == sorted(p["ranges"]):
        module.exit_json(changed=False, connection=after, diff=diff_dict(before, before))
    if not module.check_mode:
        body = {"network": network, "reservedPeeringRanges": list(p["ranges"])}
        if current:
            request = sn.services().connections().patch(
                name="%s/connections/-" % parent, body=body, updateMask="reservedPeeringRanges", force=p["force"])
            op = module.execute(request, "patch", label)
        else:
            op = module.execute(sn.services().connections().create(parent=parent, body=body), "create", label)
        module.wait("servicenetworking", op, resource=label)
    module.exit_json(changed=True, connection=after, diff=diff_dict(before, after))


if __name__ == "__main__":
    main()
