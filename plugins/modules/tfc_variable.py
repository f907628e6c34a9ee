#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_variable
short_description: Manage a variable of an HCP Terraform workspace
version_added: 0.1.0
description:
  - Creates, updates or deletes a Terraform or environment variable of a workspace, identified by
    O(key) and O(category).
  - A sensitive variable's value can never be read back, so it is never compared or diffed. It is
    written when the variable is created, and afterwards only with O(force_update_sensitive=true);
    the result says so in RV(sensitive_value).
  - HCP Terraform cannot turn a sensitive variable back into a non-sensitive one; delete it first.
  - O(value) is a C(no_log) option, so Ansible masks its text wherever it appears in the task's output;
    very short values (such as C(1)) make other output hard to read.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  workspace:
    description:
      - The workspace name.
      - One of O(workspace) and O(workspace_id) is required.
    type: str
  workspace_id:
    description:
      - The workspace ID (C(ws-...)), for example from RV(skyforge.prefect_platform.tfc_workspace#module:workspace.id).
      - Saves looking the workspace up by name.
    type: str
  key:
    description: The variable name.
    type: str
    required: true
  value:
    description:
      - The value (a string; with O(hcl=true) an HCL expression such as C(["a", "b"])).
      - Required when O(state=present). Never logged.
    type: str
  category:
    description: A Terraform input variable or a shell environment variable of the run.
    type: str
    choices: [terraform, env]
    default: terraform
  hcl:
    description: Whether the value is HCL (lists, maps, numbers) rather than a string.
    type: bool
    default: false
  sensitive:
    description: Whether the value is write-only (never shown again, by the API or by this module).
    type: bool
    default: false
  description:
    description: A description of the variable.
    type: str
  force_update_sensitive:
    description: Rewrite the value of an existing sensitive variable (it cannot be compared).
    type: bool
    default: false
  state:
    description: Whether the variable should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The GCP region the configuration deploys to
  skyforge.prefect_platform.tfc_variable:
    organization: skyforge
    workspace: prefect-infra
    key: region
    value: europe-west1

- name: A credential, write-only
  skyforge.prefect_platform.tfc_variable:
    organization: skyforge
    workspace: prefect-infra
    key: GOOGLE_CREDENTIALS
    category: env
    value: "{{ lookup('file', 'key.json') | to_json }}"
    sensitive: true
"""

RETURN = r"""
variable:
  description: The variable; the value of a sensitive variable is always null.
  returned: success
  type: dict
  sample: {"id": "var-EavQ1LztoRTQHSNT", "key": "region", "category": "terraform", "hcl": false,
           "sensitive": false, "value": "europe-west1"}
sensitive_value:
  description:
    - For a sensitive variable, what happened to its value.
    - V(written) (created or rewritten), V(not_compared) (left as is; set O(force_update_sensitive) to rewrite).
  returned: when the variable is sensitive
  type: str
changes:
  description: The fields that differed and were updated.
  returned: when an existing variable changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import (
    TfcModule,
    WorkspaceVariable,
    variable_problem,
)


def main():
    module = TfcModule(
        argument_spec=dict(
            workspace=dict(type="str"),
            workspace_id=dict(type="str"),
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", no_log=True),
            category=dict(type="str", choices=["terraform", "env"], default="terraform"),
            hcl=dict(type="bool", default=False),
            sensitive=dict(type="bool", default=False),
            description=dict(type="str"),
            force_update_sensitive=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["value"])],
        required_one_of=[("workspace", "workspace_id")],
        mutually_exclusive=[("workspace", "workspace_id")],
    )
    p = module.params
    problem = variable_problem(p)
    if problem:
        module.fail_json(msg=problem)
    ws_id, label = module.target_workspace()
    # One list serves the sensitivity check and ensure()'s lookup.
    docs = module.workspace_variables(ws_id, label) if ws_id else []
    resource = WorkspaceVariable(module, ws_id, label, p, docs, force_update_sensitive=p["force_update_sensitive"])
    if p["state"] == "present":
        refused = resource.unsensitive_problem(resource.find(docs))
        if refused:
            module.fail_json(msg=refused)

    def extra(_after):
        return {"sensitive_value": resource.sensitive_note} if p["sensitive"] and p["state"] == "present" else {}

    module.ensure(resource, extra=extra)


if __name__ == "__main__":
    one_exit(main)()
