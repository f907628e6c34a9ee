#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_workspace_variables
short_description: Manage the variables of an HCP Terraform workspace as a set
version_added: 0.2.0
description:
  - Brings the Terraform and environment variables of one workspace to O(variables) in one task. Each
    variable is identified by its O(variables[].key) and O(variables[].category).
  - Reads the workspace's variables once, then writes only the variables that differ. With O(purge=true),
    variables of the workspace that are not listed are deleted.
  - The per-variable rules are those of M(skyforge.prefect_platform.tfc_variable). A sensitive variable's
    value can never be read back, so it is never compared or diffed; it is written when the variable is
    created, when it becomes sensitive, and otherwise only with O(force_update_sensitive=true). HCP Terraform
    cannot turn a sensitive variable back into a non-sensitive one; delete it first.
  - O(variables[].value) is a C(no_log) option, so no value reaches the logged module invocation. In the
    result, Ansible masks only the values of sensitive variables; the values of non-sensitive ones are
    readable through the API anyway and are shown in the diff.
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
  variables:
    description: The variables the workspace should have.
    type: list
    elements: dict
    required: true
    suboptions:
      key:
        description: The variable name.
        type: str
        required: true
      value:
        description: The value (a string; with O(variables[].hcl=true) an HCL expression such as C(["a", "b"])). Never logged.
        type: str
        required: true
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
        description: A description of the variable (left as is when unset).
        type: str
  purge:
    description: Delete the variables of the workspace that O(variables) does not list.
    type: bool
    default: false
  force_update_sensitive:
    description: Rewrite the values of the listed sensitive variables that exist (they cannot be compared).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The workspace's inputs, in one call
  skyforge.prefect_platform.tfc_workspace_variables:
    organization: skyforge
    workspace: prefect-infra
    variables:
      - key: region
        value: europe-west1
      - key: zones
        value: '["b", "c"]'
        hcl: true
      - key: GOOGLE_CREDENTIALS
        category: env
        value: "{{ lookup('file', 'key.json') | to_json }}"
        sensitive: true
    purge: true
  register: infra_vars

- name: Apply, without listing the variables again
  skyforge.prefect_platform.tfc_run:
    organization: skyforge
    workspace: prefect-infra
    workspace_id: "{{ infra_vars.workspace_id }}"
    variables_digest: "{{ infra_vars.variables_digest }}"
    config_dir: "{{ role_path }}/files/terraform"
"""

RETURN = r"""
variables:
  description: Every variable of the workspace afterwards (predicted in check mode); sensitive ones have no value.
  returned: success
  type: list
  elements: dict
  sample: [{"id": "var-EavQ1LztoRTQHSNT", "key": "region", "category": "terraform", "hcl": false,
            "sensitive": false, "description": null, "value": "europe-west1"}]
created:
  description: The variables created (C(category/key)).
  returned: success
  type: list
  elements: str
updated:
  description: The variables updated (C(category/key)) and the fields that differed.
  returned: success
  type: dict
  sample: {"terraform/region": ["value"]}
deleted:
  description: The variables deleted by O(purge) (C(category/key)).
  returned: success
  type: list
  elements: str
sensitive_values:
  description:
    - For each listed sensitive variable (C(category/key)), what happened to its value.
    - V(written) (created or rewritten), V(not_compared) (left as is; set O(force_update_sensitive) to rewrite).
  returned: success
  type: dict
  sample: {"env/GOOGLE_CREDENTIALS": "not_compared"}
variables_digest:
  description:
    - A digest of the versions of the workspace's variables afterwards, for O(skyforge.prefect_platform.tfc_run#module:variables_digest).
    - In check mode, a variable that would change counts as pending, so the digest differs from any real one.
  returned: success
  type: str
workspace_id:
  description: The workspace's ID; null in check mode when the workspace does not exist yet.
  returned: success
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import (
    TfcModule,
    mask_only_sensitive,
    set_variables,
    variable_label as label,
    variable_problem,
)

VARIABLE = dict(
    key=dict(type="str", required=True, no_log=False),
    value=dict(type="str", required=True, no_log=True),
    category=dict(type="str", choices=["terraform", "env"], default="terraform"),
    hcl=dict(type="bool", default=False),
    sensitive=dict(type="bool", default=False),
    description=dict(type="str"),
)


def main():
    module = TfcModule(
        argument_spec=dict(
            workspace=dict(type="str"),
            workspace_id=dict(type="str"),
            variables=dict(type="list", elements="dict", required=True, options=VARIABLE),
            purge=dict(type="bool", default=False),
            force_update_sensitive=dict(type="bool", default=False),
        ),
        required_one_of=[("workspace", "workspace_id")],
        mutually_exclusive=[("workspace", "workspace_id")],
    )
    mask_only_sensitive(module)
    p = module.params
    seen = set()
    for spec in p["variables"]:
        problem = variable_problem(spec)
        if problem:
            module.fail_json(msg="variables (%s): %s" % (label(spec["category"], spec["key"]), problem))
        if (spec["category"], spec["key"]) in seen:
            module.fail_json(msg="variables lists %s twice: keep one entry per key and category"
                                 % label(spec["category"], spec["key"]))
        seen.add((spec["category"], spec["key"]))

    ws_id, ws_label = module.target_workspace()
    docs = module.workspace_variables(ws_id, ws_label) if ws_id else []
    result = set_variables(module, ws_id, ws_label, p["variables"], docs, purge=p["purge"],
                           force_update_sensitive=p["force_update_sensitive"])
    module.exit_json(workspace_id=ws_id, **result)


if __name__ == "__main__":
    one_exit(main)()
