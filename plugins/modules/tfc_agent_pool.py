#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_agent_pool
short_description: Manage an HCP Terraform agent pool
version_added: 0.1.0
description:
  - Creates, updates or deletes an agent pool, either organization-scoped (every workspace may use
    it) or limited to a list of allowed workspaces.
  - A pool that workspaces still use cannot be deleted; switch them to another execution mode first.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The pool name.
    type: str
    required: true
  organization_scoped:
    description:
      - Whether every workspace of the organization may use the pool.
      - Defaults to V(false) when O(allowed_workspaces) is set, else V(true).
    type: bool
  allowed_workspaces:
    description:
      - Names of the workspaces allowed to use the pool (the exact list; others are removed).
    type: list
    elements: str
  state:
    description: Whether the pool should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: A pool only the infrastructure workspace may use
  skyforge.prefect_platform.tfc_agent_pool:
    organization: skyforge
    name: gcp-agents
    allowed_workspaces: [prefect-infra]
"""

RETURN = r"""
agent_pool:
  description: The pool (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "apool-yoGUFz5zcRMMz53i", "name": "gcp-agents", "organization_scoped": false,
           "allowed_workspaces": ["prefect-infra"], "agent_count": 1}
changes:
  description: The settings that differed and were updated.
  returned: when an existing pool changed
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import (
    TfcModule,
    TfcResource,
    rel_ids,
)

try:
    from pytfe.models import AgentPoolCreateOptions, AgentPoolUpdateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK


class AgentPool(TfcResource):
    kind = "agent_pool"

    def __init__(self, module):
        super(AgentPool, self).__init__(module)
        self._ws = None

    def workspaces(self):
        """Workspace id <-> name of the organization, read once."""
        if self._ws is None:
            m = self.module
            items = m.jsonapi_list("/api/v2/organizations/%s/workspaces" % m.organization, action="list workspaces of",
                                   resource=m.organization)
            self._ws = dict((w["id"], w["attributes"]["name"]) for w in items)
        return self._ws

    def ids_for(self, names):
        by_name = dict((v, k) for k, v in self.workspaces().items())
        missing = [n for n in names if n not in by_name]
        if missing and not self.module.check_mode:
            self.module.fail_json(msg="allowed_workspaces %s do not exist in organization %s. Fix: create them "
                                      "first (skyforge.prefect_platform.tfc_workspace)."
                                      % (", ".join(missing), self.module.organization))
        return [by_name[n] for n in names if n in by_name]

    def get(self):
        m = self.module
        for item in m.jsonapi_list("/api/v2/organizations/%s/agent-pools" % m.organization,
                                   action="list agent pools of", resource=m.organization):
            if item["attributes"]["name"] == self.name:
                return item
        return None

    def view(self, resource):
        if not resource:
            return None
        a = resource.get("attributes") or {}
        names = self.workspaces()
        return {"id": resource.get("id"), "name": a.get("name"), "organization_scoped": a.get("organization-scoped"),
                "allowed_workspaces": sorted(names.get(i, i) for i in rel_ids(resource, "allowed-workspaces")),
                "workspaces": sorted(names.get(i, i) for i in rel_ids(resource, "workspaces")),
                "agent_count": a.get("agent-count")}

    def desired(self):
        p = self.params
        out = {"name": p["name"]}
        scoped = p["organization_scoped"]
        if scoped is None:
            scoped = p["allowed_workspaces"] is None
        out["organization_scoped"] = scoped
        if p["allowed_workspaces"] is not None:
            out["allowed_workspaces"] = sorted(set(p["allowed_workspaces"]))
        return out

    def create(self, desired):
        m = self.module
        ids = self.ids_for(desired.get("allowed_workspaces") or [])
        opts = AgentPoolCreateOptions(name=desired["name"], organization_scoped=desired["organization_scoped"],
                                      allowed_workspace_ids=ids or None)
        m.call(lambda: m.client.agent_pools.create(m.organization, opts), action="create agent pool",
               resource=self.name, allow=(422,))

    def update(self, current, desired, changes):
        m = self.module
        ids = self.ids_for(desired["allowed_workspaces"]) if "allowed_workspaces" in desired else None
        if ids == []:
            # pytfe drops an empty list; clearing the allowed workspaces needs the explicit empty relationship.
            body = {"data": {"type": "agent-pools", "id": current["id"],
                             "attributes": {"organization-scoped": desired["organization_scoped"]},
                             "relationships": {"allowed-workspaces": {"data": []}}}}
            m.jsonapi("PATCH", "/api/v2/agent-pools/%s" % current["id"], body=body, action="update agent pool",
                      resource=self.name)
            return
        opts = AgentPoolUpdateOptions(organization_scoped=desired["organization_scoped"], allowed_workspace_ids=ids)
        m.call(lambda: m.client.agent_pools.update(current["id"], opts), action="update agent pool", resource=self.name)

    def delete(self, current):
        m = self.module
        m.call(lambda: m.client.agent_pools.delete(current["id"]), action="delete agent pool", resource=self.name,
               allow_404=True)


def main():
    module = TfcModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            organization_scoped=dict(type="bool"),
            allowed_workspaces=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    if not re.match(r"^[A-Za-z0-9_.-]{1,90}$", p["name"]):
        module.fail_json(msg="name=%r is not a valid agent pool name: use letters, numbers, -, _ and ." % p["name"])
    if p["organization_scoped"] and p["allowed_workspaces"]:
        module.fail_json(msg="organization_scoped=true already allows every workspace: drop allowed_workspaces, or "
                             "set organization_scoped=false to limit the pool to them")
    module.ensure(AgentPool(module))


if __name__ == "__main__":
    one_exit(main)()
