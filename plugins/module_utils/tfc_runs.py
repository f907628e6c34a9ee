# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs of a Terraform configuration in a workspace: shared by tfc_run (one run) and tfc_component_runs (a graph).

A run is started by `start()` (skip when already applied, follow one in flight, else upload and queue) and then
moved along by `Runner.step()`, which never blocks, so that one process can follow many runs at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import io
import os
import re
import tarfile

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import Waiter, WaitTimeout
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import InputError, OperationFailed
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import rel_id, variables_digest

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


class RunFailed(OperationFailed):
    """A run that ended badly; `msg` names the run, its status, the error from its log and its URL."""

    def __init__(self, msg, run=None):
        super(RunFailed, self).__init__(msg, family="tfc", run=run)
        self.run = run


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


def config_problem(config_dir, files=None):
    """Why config_dir cannot be uploaded, or None."""
    if not os.path.isdir(config_dir):
        return "config_dir %s is not a directory: point it at the Terraform configuration" % config_dir
    files = collect(config_dir) if files is None else files
    if not any(path.endswith(".tf") or path.endswith(".tf.json") for path, _d in files):
        return "config_dir %s holds no .tf files: point it at the Terraform configuration" % config_dir
    return None


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
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


class Runner:
    """The runs of one workspace. `opts` holds apply, plan_only, timeout, request_timeout (tfc_run's options)."""

    def __init__(self, module, ws_id, name, opts=None, given_digest=None):
        self.m = module
        self.ws_id = ws_id
        self.name = name
        self.p = opts if opts is not None else module.params
        self.given_digest = given_digest
        self.applied = set()
        self.waiter = Waiter(self.p.get("timeout"), "timeout", first=0.2, maximum=5.0)

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
            self.m.missing_workspace(self.name)
        return doc.get("data") or []

    def vars_digest(self):
        given = self.given_digest
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

    def step(self, run_id):
        """Read the run once and move it on: (True, doc) when it is done, (False, doc) while it goes on.

        A run waiting for confirmation is applied (once) when `apply` is set, else it counts as done.
        A run that ended badly raises RunFailed.
        """
        doc = self.read(run_id)
        a = doc["attributes"]
        status = a["status"]
        if status in FINAL_OK:
            return True, doc
        if status in FINAL_BAD:
            error = self.log_error(run_id)
            raise RunFailed("HCP Terraform run %s ended %s%s. See %s" % (
                run_id, status, ": %s." % error.rstrip(".") if error else ".", self.url(run_id)), run=self.view(doc))
        if (a.get("actions") or {}).get("is-confirmable"):
            if not self.p["apply"]:
                return True, doc
            if run_id not in self.applied:
                self.m.call(lambda: self.m.client.runs.apply(run_id, RunApplyOptions(comment="skyforge tfc_run")),
                            action="apply run", resource=run_id)
                self.applied.add(run_id)
        return False, doc

    def timed_out(self, run_id, doc):
        return RunFailed("HCP Terraform: timed out after %ds waiting for run %s (still %s). Fix: raise timeout; the "
                         "run goes on, and a re-run follows it. See %s"
                         % (self.p["timeout"], run_id, doc["attributes"]["status"], self.url(run_id)),
                         run=self.view(doc))

    def follow(self, run_id):
        """Follow the run until it is done (see step), raising RunFailed when it fails or times out."""
        try:
            return self.waiter.until(lambda: self.step(run_id), lambda step: step[0], "run %s" % run_id)[1]
        except WaitTimeout as exc:
            raise self.timed_out(run_id, exc.last[1])

    def upload(self, blob):
        m = self.m
        opts = ConfigurationVersionCreateOptions(auto_queue_runs=False, speculative=self.p["plan_only"] or None)
        cv = m.call(lambda: m.client.configuration_versions.create(self.ws_id, opts),
                    action="create configuration version in", resource=self.name)
        m.upload(cv.upload_url, blob, resource=cv.id)

        def read():
            doc = m.jsonapi("GET", "/api/v2/configuration-versions/%s" % cv.id, action="read configuration version",
                            resource=cv.id)["data"]["attributes"]
            if doc["status"] == "errored":
                raise InputError("HCP Terraform: configuration version %s of %s is errored: %s"
                                 % (cv.id, self.name, doc.get("error-message") or "upload refused"),
                                 "check config_dir holds a valid Terraform configuration")
            return doc

        upload = Waiter(min(self.p["timeout"], 300), "timeout", first=0.1, maximum=2.0)
        try:
            upload.until(read, lambda doc: doc["status"] == "uploaded",
                         lambda doc: "configuration version %s of %s (still %s)" % (cv.id, self.name, doc["status"]),
                         hint="or retry (HCP Terraform processes an upload in seconds)")
        except WaitTimeout as exc:
            raise WaitTimeout("HCP Terraform: %s" % exc.what, exc.fix, last=exc.last, timeout=exc.timeout)
        return cv.id

    def mark(self, config_sha, is_destroy=False):
        return "%s config sha256=%s vars=%s%s" % (MARK, config_sha, self.vars_digest(), " destroy" if is_destroy else "")

    def find_existing(self, mark):
        """(applied run, run in flight) carrying this mark, each None when there is none."""
        runs = [r for r in self.runs() if not r["attributes"].get("plan-only")]
        effective = next((r for r in runs if r["attributes"]["status"] in FINAL_OK), None)
        if effective is not None and not (effective["attributes"].get("message") or "").endswith(mark):
            effective = None
        in_flight = next((r for r in runs if r["attributes"]["status"] not in FINAL_OK + FINAL_BAD
                          and (r["attributes"].get("message") or "").endswith(mark)), None)
        return effective, in_flight

    def queue(self, files, message, mark, plan_only=False, is_destroy=False):
        """Upload the configuration and queue a run of it; the run's ID."""
        cv_id = self.upload(pack(files))
        opts = RunCreateOptions(workspace=Workspace.model_construct(id=self.ws_id),
                                configuration_version=ConfigurationVersion.model_construct(id=cv_id),
                                message="%s %s" % (message, mark),
                                plan_only=plan_only or None, is_destroy=is_destroy or None)
        return self.m.call(lambda: self.m.client.runs.create(opts), action="queue run in", resource=self.name).id


def run_changed(view):
    """Whether a finished run changed something (a run waiting for confirmation counts)."""
    if view["status"] == "planned":
        return True
    return bool(view["has_changes"]) and not view["plan_only"] and view["status"] != "planned_and_finished"


def check_execution_mode(module, ws, name):
    if (ws["attributes"] or {}).get("execution-mode") == "local":
        raise InputError("workspace %s uses local execution: runs cannot be queued in HCP Terraform" % name,
                         "set execution_mode to remote or agent (tfc_workspace)")
