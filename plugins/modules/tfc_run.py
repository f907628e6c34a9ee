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

import hashlib
import io
import os
import re
import tarfile
import time

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import Deadline, poll_interval
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule, rel_id, variables_digest

try:
    from pytfe.models import RunApplyOptions, RunCreateOptions, Workspace
    from pytfe.models.configuration_version import ConfigurationVersion, ConfigurationVersionCreateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK

FINAL_OK = ("applied", "planned_and_finished")
FINAL_BAD = ("errored", "discarded", "canceled", "force_canceled", "policy_soft_failed")
SKIP_DIRS = (".terraform", ".git")
MARK = "skyforge:"
DIGEST = re.compile(r"^[0-9a-f]{16}$")


def collect(config_dir):
    """Sorted (relative path, bytes) of the configuration's files."""
    files = []
    for root, dirs, names in os.walk(config_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            if name.endswith(".tfstate") or name.endswith(".tfstate.backup"):
                continue
            full = os.path.join(root, name)
            with open(full, "rb") as fh:
                files.append((os.path.relpath(full, config_dir).replace(os.sep, "/"), fh.read()))
    return files


def digest(files):
    h = hashlib.sha256()
    for path, data in files:
        h.update(path.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def pack(files):
    """A reproducible tar.gz (fixed mtimes and owners) of the files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    import gzip

    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


class Runner:
    def __init__(self, module, ws_id, name):
        self.m = module
        self.ws_id = ws_id
        self.name = name
        self.p = module.params

    def url(self, run_id):
        return "%s/app/%s/workspaces/%s/runs/%s" % (self.m.address, self.m.organization, self.name, run_id)

    def view(self, doc):
        a = doc.get("attributes") or {}
        return {"id": doc["id"], "status": a.get("status"), "has_changes": a.get("has-changes"),
                "plan_only": a.get("plan-only"), "is_destroy": a.get("is-destroy"), "message": a.get("message"),
                "actions": a.get("actions"), "configuration_version_id": rel_id(doc, "configuration-version"),
                "url": self.url(doc["id"])}

    def read(self, run_id):
        return self.m.jsonapi("GET", "/api/v2/runs/%s" % run_id, action="read run", resource=run_id)["data"]

    def runs(self):
        doc = self.m.jsonapi("GET", "/api/v2/workspaces/%s/runs" % self.ws_id,
                             params={"page[number]": 1, "page[size]": 50}, action="list runs of",
                             resource=self.name, allow_404=True)
        if doc is None:
            self.m.missing_workspace(self.p["workspace_id"] or self.name)
        return doc.get("data") or []

    def vars_digest(self):
        given = self.p["variables_digest"]
        if given and DIGEST.match(given):
            return given
        return variables_digest(self.m.workspace_variables(self.ws_id, self.name))

    def log_error(self, run_id):
        """The error lines of the run's plan log, or '' when they cannot be read."""
        try:
            plan = self.m.jsonapi("GET", "/api/v2/runs/%s/plan" % run_id, action="read plan of", resource=run_id,
                                  allow_404=True)
            url = ((plan or {}).get("data") or {}).get("attributes", {}).get("log-read-url")
            if not url:
                return ""
            text = self.m.client._transport._sync.get(url, timeout=self.p["request_timeout"]).text
        except Exception:  # pylint: disable=broad-except
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if line.startswith("Error:")), None)
        if start is None:
            return lines[-1] if lines else ""
        return " ".join(lines[start:start + 4])

    def follow(self, run_id):
        deadline = Deadline(self.p["timeout"])
        attempt, applied = 0, False
        while True:
            doc = self.read(run_id)
            a = doc["attributes"]
            status = a["status"]
            if status in FINAL_OK:
                return doc
            if status in FINAL_BAD:
                error = self.log_error(run_id)
                self.m.fail_json(msg="HCP Terraform run %s ended %s%s. See %s" % (
                    run_id, status, ": %s." % error.rstrip(".") if error else ".", self.url(run_id)),
                    run=self.view(doc))
            if (a.get("actions") or {}).get("is-confirmable"):
                if not self.p["apply"]:
                    return doc
                if not applied:
                    self.m.call(lambda: self.m.client.runs.apply(run_id, RunApplyOptions(comment="skyforge tfc_run")),
                                action="apply run", resource=run_id)
                    applied = True
                    continue
            if deadline.expired:
                self.m.fail_json(msg="HCP Terraform run %s is still %s after %ds. Fix: raise timeout; the run goes "
                                     "on, and a re-run of this task follows it. See %s"
                                     % (run_id, status, self.p["timeout"], self.url(run_id)), run=self.view(doc))
            time.sleep(min(poll_interval(attempt, 0.2, 5.0), max(0.05, deadline.remaining())))
            attempt += 1

    def upload(self, blob):
        m = self.m
        opts = ConfigurationVersionCreateOptions(auto_queue_runs=False, speculative=self.p["plan_only"] or None)
        cv = m.call(lambda: m.client.configuration_versions.create(self.ws_id, opts),
                    action="create configuration version in", resource=self.name)
        status = m.upload(cv.upload_url, blob, resource=cv.id)
        deadline = Deadline(min(self.p["timeout"], 300))
        attempt = 0
        while True:
            doc = m.jsonapi("GET", "/api/v2/configuration-versions/%s" % cv.id, action="read configuration version",
                            resource=cv.id)["data"]["attributes"]
            if doc["status"] == "uploaded":
                return cv.id
            if doc["status"] == "errored" or (doc["status"] == "pending" and status is None and deadline.expired):
                m.fail_json(msg="HCP Terraform: configuration version %s of %s is %s: %s. Fix: check config_dir holds "
                                "a valid Terraform configuration." % (cv.id, self.name, doc["status"],
                                                                      doc.get("error-message") or "upload refused"))
            if deadline.expired:
                m.fail_json(msg="HCP Terraform: configuration version %s stayed %s. Fix: retry." % (cv.id, doc["status"]))
            time.sleep(poll_interval(attempt, 0.1, 2.0))
            attempt += 1


def check_execution_mode(module, ws, name):
    if (ws["attributes"] or {}).get("execution-mode") == "local":
        module.fail_json(msg="workspace %s uses local execution: runs cannot be queued in HCP Terraform. Fix: set "
                             "execution_mode to remote or agent (tfc_workspace)." % name)


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
    if not os.path.isdir(p["config_dir"]):
        module.fail_json(msg="config_dir %s is not a directory: point it at the Terraform configuration" % p["config_dir"])
    files = collect(p["config_dir"])
    if not any(path.endswith(".tf") or path.endswith(".tf.json") for path, _d in files):
        module.fail_json(msg="config_dir %s holds no .tf files: point it at the Terraform configuration" % p["config_dir"])
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
    runner = Runner(module, ws_id, name)
    mark = "%s config sha256=%s vars=%s%s" % (MARK, config_sha, runner.vars_digest(), " destroy" if p["is_destroy"] else "")
    if not p["plan_only"] and not p["force"]:
        runs = [r for r in runner.runs() if not r["attributes"].get("plan-only")]
        effective = next((r for r in runs if r["attributes"]["status"] in FINAL_OK), None)
        if effective is not None and (effective["attributes"].get("message") or "").endswith(mark):
            module.exit_json(changed=False, run=runner.view(effective), config_sha256=config_sha,
                             skipped_reason="run %s already applied this configuration and these variables"
                             % effective["id"])
        in_flight = next((r for r in runs if r["attributes"]["status"] not in FINAL_OK + FINAL_BAD
                          and (r["attributes"].get("message") or "").endswith(mark)), None)
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
    cv_id = runner.upload(pack(files))
    opts = RunCreateOptions(workspace=Workspace.model_construct(id=ws_id),
                            configuration_version=ConfigurationVersion.model_construct(id=cv_id),
                            message="%s %s" % (p["run_message"], mark),
                            plan_only=p["plan_only"] or None, is_destroy=p["is_destroy"] or None)
    run = module.call(lambda: module.client.runs.create(opts), action="queue run in", resource=name)
    done = runner.follow(run.id)
    view = runner.view(done)
    changed = bool(view["has_changes"]) and not view["plan_only"] and view["status"] != "planned_and_finished"
    if view["status"] == "planned":
        changed = True  # a run now waits for confirmation
    module.exit_json(changed=changed, run=view, config_sha256=config_sha)


if __name__ == "__main__":
    main()
