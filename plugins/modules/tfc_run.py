#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_run
short_description: Upload a Terraform configuration to a workspace and run it
version_added: 0.1.0
description:
  - Packs O(config_dir) as a tar.gz configuration version, uploads it, queues a run and follows it
    through the run states (plan, confirmation, apply) until it ends or O(timeout) passes.
  - With O(apply=true) a run that waits for confirmation (C(actions.is-confirmable)) is applied;
    with O(apply=false) the module stops there and reports the run as C(planned).
  - Idempotence. The run message carries the SHA-256 of the configuration files and a digest of the
    workspace variables' versions. When the workspace's latest applied (or planned with no changes)
    run carries the same digests, nothing is uploaded and the task reports no change, unless O(force=true).
    A run with the same digests that is still in progress is followed instead of queueing another.
  - A run that errors, is discarded or canceled fails the task with its status, the error from its
    log and its URL.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  workspace:
    description:
      - The workspace name.
      - At least one of O(workspace) and O(workspace_id) is required.
    type: str
  workspace_id:
    description:
      - The workspace ID (C(ws-...)), for example from RV(skyforge.prefect_platform.tfc_workspace#module:workspace.id).
      - With O(workspace) also set (the same workspace), the workspace is not read unless a run is queued; the
        name then only labels run URLs and messages. With O(workspace_id) alone it is read by ID.
    type: str
  variables_digest:
    description:
      - The digest of the workspace's variables that
        RV(skyforge.prefect_platform.tfc_workspace_variables#module:variables_digest) returned in the same play,
        which saves listing the variables again.
      - A value that is not such a digest (for example one masked by C(no_log)) is ignored and the variables
        are listed.
    type: str
  config_dir:
    description: Directory holding the configuration (its files are uploaded; C(.terraform) and C(.git) are skipped).
    type: path
    required: true
  run_message:
    description: A message for the run; the configuration digests are appended to it.
    type: str
    default: Queued by skyforge.prefect_platform.tfc_run
  apply:
    description: Apply the run when it waits for confirmation.
    type: bool
    default: true
  plan_only:
    description: Queue a speculative, plan-only run (never applied, never skipped as already applied).
    type: bool
    default: false
  is_destroy:
    description: Plan the destruction of every resource of the workspace.
    type: bool
    default: false
  force:
    description: Queue a run even when the same configuration was already applied.
    type: bool
    default: false
  timeout:
    description: Seconds to follow the run before failing (the run goes on; a re-run follows it).
    type: int
    default: 1800
"""

EXAMPLES = r"""
- name: Apply the agent's infrastructure
  skyforge.prefect_platform.tfc_run:
    organization: skyforge
    workspace: prefect-infra
    config_dir: "{{ role_path }}/files/terraform"
    timeout: 1200
  register: infra_run
"""

RETURN = r"""
run:
  description: The run followed (the last applied one when skipped).
  returned: success
  type: dict
  sample: {"id": "run-CZcmD7eagjhyX0vN", "status": "applied", "has_changes": true, "plan_only": false,
           "url": "https://app.terraform.io/app/skyforge/workspaces/prefect-infra/runs/run-CZcmD7eagjhyX0vN"}
config_sha256:
  description: SHA-256 over the configuration files (path and content), as recorded in the run message.
  returned: success
  type: str
skipped_reason:
  description: Why no run was queued (the configuration and variables were already applied).
  returned: when nothing was queued
  type: str
"""

import os

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc_runs import (
    Runner,
    check_execution_mode,
    collect,
    config_problem,
    digest,
    run_changed,
)


def main():
    module = TfcModule(
        argument_spec=dict(
            workspace=dict(type="str"),
            workspace_id=dict(type="str"),
            variables_digest=dict(type="str"),
            config_dir=dict(type="path", required=True),
            run_message=dict(type="str", default="Queued by skyforge.prefect_platform.tfc_run"),
            apply=dict(type="bool", default=True),
            plan_only=dict(type="bool", default=False),
            is_destroy=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            timeout=dict(type="int", default=1800),
        ),
        required_one_of=[("workspace", "workspace_id")],
    )
    p = module.params
    files = collect(p["config_dir"]) if os.path.isdir(p["config_dir"]) else []
    problem = config_problem(p["config_dir"], files)
    if problem:
        module.fail_json(msg=problem)
    if p["plan_only"] and p["is_destroy"]:
        module.fail_json(msg="plan_only and is_destroy together would only preview a destroy: use one of them")
    config_sha = digest(files)
    name, ws_id, ws = p["workspace"], p["workspace_id"], None
    if ws_id is None:
        ws = module.workspace(name)
        if ws is None:
            if module.check_mode:
                module.exit_json(changed=True, config_sha256=config_sha, run=None)
            module.missing_workspace(name)
        ws_id = ws["id"]
    elif name is None:
        # Run URLs name the workspace.
        ws = module.workspace_by_id(ws_id)
        if ws is None:
            module.missing_workspace(ws_id)
        name = ws["attributes"]["name"]
    if ws is not None:
        check_execution_mode(module, ws, name)
    runner = Runner(module, ws_id, name, given_digest=p["variables_digest"])
    mark = runner.mark(config_sha, p["is_destroy"])
    if not p["plan_only"] and not p["force"]:
        effective, in_flight = runner.find_existing(mark)
        if effective is not None:
            module.exit_json(changed=False, run=runner.view(effective), config_sha256=config_sha,
                             skipped_reason="run %s already applied this configuration and these variables"
                             % effective["id"])
        if in_flight is not None and not module.check_mode:
            done = runner.follow(in_flight["id"])
            module.exit_json(changed=True, run=runner.view(done), config_sha256=config_sha, followed_existing=True)
    if ws is None:
        # Given both name and ID, the workspace is read only now that a run is due.
        ws = module.workspace_by_id(ws_id)
        if ws is None:
            module.missing_workspace(ws_id)
        if ws["attributes"]["name"] != name:
            module.fail_json(msg="workspace_id %s is workspace %s, not %s. Fix: pass the ID and name of the same "
                                 "workspace." % (ws_id, ws["attributes"]["name"], name))
        check_execution_mode(module, ws, name)
    if module.check_mode:
        module.exit_json(changed=True, config_sha256=config_sha, run=None,
                         diff={"before": {}, "after": {"config_sha256": config_sha, "workspace": name}})
    run_id = runner.queue(files, p["run_message"], mark, plan_only=p["plan_only"], is_destroy=p["is_destroy"])
    view = runner.view(runner.follow(run_id))
    module.exit_json(changed=run_changed(view), run=view, config_sha256=config_sha)


if __name__ == "__main__":
    one_exit(main)()
