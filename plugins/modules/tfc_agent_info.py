#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_agent_info
short_description: List the agents of an HCP Terraform agent pool and their status
version_added: 0.1.0
description:
  - Lists an agent pool's agents (idle, busy, unknown, errored, exited).
  - With O(wait_for_idle), waits until at least that many agents are idle, for example after starting
    the machines that run them.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes.info_module
options:
  agent_pool:
    description: Name or ID (C(apool-...)) of the agent pool.
    type: str
    required: true
  wait_for_idle:
    description: Wait until at least this many agents are idle (V(0) does not wait).
    type: int
    default: 0
  timeout:
    description: Seconds to wait for O(wait_for_idle) agents before failing.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Wait for the pool's agent to connect
  skyforge.prefect_platform.tfc_agent_info:
    organization: skyforge
    agent_pool: gcp-agents
    wait_for_idle: 1
    timeout: 300
"""

RETURN = r"""
agents:
  description: The pool's agents.
  returned: success
  type: list
  elements: dict
  sample: [{"id": "agent-A726QeosTCpCumAs", "name": "gcp-agent-1", "status": "idle",
            "ip_address": "34.1.2.3", "last_ping_at": "2026-01-01T00:00:00.000Z"}]
idle:
  description: How many agents are idle.
  returned: success
  type: int
agent_pool_id:
  description: The pool's ID.
  returned: success
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import WaitTimeout, wait_for
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule


def main():
    module = TfcModule(
        argument_spec=dict(
            agent_pool=dict(type="str", required=True),
            wait_for_idle=dict(type="int", default=0),
            timeout=dict(type="int", default=600),
        ),
    )
    p = module.params
    if p["wait_for_idle"] < 0 or p["timeout"] < 0:
        module.fail_json(msg="wait_for_idle and timeout must be zero or positive")
    pool_id = p["agent_pool"]
    if not pool_id.startswith("apool-"):
        pool = module.agent_pool_by_name(pool_id)
        if pool is None:
            module.fail_json(msg="agent pool %s does not exist in organization %s. Fix: create it first "
                                 "(skyforge.prefect_platform.tfc_agent_pool)." % (pool_id, module.organization))
        pool_id = pool.id

    def read():
        # Raw JSON:API: pytfe folds every status but idle/busy into "unknown".
        items = module.jsonapi_list("/api/v2/agent-pools/%s/agents" % pool_id, action="list agents of",
                                    resource=pool_id)
        return [{"id": a["id"], "name": a["attributes"].get("name"), "status": a["attributes"].get("status"),
                 "ip_address": a["attributes"].get("ip-address"), "last_ping_at": a["attributes"].get("last-ping-at")}
                for a in items]

    def idle(agents):
        return sum(1 for a in agents if a["status"] == "idle")

    def short_of(agents):
        counts = {}
        for a in agents:
            counts[a["status"]] = counts.get(a["status"], 0) + 1
        return "agent pool %s to have %d idle agent(s); it has %d idle agent(s) (agents by status: %s)" % (
            p["agent_pool"], p["wait_for_idle"], idle(agents), counts or "none")

    try:
        agents = wait_for(read, lambda agents: idle(agents) >= p["wait_for_idle"], p["timeout"], short_of,
                          hint="check the agent hosts are running with a valid token of this pool", first=0.25)
    except WaitTimeout as exc:
        module.fail_json(msg="HCP Terraform: %s" % exc.msg, agents=exc.last)
    module.exit_json(changed=False, agents=agents, idle=idle(agents), agent_pool_id=pool_id)


if __name__ == "__main__":
    one_exit(main)()
