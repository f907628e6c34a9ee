#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_instance_info
short_description: Read a Compute Engine VM and its addresses
version_added: 0.1.0
description:
  - Returns the instance, its internal IP and, when it has one, its external IP; for posture checks such as
    "the HCP Terraform agent VM has no external IP".
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes.info_module
options:
  name:
    description: The instance name.
    type: str
    required: true
  zone:
    description: The zone.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The agent VM has no external IP
  skyforge.prefect_platform.gcp_instance_info:
    project: my-project
    name: prefect-tfc-agent
    zone: europe-west1-b
  register: agent_vm
  failed_when: agent_vm.external_ip is defined
"""

RETURN = r"""
exists:
  description: Whether the instance exists.
  returned: always
  type: bool
instance:
  description: The instance as the API returns it.
  returned: when it exists
  type: dict
status:
  description: The instance's status, for example C(RUNNING).
  returned: when it exists
  type: str
internal_ip:
  description: The first network interface's internal IP.
  returned: when it exists
  type: str
external_ip:
  description: The external IP, only when the instance has one.
  returned: when the instance has one
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule


def main():
    module = GcpModule(
        argument_spec=dict(name=dict(type="str", required=True), zone=dict(type="str", required=True)),
    )
    p = module.params
    request = module.client("compute").instances().get(project=p["project"], zone=p["zone"], instance=p["name"])
    instance = module.get(request, resource="instance %s" % p["name"])
    if instance is None:
        module.exit_json(changed=False, exists=False)
    nic = (instance.get("networkInterfaces") or [{}])[0]
    out = dict(changed=False, exists=True, instance=instance, status=instance.get("status"),
               internal_ip=nic.get("networkIP"))
    configs = nic.get("accessConfigs") or []
    if configs and configs[0].get("natIP"):
        out["external_ip"] = configs[0]["natIP"]
    module.exit_json(**out)


if __name__ == "__main__":
    one_exit(main)()
