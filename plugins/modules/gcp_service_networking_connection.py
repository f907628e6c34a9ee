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
  sample: {"network": "prefect-vpc", "reservedPeeringRanges": ["prefect-psa"]}
changes:
  description: The fields that differed and were updated.
  returned: when an existing connection changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import check_name
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import network_path


class Connection(GcpResource):
    """The peering of one VPC with a producer service; the API finds it by network, the name is always `-`."""

    kind = "connection"
    api = "servicenetworking"
    compare_on_view = True
    unordered = ("reservedPeeringRanges",)

    def __init__(self, module):
        super(Connection, self).__init__(module)
        self.connections = self.client().services().connections()
        self.parent = "services/%s" % self.params["service"]
        self.network = network_path(self.params["project"], self.params["network"])

    @property
    def name(self):
        return self.params["network"]

    def label(self):
        return "connection of network %s" % self.name

    def _wait(self, request, action):
        op = self.module.execute(request, action, self.label(), allow_409=(action == "create"))
        return self.module.wait("servicenetworking", op, resource=self.label())

    def get(self):
        found = self.module.execute(self.connections.list(parent=self.parent, network=self.network), "list",
                                    self.label()) or {}
        return (found.get("connections") or [None])[0]

    def view(self, resource):
        return {"network": self.name, "reservedPeeringRanges": resource["reservedPeeringRanges"]} if resource else None

    def desired(self):
        return {"network": self.name, "reservedPeeringRanges": list(self.params["ranges"])}

    def _body(self, desired):
        return {"network": self.network, "reservedPeeringRanges": desired["reservedPeeringRanges"]}

    def create(self, desired):
        return self._wait(self.connections.create(parent=self.parent, body=self._body(desired)), "create")

    def update(self, current, desired, changes):
        return self._wait(self.connections.patch(name="%s/connections/-" % self.parent, body=self._body(desired),
                                                 updateMask="reservedPeeringRanges", force=self.params["force"]),
                          "patch")

    def delete(self, current):
        name = "%s/connections/%s" % (self.parent, current.get("peering", "servicenetworking-googleapis-com"))
        return self._wait(self.connections.deleteConnection(name=name, body={"consumerNetwork": self.network}),
                          "deleteConnection")


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
    module.ensure(Connection(module))


if __name__ == "__main__":
    one_exit(main)()
