#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_component_runs
short_description: Apply a graph of Terraform components, independent ones in parallel
version_added: 0.3.0
description:
  - Each entry of O(components) is a Terraform configuration applied in its own workspace, after every
    component it names in O(components[].depends_on). Components whose dependencies are applied start at once, up
    to O(parallelism) runs at a time; one process follows all of their runs.
  - For each component, in order, the module creates or updates its workspace when
    O(components[].workspace_settings) is set (the rules of M(skyforge.prefect_platform.tfc_workspace); otherwise
    the workspace must exist), brings the workspace's variables to O(components[].variables) (the rules of
    M(skyforge.prefect_platform.tfc_workspace_variables), without purge), then runs the configuration
    exactly as M(skyforge.prefect_platform.tfc_run) does (skipped when the same configuration and variables were
    already applied; a run in flight with them is followed), then reads the workspace's current outputs.
  - A variable with O(components[].variables[].value_from=COMPONENT.OUTPUT) takes that output of a component it
    depends on, read after that component was applied. In check mode, an output not produced yet stands in as a
    placeholder.
  - A run that fails fails its component, naming it and the run URL; the components that depend on it (directly or
    not) are not started; independent components go on to the end. The task then fails listing both.
  - A dependency cycle, a dependency on an unknown component or invalid workspace settings fail before any API call.
  - A component's workspace is created or updated only when the component starts, so the first runs are queued
    before the workspaces of later components exist.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  components:
    description: The components.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The component's name (unique), as O(components[].depends_on) and value_from name it.
        type: str
        required: true
      workspace:
        description: The name of the component's workspace.
        type: str
        required: true
      workspace_id:
        description:
          - The workspace's ID (C(ws-...)), for example from
            RV(skyforge.prefect_platform.tfc_workspace#module:workspace.id); the workspace is read by name when unset.
          - In check mode, a workspace that does not exist yet (no ID, not found) counts as about to be created.
          - Not with O(components[].workspace_settings), which reads the workspace by name to compare its settings.
        type: str
      workspace_settings:
        description:
          - When set, the workspace is created if missing and brought to these settings when the component starts,
            as M(skyforge.prefect_platform.tfc_workspace) does; settings left unset are not managed.
          - When unset, the workspace must exist already.
        type: dict
        suboptions:
          description:
            description: A description of the workspace.
            type: str
          execution_mode:
            description:
              - Where runs execute. V(agent) runs them on the agents of
                O(components[].workspace_settings.agent_pool).
            type: str
            choices: [remote, agent]
          agent_pool:
            description:
              - Name or ID (C(apool-...)) of the agent pool, required when
                O(components[].workspace_settings.execution_mode=agent). A name is looked up once for all components.
            type: str
          terraform_version:
            description: The Terraform version or constraint runs use (for example C(1.9.8) or C(~> 1.9)).
            type: str
          working_directory:
            description: The directory, relative to the configuration's root, that Terraform runs in.
            type: str
          auto_apply:
            description:
              - Whether runs apply automatically after a successful plan (the module confirms its runs either way).
            type: bool
          tags:
            description: The workspace's tags; when set, tags not listed are removed.
            type: list
            elements: str
      config_dir:
        description: Directory holding the component's Terraform configuration.
        type: path
        required: true
      depends_on:
        description: Names of the components that must be applied first.
        type: list
        elements: str
        default: []
      variables:
        description: The variables the workspace should have (others are left alone).
        type: list
        elements: dict
        default: []
        suboptions:
          key:
            description: The variable name.
            type: str
            required: true
          value:
            description: The value (a string; with O(components[].variables[].hcl=true) an HCL expression). Never logged.
            type: str
          value_from:
            description: C(COMPONENT.OUTPUT), an output of a component in O(components[].depends_on), instead of a value.
            type: str
          category:
            description: A Terraform input variable or a shell environment variable of the run.
            type: str
            choices: [terraform, env]
            default: terraform
          hcl:
            description: Whether the value is HCL. An output that is not a string is always sent as HCL (JSON).
            type: bool
            default: false
          sensitive:
            description: Whether the value is write-only.
            type: bool
            default: false
          description:
            description: A description of the variable.
            type: str
  parallelism:
    description:
      - At most this many components are in progress (their runs queued or running) at a time.
      - Keep it at most the number of agents of an agent pool (each agent runs one job at a time) and within the
        organization's concurrent run limit; runs beyond those wait in HCP Terraform's queue.
    type: int
    default: 4
  run_message:
    description: A message for the runs; the component's name and the configuration digests are appended to it.
    type: str
    default: Applied by skyforge.prefect_platform.tfc_component_runs
  timeout:
    description: Seconds to follow each run before failing its component (the run goes on; a re-run follows it).
    type: int
    default: 1800
"""

EXAMPLES = r"""
- name: A bucket, then a registry named after it
  skyforge.prefect_platform.tfc_component_runs:
    organization: skyforge
    parallelism: 4
    components:
      - name: bucket
        workspace: prefect-bucket
        workspace_settings:
          execution_mode: agent
          agent_pool: gcp-agents
          terraform_version: 1.9.8
          tags: [prefect]
        config_dir: "{{ playbook_dir }}/terraform/gcs_bucket"
        variables:
          - {key: bucket_name, value: acme-flow-results}
      - name: registry
        workspace: prefect-registry
        workspace_settings: {execution_mode: agent, agent_pool: gcp-agents}
        config_dir: "{{ playbook_dir }}/terraform/artifact_registry"
        depends_on: [bucket]
        variables:
          - {key: repository_id, value_from: bucket.bucket_name}
  register: applied

- name: The bucket's name, as applied
  ansible.builtin.debug:
    msg: "{{ applied.outputs.bucket.bucket_name }}"
"""

RETURN = r"""
outputs:
  description:
    - "The current outputs of each component's workspace after its run, C({component: {output: value}})."
    - Sensitive outputs are null; a component that was not applied has none.
  returned: always
  type: dict
  sample: {"bucket": {"bucket_name": "acme-flow-results", "bucket_url": "gs://acme-flow-results"}}
components:
  description: What happened to each component.
  returned: always
  type: dict
  sample: {"bucket": {"status": "unchanged", "changed": false, "workspace": "prefect-bucket",
                      "run": {"id": "run-CZcmD7eagjhyX0vN", "status": "applied",
                              "url": "https://app.terraform.io/app/skyforge/workspaces/prefect-bucket/runs/run-CZcmD7eagjhyX0vN"},
                      "workspace_id": "ws-6jrRyVDv1J8zQMB5", "workspace_status": "unchanged",
                      "variables": {"created": [], "updated": {}}}}
  contains:
    status:
      description:
        - V(unchanged) (this configuration and these variables were applied already), V(applied),
          V(planned_and_finished) (a run found nothing to change), V(would_run) (check mode), V(failed), or
          V(not_started) (a component it depends on failed).
      type: str
    run:
      description: The run followed, or the one that applied this configuration already.
      type: dict
    workspace_id:
      description: The workspace's ID (null in check mode when the workspace is about to be created).
      type: str
    workspace_status:
      description:
        - With O(components[].workspace_settings), V(created), V(updated) or V(unchanged) (predicted in check mode);
          V(updated) also lists the settings in RV(components.workspace_changes).
        - Absent for a component that was not started.
      type: str
    workspace_changes:
      description: The workspace settings that differed and were updated.
      type: list
      elements: str
    error:
      description: Why the component failed or was not started.
      type: str
order:
  description: The components in the order they were started.
  returned: always
  type: list
  elements: str
"""

import json

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import Deadline, wait_for
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.dependency_graph import dependency_cycles
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import (
    TfcModule,
    mask_only_sensitive,
    set_variables,
    variable_label,
    variable_problem,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc_runs import (
    RunFailed,
    Runner,
    collect,
    config_problem,
    digest,
    run_changed,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc_workspaces import (
    Workspace,
    pool_id,
    settings_problem,
)

# A component in one of these states has its outputs read: its dependents may start.
DONE = ("unchanged", "applied", "planned_and_finished", "planned", "would_run")
VARIABLE = dict(
    key=dict(type="str", required=True, no_log=False),
    value=dict(type="str", no_log=True),
    value_from=dict(type="str"),
    category=dict(type="str", choices=["terraform", "env"], default="terraform"),
    hcl=dict(type="bool", default=False),
    sensitive=dict(type="bool", default=False),
    description=dict(type="str"),
)
WORKSPACE_SETTINGS = dict(
    description=dict(type="str"),
    execution_mode=dict(type="str", choices=["remote", "agent"]),
    agent_pool=dict(type="str"),
    terraform_version=dict(type="str"),
    working_directory=dict(type="str"),
    auto_apply=dict(type="bool"),
    tags=dict(type="list", elements="str"),
)
COMPONENT = dict(
    name=dict(type="str", required=True),
    workspace=dict(type="str", required=True),
    workspace_id=dict(type="str"),
    workspace_settings=dict(type="dict", options=WORKSPACE_SETTINGS),
    config_dir=dict(type="path", required=True),
    depends_on=dict(type="list", elements="str", default=[]),
    variables=dict(type="list", elements="dict", default=[], options=VARIABLE),
)


def graph_problems(components):
    """Unknown, duplicate and self dependencies and cycles, each naming the components; [] when the graph is sound."""
    out, names = [], [c["name"] for c in components]
    for name in set(n for n in names if names.count(n) > 1):
        out.append("component %s is listed twice" % name)
    deps = dict((c["name"], c["depends_on"]) for c in components)
    for comp in components:
        for dep in comp["depends_on"]:
            if dep == comp["name"]:
                out.append("component %s depends on itself" % dep)
            elif dep not in deps:
                out.append("component %s depends on unknown component %s (known: %s)"
                           % (comp["name"], dep, ", ".join(names)))
    for cycle in dependency_cycles(deps, names):
        out.append("dependency cycle %s" % " -> ".join(cycle))
    return out


def variable_specs(component, outputs, check_mode):
    """The component's variables with value_from resolved (tfc_workspace_variables' form), and the missing outputs."""
    specs, missing = [], []
    for var in component["variables"]:
        value, hcl = var["value"], var["hcl"]
        if var["value_from"]:
            name, _sep, output = var["value_from"].partition(".")
            produced = outputs.get(name) or {}
            if output in produced:
                value = produced[output]
            elif check_mode:
                value = "(output %s after apply)" % var["value_from"]
            else:
                missing.append(var["value_from"])
                continue
            if not isinstance(value, str):
                # JSON is valid HCL for numbers, booleans, lists and maps.
                value, hcl = json.dumps(value), True
        elif value is None:
            value = ""
        specs.append({"key": var["key"], "value": value, "category": var["category"], "hcl": hcl,
                      "sensitive": var["sensitive"], "description": var["description"]})
    return specs, missing


class Graph:
    def __init__(self, module):
        self.m = module
        p = module.params
        self.components = dict((c["name"], c) for c in p["components"])
        self.pending = [c["name"] for c in p["components"]]
        self.active = {}
        self.results = {}
        self.outputs = {}
        self.order = []
        self.diff = {"before": {}, "after": {}}
        self.pools = {}
        self.opts = {"apply": True, "plan_only": False, "timeout": p["timeout"],
                     "request_timeout": p["request_timeout"]}

    # ---- one component -------------------------------------------------------------------------------------
    def read_outputs(self, ws_id, label):
        items = self.m.call(lambda: list(self.m.client.state_version_outputs.read_current(ws_id)),
                            action="read current outputs of", resource=label, allow_404=True)
        return dict((o.name, None if o.sensitive else o.value) for o in items or [])

    def resolve_pools(self):
        """Every agent pool named in workspace settings, before any write: one list of the pools at most."""
        for comp in self.components.values():
            if comp["workspace_settings"] is not None:
                pool_id(self.m, comp["workspace_settings"]["agent_pool"], self.pools)

    def ensure_workspace(self, name):
        """Create the workspace or bring it to its settings; its ID (None in check mode before it exists)."""
        m, comp, result = self.m, self.components[name], self.results[name]
        settings = dict(comp["workspace_settings"], name=comp["workspace"])
        resource = Workspace(m, pool_id(m, settings["agent_pool"], self.pools), settings)
        outcome, after = m.reconcile(resource)
        if outcome["diff"]["before"]:
            result["workspace_status"] = "updated" if outcome["changed"] else "unchanged"
        else:
            result["workspace_status"] = "created"
        if outcome.get("changes"):
            result["workspace_changes"] = outcome["changes"]
        if outcome["changed"]:
            result["changed"] = True
            self.diff["before"].setdefault(name, {})["workspace"] = outcome["diff"]["before"]
            self.diff["after"].setdefault(name, {})["workspace"] = outcome["diff"]["after"]
        return (after or {}).get("id")

    def start(self, name):
        m, comp = self.m, self.components[name]
        self.order.append(name)
        label = comp["workspace"]
        result = self.results[name] = {"workspace": label, "status": None, "changed": False, "run": None}
        files = collect(comp["config_dir"])
        config_sha = digest(files)
        if comp["workspace_settings"] is not None:
            ws_id = self.ensure_workspace(name)
        else:
            ws_id = comp["workspace_id"]
            if not ws_id:
                ws = m.workspace(label)
                ws_id = ws["id"] if ws else None
                if ws_id is None and not m.check_mode:
                    m.missing_workspace(label)
        result["workspace_id"] = ws_id
        specs, missing = variable_specs(comp, self.outputs, m.check_mode)
        if missing:
            result.update(status="failed", error="value_from names outputs that were not produced: %s. Fix the "
                          "output name, or add the output to that component's configuration." % ", ".join(missing))
            return
        docs = m.workspace_variables(ws_id, label) if ws_id else []
        variables = set_variables(m, ws_id, label, specs, docs)
        result["variables"] = {"created": variables["created"], "updated": variables["updated"],
                               "sensitive_values": variables["sensitive_values"]}
        result["changed"] = result["changed"] or variables["changed"]
        if variables["changed"]:
            self.diff["before"].setdefault(name, {})["variables"] = variables["diff"]["before"]
            self.diff["after"].setdefault(name, {})["variables"] = variables["diff"]["after"]
        if ws_id is None:
            # Check mode, and the workspace is about to be created: everything would be new.
            result.update(status="would_run", changed=True)
            self.outputs[name] = {}
            self.diff["after"].setdefault(name, {})["config_sha256"] = config_sha
            return
        runner = Runner(m, ws_id, label, opts=self.opts, given_digest=variables["variables_digest"])
        mark = runner.mark(config_sha)
        effective, in_flight = runner.find_existing(mark)
        if effective is not None:
            result.update(status="unchanged", run=runner.view(effective))
            self.outputs[name] = self.read_outputs(ws_id, label)
            return
        self.diff["after"].setdefault(name, {})["config_sha256"] = config_sha
        if m.check_mode:
            result.update(status="would_run", changed=True)
            self.outputs[name] = self.read_outputs(ws_id, label)
            return
        if in_flight is not None:
            run_id = in_flight["id"]
            result["followed_existing"] = True
        else:
            run_id = runner.queue(files, "%s (%s)" % (m.params["run_message"], name), mark)
        self.active[name] = (runner, run_id, Deadline(m.params["timeout"]))

    def poll(self, name):
        runner, run_id, deadline = self.active[name]
        result = self.results[name]
        try:
            done, doc = runner.step(run_id)
            if not done and deadline.expired:
                raise runner.timed_out(run_id, doc)
        except RunFailed as exc:
            del self.active[name]
            result.update(status="failed", run=exc.run, changed=True, error=exc.msg)
            return
        result["run"] = runner.view(doc)
        if done:
            del self.active[name]
            view = result["run"]
            result["status"] = view["status"]
            result["changed"] = result["changed"] or run_changed(view) or bool(result.get("followed_existing"))
            self.outputs[name] = self.read_outputs(runner.ws_id, runner.name)

    # ---- the graph -------------------------------------------------------------------------------------------
    def blocked_by(self, name):
        return [d for d in self.components[name]["depends_on"]
                if (self.results.get(d) or {}).get("status") in ("failed", "not_started")]

    def ready(self, name):
        return all((self.results.get(d) or {}).get("status") in DONE for d in self.components[name]["depends_on"])

    def start_ready(self):
        """Start every component whose dependencies are done (up to parallelism); whether any run is in flight."""
        limit = self.m.params["parallelism"]
        progressed = True
        while progressed:
            progressed = False
            for name in list(self.pending):
                blockers = self.blocked_by(name)
                if blockers:
                    self.pending.remove(name)
                    self.results[name] = {"workspace": self.components[name]["workspace"], "status": "not_started",
                                          "changed": False, "run": None,
                                          "error": "not started: it depends on %s, which did not apply"
                                          % ", ".join(blockers)}
                    progressed = True
                elif len(self.active) < limit and self.ready(name):
                    self.pending.remove(name)
                    self.start(name)
                    progressed = True
        # Nothing in flight with components still pending cannot happen once graph_problems() is empty.
        return bool(self.active)

    def poll_active(self):
        """Read every run in flight once; the number that finished."""
        before = len(self.active)
        for name in list(self.active):
            self.poll(name)
        return before - len(self.active)

    def run(self):
        # Each run has its own deadline (poll() fails it): the wait for the next one to finish has none.
        while self.start_ready():
            wait_for(self.poll_active, lambda finished: finished > 0, None, "a component's run", first=0.2,
                     maximum=2.0)

    def report(self):
        failed = [n for n in self.order if self.results[n]["status"] == "failed"]
        skipped = [n for n in self.results if self.results[n]["status"] == "not_started"]
        changed = any(r["changed"] for r in self.results.values())
        out = dict(changed=changed, components=self.results, outputs=self.outputs, order=self.order,
                   diff=self.diff)
        if failed:
            parts = ["%s: %s" % (n, self.results[n]["error"]) for n in failed]
            msg = "tfc_component_runs: %d component(s) failed. %s" % (len(failed), " ".join(parts))
            if skipped:
                msg += " Not started because a dependency failed: %s." % ", ".join(
                    "%s (needs %s)" % (n, ", ".join(self.components[n]["depends_on"])) for n in skipped)
            done = [n for n in self.order if n not in failed]
            if done:
                msg += " Finished: %s." % ", ".join(done)
            self.m.fail_json(msg=msg, **out)
        self.m.exit_json(**out)


def main():
    module = TfcModule(
        argument_spec=dict(
            components=dict(type="list", elements="dict", required=True, options=COMPONENT),
            parallelism=dict(type="int", default=4),
            run_message=dict(type="str", default="Applied by skyforge.prefect_platform.tfc_component_runs"),
            timeout=dict(type="int", default=1800),
        ),
    )
    p = module.params
    specs = [v for c in p["components"] for v in c["variables"]]
    mask_only_sensitive(module, specs)
    if p["parallelism"] < 1:
        module.fail_json(msg="parallelism=%d must be at least 1" % p["parallelism"])
    problems = graph_problems(p["components"])
    for comp in p["components"]:
        problem = config_problem(comp["config_dir"])
        if problem:
            problems.append("component %s: %s" % (comp["name"], problem))
        if comp["workspace_settings"] is not None:
            problem = settings_problem(comp["workspace"], comp["workspace_settings"])
            if problem:
                problems.append("component %s, workspace_settings: %s" % (comp["name"], problem))
            if comp["workspace_id"]:
                problems.append("component %s: set workspace_id or workspace_settings, not both (with settings the "
                                "workspace is read by name)" % comp["name"])
        seen = set()
        for var in comp["variables"]:
            where = "component %s, variable %s" % (comp["name"], variable_label(var["category"], var["key"]))
            if (var["value"] is None) == (var["value_from"] is None):
                problems.append("%s needs exactly one of value and value_from" % where)
            elif var["value_from"]:
                dep = var["value_from"].partition(".")[0]
                if dep not in comp["depends_on"]:
                    problems.append("%s: value_from reads component %s, which is not in depends_on: add it so that "
                                    "it runs first" % (where, dep))
            problem = variable_problem(dict(var, value=var["value"] or ""))
            if problem:
                problems.append("%s: %s" % (where, problem))
            if (var["category"], var["key"]) in seen:
                problems.append("%s is listed twice" % where)
            seen.add((var["category"], var["key"]))
    if problems:
        module.fail_json(msg="components are invalid, nothing was run: %s." % "; ".join(problems))
    graph = Graph(module)
    graph.resolve_pools()
    graph.run()
    graph.report()


if __name__ == "__main__":
    one_exit(main)()
