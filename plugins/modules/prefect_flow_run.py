#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_flow_run
short_description: Start a flow run of a Prefect deployment and follow it to a final state
version_added: 0.1.0
description:
  - Creates a flow run of deployment O(deployment) of flow O(flow_name) and, with O(wait), follows it until it
    reaches a final state or O(timeout) passes.
  - A run that ends in any state other than O(expected_state) fails the task with the state's message and the
    run's id, so a smoke test says why it failed.
  - Every call starts a new run, so the task always reports a change; in check mode nothing is started.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  flow_name:
    description: The flow's name.
    type: str
    required: true
  deployment:
    description: The deployment's name.
    type: str
    required: true
  parameters:
    description: Flow parameters for this run.
    type: dict
    default: {}
  wait:
    description: Whether to follow the run to a final state.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for a final state.
    type: int
    default: 600
  expected_state:
    description: The final state type the run must reach.
    type: str
    default: COMPLETED
"""

EXAMPLES = r"""
- name: Smoke flow run
  skyforge.prefect_platform.prefect_flow_run:
    api_url: https://prefect.example.com/api
    flow_name: platform-smoke
    deployment: smoke
    timeout: 900
"""

RETURN = r"""
flow_run:
  description: The flow run's C(id), C(name), C(state_type), C(state_name) and C(state_message).
  returned: unless in check mode
  type: dict
"""

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import WaitTimeout, wait_for
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def slim(run):
    state = run.get("state") or {}
    return {"id": run.get("id"), "name": run.get("name"), "state_type": state.get("type"),
            "state_name": state.get("name"), "state_message": state.get("message"),
            "work_pool_name": run.get("work_pool_name")}


def main():
    module = PrefectModule(
        argument_spec=dict(
            flow_name=dict(type="str", required=True),
            deployment=dict(type="str", required=True),
            parameters=dict(type="dict", default={}),
            wait=dict(type="bool", default=True),
            timeout=dict(type="int", default=600),
            expected_state=dict(type="str", default="COMPLETED"),
        ),
    )
    p = module.params
    path = "/deployments/name/%s/%s" % (quote(p["flow_name"], safe=""), quote(p["deployment"], safe=""))
    status, dep = module.request("GET", path, allow=(404,))
    if status == 404:
        module.fail_json(msg="deployment %s/%s does not exist: create it with prefect_deployment first"
                             % (p["flow_name"], p["deployment"]))
    if module.check_mode:
        module.exit_json(changed=True)
    run = module.request("POST", "/deployments/%s/create_flow_run" % dep["id"], {"parameters": p["parameters"]})[1]
    if not p["wait"]:
        module.exit_json(changed=True, flow_run=slim(run))
    run_id = run["id"]
    try:
        run = wait_for(lambda: module.request("GET", "/flow_runs/%s" % run_id)[1],
                       lambda run: (run.get("state") or {}).get("type") in FINAL, p["timeout"],
                       lambda run: "flow run %s (still %s)" % (run_id, (run.get("state") or {}).get("name")),
                       hint="check that a worker is online in work pool %s and its logs" % dep.get("work_pool_name"),
                       # A run's state is one small GET: notice its end within a second, not up to 5 s late.
                       maximum=1.0, initial=run)
    except WaitTimeout as exc:
        module.fail_json(msg=exc.msg, flow_run=slim(exc.last))
    out = slim(run)
    if out["state_type"] != p["expected_state"]:
        module.fail_json(msg="flow run %s ended %s, not %s: %s" % (run["id"], out["state_name"], p["expected_state"],
                                                                   out["state_message"] or "no message"),
                         flow_run=out)
    module.exit_json(changed=True, flow_run=out)


if __name__ == "__main__":
    one_exit(main)()
