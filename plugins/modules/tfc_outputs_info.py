#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_outputs_info
short_description: Read the outputs of an HCP Terraform workspace's current state
version_added: 0.1.0
description:
  - Returns the outputs of the workspace's current state version. Sensitive outputs are flagged and
    their values are null (HCP Terraform does not return them in this list).
  - A workspace that was never applied has no state; RV(outputs) is then empty and RV(has_state) false.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes.info_module
options:
  workspace:
    description:
      - The workspace name.
      - One of O(workspace) and O(workspace_id) is required.
    type: str
  workspace_id:
    description:
      - The workspace ID (C(ws-...)), for example from RV(skyforge.prefect_platform.tfc_workspace#module:workspace.id).
      - Saves looking the workspace up by name; the workspace is read only when it has no state, to tell that
        apart from a workspace that does not exist.
    type: str
"""

EXAMPLES = r"""
- name: Read the infrastructure outputs
  skyforge.prefect_platform.tfc_outputs_info:
    organization: skyforge
    workspace: prefect-infra
  register: infra

- name: Use one
  ansible.builtin.debug:
    msg: "{{ infra.output_values.region }}"
"""

RETURN = r"""
outputs:
  description: Each output by name, with its value (null when sensitive), type and sensitivity.
  returned: success
  type: dict
  sample: {"region": {"value": "europe-west1", "sensitive": false, "type": "string"},
           "db_password": {"value": null, "sensitive": true, "type": "string"}}
output_values:
  description: Output name to value (null for sensitive outputs).
  returned: success
  type: dict
sensitive:
  description: Names of the sensitive outputs.
  returned: success
  type: list
  elements: str
has_state:
  description: Whether the workspace has a current state version.
  returned: success
  type: bool
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule


def main():
    module = TfcModule(
        argument_spec=dict(workspace=dict(type="str"), workspace_id=dict(type="str")),
        required_one_of=[("workspace", "workspace_id")],
        mutually_exclusive=[("workspace", "workspace_id")],
    )
    p = module.params
    label = p["workspace"] or p["workspace_id"]
    ws_id = p["workspace_id"]
    if ws_id is None:
        ws = module.workspace(p["workspace"])
        ws_id = ws["id"] if ws else None
    items = module.call(lambda: list(module.client.state_version_outputs.read_current(ws_id)),
                        action="read current outputs of", resource=label, allow_404=True) if ws_id else None
    if items is None and (ws_id is None or (p["workspace_id"] and module.workspace_by_id(ws_id) is None)):
        # The API answers 404 both for a workspace without state and for one that does not exist.
        module.fail_json(msg="workspace %s does not exist in organization %s. Fix: check the name, or create and "
                             "apply it first." % (label, module.organization))
    outputs = {}
    for o in items or []:
        outputs[o.name] = {"value": None if o.sensitive else o.value, "sensitive": bool(o.sensitive), "type": o.type}
    module.exit_json(changed=False, outputs=outputs, has_state=items is not None,
                     output_values=dict((k, v["value"]) for k, v in outputs.items()),
                     sensitive=sorted(k for k, v in outputs.items() if v["sensitive"]))


if __name__ == "__main__":
    one_exit(main)()
