# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An API-driven workspace and its settings: tfc_workspace manages one, tfc_component_runs one per component."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import InputError
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcResource, rel_id

try:
    from pytfe.models import Tag, WorkspaceAddTagsOptions, WorkspaceCreateOptions, WorkspaceRemoveTagsOptions
    from pytfe.models import WorkspaceUpdateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK

NAME = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TAG = re.compile(r"^[a-z0-9](?:[a-z0-9:_-]{0,253}[a-z0-9])?$")
# The settings a caller may manage; one left as None is not managed.
SETTINGS = ("description", "execution_mode", "agent_pool", "terraform_version", "working_directory", "auto_apply",
            "tags")


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


def settings_problem(name, settings, state="present"):
    """Why the workspace `name` with these settings would be refused, as the message to fail with; None if fine."""
    if not NAME.match(name or ""):
        return "name=%r is not a valid workspace name: use 1 to 90 letters, numbers, - and _" % name
    if settings.get("agent_pool") and settings.get("execution_mode") != "agent":
        return ("agent_pool is set but execution_mode is %s: set execution_mode=agent to run on the pool's agents, "
                "or drop agent_pool" % settings.get("execution_mode"))
    if settings.get("execution_mode") == "agent" and not settings.get("agent_pool") and state == "present":
        return "execution_mode=agent needs agent_pool (the name or ID of an agent pool)"
    bad = [t for t in settings.get("tags") or [] if not TAG.match(t.lower())]
    if bad:
        return ("tags %s are invalid: use lowercase letters, numbers, colons, hyphens and underscores, starting and "
                "ending with a letter or number" % ", ".join(bad))
    return None


def pool_id(module, agent_pool, cache=None):
    """The ID of the agent pool named (or given by ID) `agent_pool`; `cache` keeps one list per module run.

    In check mode a pool that does not exist yet stands in as a placeholder: an earlier task would create it.
    """
    if not agent_pool:
        return None
    if agent_pool.startswith("apool-"):
        return agent_pool
    cache = {} if cache is None else cache
    if agent_pool not in cache:
        pool = module.agent_pool_by_name(agent_pool)
        if pool is None:
            if not module.check_mode:
                raise InputError("agent pool %s does not exist in organization %s" % (agent_pool, module.organization),
                                 "create it first (skyforge.prefect_platform.tfc_agent_pool)")
            cache[agent_pool] = "(agent pool %s, created by an earlier task)" % agent_pool
        else:
            cache[agent_pool] = pool.id
    return cache[agent_pool]


class Workspace(TfcResource):
    """The workspace `settings["name"]`; `settings` holds SETTINGS (None: not managed), the module's params by
    default."""

    kind = "workspace"

    def __init__(self, module, pool_id, settings=None):  # pylint: disable=redefined-outer-name
        super(Workspace, self).__init__(module)
        self.pool_id = pool_id
        if settings is not None:
            self.params = settings

    def get(self):
        return self.module.workspace(self.name)

    def view(self, resource):
        return view(resource)

    def desired(self):
        p = self.params
        out = {"name": p["name"]}
        for key in ("description", "execution_mode", "terraform_version", "auto_apply"):
            if p.get(key) is not None:
                out[key] = p[key]
        if p.get("working_directory") is not None:
            out["working_directory"] = p["working_directory"].strip("/") or None
        if p.get("execution_mode") is not None:
            out["agent_pool_id"] = self.pool_id if p["execution_mode"] == "agent" else None
        if p.get("tags") is not None:
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
