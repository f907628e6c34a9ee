#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_network
short_description: Manage a custom-mode VPC network
version_added: 0.1.0
description:
  - Creates, updates or deletes a custom-mode VPC network (no automatic subnetworks).
  - Routing mode, MTU and description are updated in place.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The network name.
    type: str
    required: true
  description:
    description: A description of the network.
    type: str
    default: ""
  routing_mode:
    description: Whether Cloud Routers advertise and learn routes regionally or globally.
    type: str
    choices: [REGIONAL, GLOBAL]
    default: REGIONAL
  mtu:
    description: Maximum transmission unit in bytes, 1300 to 8896.
    type: int
    default: 1460
  state:
    description: Whether the network should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The platform VPC
  skyforge.prefect_platform.gcp_network:
    project: my-project
    name: prefect-vpc
    routing_mode: REGIONAL
"""

RETURN = r"""
network:
  description: The network as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"name": "prefect-vpc", "selfLink": "https://www.googleapis.com/compute/v1/projects/p/global/networks/prefect-vpc"}
changes:
  description: The fields that differed and were updated.
  returned: when an existing network changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import ComputeResource, check_name


class Network(ComputeResource):
    kind = "network"
    collection = "networks"
    name_param = "network"
    immutable = ("autoCreateSubnetworks",)

    def desired(self):
        p = self.params
        return {
            "name": p["name"],
            "description": p["description"],
            "autoCreateSubnetworks": False,
            "routingConfig": {"routingMode": p["routing_mode"]},
            "mtu": p["mtu"],
        }

    def update(self, current, desired, changes):
        body = dict((k, v) for k, v in desired.items() if k in ("description", "routingConfig", "mtu"))
        return self._run(self._coll().patch(body=body, **self._args(network=self.name)), "patch")


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str", default=""),
            routing_mode=dict(type="str", choices=["REGIONAL", "GLOBAL"], default="REGIONAL"),
            mtu=dict(type="int", default=1460),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    check_name(module, module.params["name"])
    if not 1300 <= module.params["mtu"] <= 8896:
        module.fail_json(msg="mtu=%d is out of range: use 1300 to 8896 (1460 is GCP's default)" % module.params["mtu"])
    module.ensure(Network(module))


if __name__ == "__main__":
    one_exit(main)()
