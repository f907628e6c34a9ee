#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_workspace
short_description: Manage an HCP Terraform workspace (API-driven)
version_added: 0.1.0
description:
  - Creates, updates or deletes an API-driven HCP Terraform workspace, with its execution mode,
    agent pool, Terraform version, working directory, auto-apply, tags and description.
  - Options left unset are not managed, so a later task (or a person) may change them.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The workspace name (letters, numbers, C(-) and C(_), up to 90 characters).
    type: str
    required: true
  description:
    description: A description of the workspace.
    type: str
  execution_mode:
    description:
      - Where runs execute. V(agent) runs them on the agents of O(agent_pool).
    type: str
    choices: [remote, local, agent]
  agent_pool:
    description:
      - Name or ID (C(apool-...)) of the agent pool, required when O(execution_mode=agent).
      - The pool must be organization-scoped or list this workspace among its allowed workspaces.
    type: str
  terraform_version:
    description: The Terraform version or constraint runs use (for example C(1.9.8) or C(~> 1.9)).
    type: str
  working_directory:
    description: The directory, relative to the configuration's root, that Terraform runs in.
    type: str
  auto_apply:
    description: Whether runs apply automatically after a successful plan.
    type: bool
  tags:
    description:
      - The workspace's tags (lowercase letters, numbers, colons, hyphens and underscores).
      - When set, tags not listed are removed.
    type: list
    elements: str
  state:
    description: Whether the workspace should exist. Deleting a workspace deletes its state.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Workspace whose runs execute on our agents
  skyforge.prefect_platform.tfc_workspace:
    organization: skyforge
    name: prefect-infra
    execution_mode: agent
    agent_pool: gcp-agents
    terraform_version: 1.9.8
    auto_apply: false
    tags: [prefect, gcp]
"""

RETURN = r"""
workspace:
  description: The workspace (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "ws-6jrRyVDv1J8zQMB5", "name": "prefect-infra", "execution_mode": "agent",
           "agent_pool_id": "apool-yoGUFz5zcRMMz53i", "auto_apply": false, "tags": ["gcp", "prefect"]}
  contains:
    id:
      description: The workspace ID (C(ws-...)), which O(skyforge.prefect_platform.tfc_run#module:workspace_id) takes.
      type: str
      sample: ws-6jrRyVDv1J8zQMB5
    name:
      description: The workspace name.
      type: str
      sample: prefect-infra
changes:
  description: The settings that differed and were updated.
  returned: when an existing workspace changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc_workspaces import (
    Workspace,
    pool_id as find_pool_id,
    settings_problem,
)


def main():
    module = TfcModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str"),
            execution_mode=dict(type="str", choices=["remote", "local", "agent"]),
            agent_pool=dict(type="str"),
            terraform_version=dict(type="str"),
            working_directory=dict(type="str"),
            auto_apply=dict(type="bool"),
            tags=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    problem = settings_problem(p["name"], p, p["state"])
    if problem:
        module.fail_json(msg=problem)
    pool_id = find_pool_id(module, p["agent_pool"]) if p["state"] == "present" else None
    module.ensure(Workspace(module, pool_id))


if __name__ == "__main__":
    one_exit(main)()
