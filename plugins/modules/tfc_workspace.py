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

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import (
    TfcModule,
    TfcResource,
    rel_id,
)

try:
    from pytfe.models import Tag, WorkspaceAddTagsOptions, WorkspaceCreateOptions, WorkspaceRemoveTagsOptions
    from pytfe.models import WorkspaceUpdateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK

NAME = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TAG = re.compile(r"^[a-z0-9](?:[a-z0-9:_-]{0,253}[a-z0-9])?$")


def view(doc):
    if not doc:
        return None
    a = doc.get("attributes") or {}
    return {
        "id": doc.get("id"),
        "name": a.get("name"),
        "description": a.get("description"),
        "execution_mode": a.get("execution-mode"),
        "agent_pool_id": rel_id(doc, "agent-pool"),
        "terraform_version": a.get("terraform-version"),
        "working_directory": a.get("working-directory") or None,
        "auto_apply": a.get("auto-apply"),
        "tags": sorted(a.get("tag-names") or []),
        "resource_count": a.get("resource-count"),
    }


class Workspace(TfcResource):
    kind = "workspace"

    def __init__(self, module, pool_id):
        super(Workspace, self).__init__(module)
        self.pool_id = pool_id

    def get(self):
        return self.module.workspace(self.name)

    def view(self, resource):
        return view(resource)

    def desired(self):
        p = self.params
        out = {"name": p["name"]}
        for key in ("description", "execution_mode", "terraform_version", "auto_apply"):
            if p[key] is not None:
                out[key] = p[key]
        if p["working_directory"] is not None:
            out["working_directory"] = p["working_directory"].strip("/") or None
        if p["execution_mode"] is not None:
            out["agent_pool_id"] = self.pool_id if p["execution_mode"] == "agent" else None
        if p["tags"] is not None:
            out["tags"] = sorted(set(t.lower() for t in p["tags"]))
        return out

    def _options(self, cls, desired, keys):
        kwargs = {}
        for key in keys:
            if key in desired and key not in ("tags", "agent_pool_id"):
                kwargs[key] = desired[key] if desired[key] is not None else ("" if key == "working_directory" else None)
        if desired.get("execution_mode") == "agent":
            kwargs["agent_pool_id"] = desired["agent_pool_id"]
        return cls(**dict((k, v) for k, v in kwargs.items() if v is not None))

    def create(self, desired):
        m = self.module
        opts = self._options(WorkspaceCreateOptions, desired, list(desired))
        created = m.call(lambda: m.client.workspaces.create(m.organization, opts), action="create workspace",
                         resource=self.name, allow=(422,))
        if desired.get("tags"):
            self._tags(created.id, desired["tags"], [])

    def update(self, current, desired, changes):
        m = self.module
        fields = set(c.split(".")[0].split("[")[0] for c in changes)
        if "agent_pool_id" in fields:
            fields.add("execution_mode")
        settings = fields - {"tags"}
        if settings:
            opts = self._options(WorkspaceUpdateOptions, desired, settings)
            m.call(lambda: m.client.workspaces.update_by_id(current["id"], opts), action="update workspace",
                   resource=self.name)
        if "tags" in fields:
            now = set(view(current)["tags"])
            want = set(desired["tags"])
            self._tags(current["id"], sorted(want - now), sorted(now - want))

    def _tags(self, ws_id, add, remove):
        m = self.module
        if add:
            opts = WorkspaceAddTagsOptions(tags=[Tag(name=t) for t in add])
            m.call(lambda: m.client.workspaces.add_tags(ws_id, opts), action="tag workspace", resource=self.name)
        if remove:
            opts = WorkspaceRemoveTagsOptions(tags=[Tag(name=t) for t in remove])
            m.call(lambda: m.client.workspaces.remove_tags(ws_id, opts), action="untag workspace", resource=self.name)

    def delete(self, current):
        m = self.module
        m.call(lambda: m.client.workspaces.delete_by_id(current["id"]), action="delete workspace",
               resource=self.name, allow_404=True)


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
    if not NAME.match(p["name"]):
        module.fail_json(msg="name=%r is not a valid workspace name: use 1 to 90 letters, numbers, - and _" % p["name"])
    if p["agent_pool"] and p["execution_mode"] != "agent":
        module.fail_json(msg="agent_pool is set but execution_mode is %s: set execution_mode=agent to run on the "
                             "pool's agents, or drop agent_pool" % p["execution_mode"])
    if p["execution_mode"] == "agent" and not p["agent_pool"] and p["state"] == "present":
        module.fail_json(msg="execution_mode=agent needs agent_pool (the name or ID of an agent pool)")
    bad = [t for t in p["tags"] or [] if not TAG.match(t.lower())]
    if bad:
        module.fail_json(msg="tags %s are invalid: use lowercase letters, numbers, colons, hyphens and underscores, "
                             "starting and ending with a letter or number" % ", ".join(bad))
    pool_id = None
    if p["agent_pool"] and p["state"] == "present":
        if p["agent_pool"].startswith("apool-"):
            pool_id = p["agent_pool"]
        else:
            pool = module.agent_pool_by_name(p["agent_pool"])
            if pool is None:
                if not module.check_mode:
                    module.fail_json(msg="agent pool %s does not exist in organization %s. Fix: create it first "
                                         "(skyforge.prefect_platform.tfc_agent_pool)." % (p["agent_pool"],
                                                                                          module.organization))
                pool_id = "(agent pool %s, created by an earlier task)" % p["agent_pool"]
            else:
                pool_id = pool.id
    module.ensure(Workspace(module, pool_id))


if __name__ == "__main__":
    main()
