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
  - With O(flow_run_id) instead, follows a run started earlier (by this module with O(wait=false)), so other tasks
    can run while the run is scheduled, submitted and run.
  - A run that ends in any state other than O(expected_state) fails the task with the state's message and the
    run's id, so a smoke test says why it failed.
  - Every call that starts a run reports a change; following one reports none. In check mode nothing is started.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  flow_name:
    description: The flow's name. Required with O(deployment).
    type: str
  deployment:
    description: The deployment's name. One of O(deployment) and O(flow_run_id) is required.
    type: str
  flow_run_id:
    description:
      - The id of a run to follow instead of starting one (the C(id) in RV(flow_run) of a task with O(wait=false)).
      - O(parameters) does not apply.
    type: str
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

- name: Start a smoke run, check other things while it runs, then follow it
  skyforge.prefect_platform.prefect_flow_run:
    api_url: https://prefect.example.com/api
    flow_name: platform-smoke
    deployment: smoke
    wait: false
  register: smoke

- name: The smoke run reaches Completed
  skyforge.prefect_platform.prefect_flow_run:
    api_url: https://prefect.example.com/api
    flow_run_id: "{{ smoke.flow_run.id }}"
    timeout: 900
"""

RETURN = r"""
flow_run:
  description: The flow run's C(id), C(name), C(state_type), C(state_name) and C(state_message).
  returned: unless check mode skipped starting the run
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
            flow_name=dict(type="str"),
            deployment=dict(type="str"),
            flow_run_id=dict(type="str"),
            parameters=dict(type="dict", default={}),
            wait=dict(type="bool", default=True),
            timeout=dict(type="int", default=600),
            expected_state=dict(type="str", default="COMPLETED"),
        ),
        required_one_of=[("deployment", "flow_run_id")],
        mutually_exclusive=[("deployment", "flow_run_id")],
        required_together=[("flow_name", "deployment")],
    )
    p = module.params
    started = not p["flow_run_id"]
    if started:
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
        pool = dep.get("work_pool_name")
    else:
        status, run = module.request("GET", "/flow_runs/%s" % quote(p["flow_run_id"], safe=""), allow=(404,))
        if status == 404:
            module.fail_json(msg="flow run %s does not exist: pass flow_run.id of a prefect_flow_run task that ran "
                                 "with wait=false" % p["flow_run_id"])
        if module.check_mode or not p["wait"]:
            module.exit_json(changed=False, flow_run=slim(run))
        pool = run.get("work_pool_name")
    run_id = run["id"]
    try:
        run = wait_for(lambda: module.request("GET", "/flow_runs/%s" % run_id)[1],
                       lambda run: (run.get("state") or {}).get("type") in FINAL, p["timeout"],
                       lambda run: "flow run %s (still %s)" % (run_id, (run.get("state") or {}).get("name")),
                       hint="check that a worker is online in work pool %s and its logs" % pool,
                       # A run's state is one small GET: notice its end within a second, not up to 5 s late.
                       maximum=1.0, initial=run)
    except WaitTimeout as exc:
        module.fail_json(msg=exc.msg, flow_run=slim(exc.last))
    out = slim(run)
    if out["state_type"] != p["expected_state"]:
        module.fail_json(msg="flow run %s ended %s, not %s: %s" % (run["id"], out["state_name"], p["expected_state"],
                                                                   out["state_message"] or "no message"),
                         flow_run=out)
    module.exit_json(changed=started, flow_run=out)


if __name__ == "__main__":
    one_exit(main)()
