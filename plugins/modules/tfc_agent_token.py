#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_agent_token
short_description: Manage an HCP Terraform agent token
version_added: 0.1.0
description:
  - Creates an agent token of an agent pool, identified by its description. HCP Terraform shows a
    token's secret once, at creation, so this module returns it only from the run that created it;
    later runs find the token by description and report no change, without a secret.
  - O(rotate=true) creates a new token and then revokes the old ones of the same description; agents
    still using an old token exit.
  - Set C(no_log=true) on the task and store RV(token) (for example in Secret Manager) in the same play.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  agent_pool:
    description: Name or ID (C(apool-...)) of the agent pool.
    type: str
    required: true
  description:
    description: The token's description; it identifies the token for idempotence.
    type: str
    required: true
  rotate:
    description: Create a new token and revoke the existing ones with this description.
    type: bool
    default: false
  state:
    description: Whether the token should exist; V(absent) revokes every token with this description.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Agent token for the GCP agents (secret returned once)
  skyforge.prefect_platform.tfc_agent_token:
    organization: skyforge
    agent_pool: gcp-agents
    description: gcp-agents-mig
  register: agent_token
  no_log: true
"""

RETURN = r"""
token:
  description:
    - The secret token. Only returned when this run created it (first creation or O(rotate)); null
      otherwise.
  returned: success
  type: str
token_id:
  description: The token's ID (C(at-...)), null in check mode before creation.
  returned: success
  type: str
created:
  description: Whether a new token was created (its secret is in RV(token)).
  returned: success
  type: bool
revoked:
  description: IDs of the tokens revoked (rotation or O(state=absent)).
  returned: success
  type: list
  elements: str
agent_token:
  description:
    - The description and the IDs of the tokens with it (never a secret); empty when O(state=absent).
    - A token about to be created shows as V((new)) in check mode.
  returned: success
  type: dict
  sample: {"description": "gcp-agents-mig", "token_ids": ["at-aBcD1234"]}
changes:
  description: V([token_ids]) when O(rotate) replaced the existing tokens.
  returned: when existing tokens were rotated
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule, TfcResource

try:
    from pytfe.models import AgentTokenCreateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK


class AgentTokens(TfcResource):
    """The tokens of a pool with one description, seen as {description, token_ids}; present means at least one.

    A token's secret exists only in the create response: it is kept in `new` for the result, never in the view.
    """

    kind = "agent_token"
    returns_resource = True

    def __init__(self, module, pool_id):
        super(AgentTokens, self).__init__(module)
        self.pool_id = pool_id
        self.found = None
        self.new = None

    @property
    def name(self):
        return self.params["description"]

    def get(self):
        m = self.module
        tokens = [t for t in m.call(lambda: list(m.client.agent_tokens.list(self.pool_id)),
                                    action="list agent tokens of", resource=self.pool_id)
                  if t.description == self.name]
        if self.found is None:
            self.found = tokens
        return tokens or None

    def view(self, resource):
        if resource is None or isinstance(resource, dict):
            return resource
        return {"description": self.name, "token_ids": sorted(t.id for t in resource)}

    def desired(self):
        return {"description": self.name}

    def changes(self, desired, current):
        return ["token_ids"] if self.params["rotate"] else []

    def predict(self, current, desired):
        return dict(desired, token_ids=["(new)"])

    def create(self, desired):
        m = self.module
        opts = AgentTokenCreateOptions(description=self.name)
        self.new = m.call(lambda: m.client.agent_tokens.create(self.pool_id, opts), action="create agent token for",
                          resource=self.pool_id)
        return [self.new]

    def update(self, current, desired, changes):
        created = self.create(desired)
        self.delete(current)
        return created

    def delete(self, current):
        for tok in current:
            self.module.call(lambda: self.module.client.agent_tokens.delete(tok.id), action="revoke agent token",
                             resource=tok.id, allow_404=True)

    def outcome(self, _after):
        """The result's token fields: what was (or would be) created and revoked."""
        p, found = self.params, self.found or []
        create = p["state"] == "present" and (not found or p["rotate"])
        revoked = found if (p["state"] == "absent" or (p["rotate"] and found)) else []
        return dict(token=self.new.token if self.new else None,
                    token_id=self.new.id if self.new else (found[-1].id if found and not create else None),
                    created=create, revoked=[t.id for t in revoked])


def main():
    module = TfcModule(
        argument_spec=dict(
            agent_pool=dict(type="str", required=True),
            description=dict(type="str", required=True),
            rotate=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    if not p["description"].strip():
        module.fail_json(msg="description must not be empty: it identifies the token")
    pool_id = p["agent_pool"]
    if not pool_id.startswith("apool-"):
        pool = module.agent_pool_by_name(pool_id)
        if pool is None:
            if module.check_mode and p["state"] == "present":
                module.exit_json(changed=True, token=None, token_id=None, created=True, revoked=[],
                                 diff={"before": {}, "after": {"description": p["description"]}})
            if p["state"] == "absent":
                module.exit_json(changed=False, token=None, token_id=None, created=False, revoked=[])
            module.fail_json(msg="agent pool %s does not exist in organization %s. Fix: create it first "
                                 "(skyforge.prefect_platform.tfc_agent_pool)." % (pool_id, module.organization))
        pool_id = pool.id
    tokens = AgentTokens(module, pool_id)
    module.ensure(tokens, extra=tokens.outcome)


if __name__ == "__main__":
    one_exit(main)()
