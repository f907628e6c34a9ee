"""run v2: Cloud Run jobs and their executions, with the checks Cloud Run makes against the rest of the project.

A job's service account, Direct VPC egress network/subnetwork and Secret Manager references must exist, as Cloud
Run refuses a job whose template names something missing. An execution runs its tasks as local processes
(sandbox/gcp/run_executions.py), with Cloud Run's status, conditions, retries and timeouts.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import string
import threading
import time
import uuid

from ..web import ApiError
from .app import lro, now_rfc3339
from .compute_common import unlink
from .run_executions import ExecutionRunner, task_view

JOB_ID_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DURATION_RE = re.compile(r"^-?\d+(\.\d{1,9})?s$")
LOCATION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")
MAX_TASK_TIMEOUT = 168 * 3600
SYSTEM_PREFIXES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")
TYPE = "type.googleapis.com/google.cloud.run.v2.%s"
# The fields a client writes; everything else on a Job is output only and ignored on input, as Cloud Run does.
JOB_INPUT = ("labels", "annotations", "client", "clientVersion", "launchStage", "binaryAuthorization", "template",
             "runExecutionToken", "startExecutionToken", "functionalType")


def violation(request, path, message):
    return ApiError(400, "Violation in %s.%s: %s" % (request, path, message), reason="badRequest",
                    status="INVALID_ARGUMENT")


def _etag():
    return base64.b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Run:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.jobs = app.sandbox.store.table("run.jobs")
        self.job_operations = {}  # job key -> its latest reconcile operation
        self.executions = app.sandbox.store.table("run.executions")
        self.tasks = app.sandbox.store.table("run.tasks")
        self.runners = {}  # execution name -> ExecutionRunner
        self.ops = {}
        self.lock = threading.RLock()

    # ---- names ----------------------------------------------------------------------------
    def project_of(self, given):
        if given not in (self.app.project, self.app.project_number):
            raise ApiError(403, "Permission denied on resource project %s (or it may not exist)." % given,
                           reason="forbidden", status="PERMISSION_DENIED")
        return self.app.project

    def location(self, p):
        loc = p["locationsId"]
        if not LOCATION_RE.match(loc):
            raise ApiError(400, "Location '%s' is not a valid Cloud Run region." % loc, reason="badRequest",
                           status="INVALID_ARGUMENT")
        return loc

    def job_key(self, p):
        return "projects/%s/locations/%s/jobs/%s" % (self.project_of(p["projectsId"]), self.location(p), p["jobsId"])

    def job_missing(self, p):
        return ApiError(404, "Resource '%s' of kind 'JOB' in region '%s' in project '%s' does not exist."
                        % (p["jobsId"], p["locationsId"], p["projectsId"]), reason="notFound", status="NOT_FOUND")

    def get_job(self, p):
        row = self.jobs.get(self.job_key(p))
        if row is None:
            raise self.job_missing(p)
        return row

    # ---- operations -----------------------------------------------------------------------
    def operation(self, location, kind, resource, on_done, render, duration=None):
        """render() -> (metadata, response): called each time the operation is read."""
        op = self.sandbox.ops.start(kind, on_done, resource="run/%s" % resource, duration=duration)
        name = "projects/%s/locations/%s/operations/%s" % (self.app.project, location, uuid.uuid4())
        with self.lock:
            self.ops[name] = (op, render)
        return self.render_op(name)

    def render_op(self, name):
        op, render = self.ops[name]
        op.poll()
        metadata, response = render()
        return lro(op, name, metadata=metadata, response=response)

    def op_name(self, p):
        name = "projects/%s/locations/%s/operations/%s" % (self.project_of(p["projectsId"]), p["locationsId"],
                                                           p["operationsId"])
        if name not in self.ops:
            raise ApiError(404, "Operation '%s' not found." % p["name"], reason="notFound", status="NOT_FOUND")
        return name

    def op_get(self, req, p):
        return self.render_op(self.op_name(p))

    def op_wait(self, req, p):
        name = self.op_name(p)
        timeout = (req.json or {}).get("timeout")
        seconds = 60.0
        if timeout is not None:
            seconds = duration_seconds(timeout, "timeout", "WaitOperationRequest")
        deadline = time.monotonic() + min(seconds, 60.0)
        op = self.ops[name][0]
        while not op.poll() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.render_op(name)

    def op_list(self, req, p):
        prefix = "projects/%s/locations/%s/operations/" % (self.project_of(p["projectsId"]), p["locationsId"])
        rows = [self.render_op(n) for n in sorted(self.ops) if n.startswith(prefix)]
        page, token = paginate(rows, req)
        out = {"operations": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def op_delete(self, req, p):
        with self.lock:
            self.ops.pop(self.op_name(p))
        return {}

    # ---- validation -----------------------------------------------------------------------
    def validate(self, job, location, request):
        """What Cloud Run checks beyond the proto schema (which the app has already enforced)."""
        where = request + ".job"
        execution = job.get("template")
        if not execution:
            raise violation(where, "template", "field is required")
        for path, meta in (("", job), ("template.", execution)):
            for field in ("labels", "annotations"):
                for key in meta.get(field) or {}:
                    if key.split("/", 1)[0] in SYSTEM_PREFIXES and "/" in key:
                        raise violation(where, path + field, "Cloud Run API v2 does not support %s in the %s "
                                        "namespace ('%s')" % (field, key.split("/", 1)[0], key))
        for field in ("taskCount", "parallelism"):
            if execution.get(field) is not None and int(execution[field]) < 0:
                raise violation(where, "template.%s" % field, "must be non-negative")
        task = execution.get("template")
        if not task:
            raise violation(where, "template.template", "field is required")
        self.validate_task(task, location, where + ".template.template")

    def validate_task(self, task, location, where):
        containers = task.get("containers") or []
        if not containers:
            raise violation(where, "containers", "at least one container is required")
        if len(containers) > 10:
            raise violation(where, "containers", "at most 10 containers are allowed")
        names = set()
        for idx, container in enumerate(containers):
            cpath = "containers[%d]" % idx
            if not container.get("image"):
                raise violation(where, cpath + ".image", "field is required")
            if len(containers) > 1:
                if not container.get("name") or container["name"] in names:
                    raise violation(where, cpath + ".name", "every container needs a unique name when there are "
                                                            "several")
                names.add(container["name"])
            self.validate_env(container.get("env") or [], where, cpath + ".env")
        if task.get("maxRetries") is not None and not 0 <= int(task["maxRetries"]) <= 10:
            raise violation(where, "maxRetries", "must be between 0 and 10")
        if task.get("timeout") is not None:
            seconds = duration_seconds(task["timeout"], where.split(".", 1)[1] + ".timeout", where.split(".", 1)[0])
            if not 0 < seconds <= MAX_TASK_TIMEOUT:
                raise violation(where, "timeout", "must be between 1s and %ds (168 hours)" % MAX_TASK_TIMEOUT)
        if task.get("serviceAccount"):
            self.check_service_account(task["serviceAccount"])
        for idx, volume in enumerate(task.get("volumes") or []):
            secret = (volume.get("secret") or {}).get("secret")
            if secret:
                self.check_secret(secret, None, where, "volumes[%d].secret.secret" % idx)
        self.validate_vpc(task.get("vpcAccess"), location, where)

    def validate_env(self, env, where, path):
        seen = set()
        for idx, var in enumerate(env):
            epath = "%s[%d]" % (path, idx)
            name = var.get("name") or ""
            if not name:
                raise violation(where, epath + ".name", "field is required")
            if name in seen:
                raise violation(where, epath + ".name", "duplicate environment variable name '%s'" % name)
            seen.add(name)
            source = var.get("valueSource")
            if source and var.get("value"):
                raise violation(where, epath, "set either value or valueSource, not both")
            ref = (source or {}).get("secretKeyRef")
            if source is not None and not ref:
                raise violation(where, epath + ".valueSource.secretKeyRef", "field is required")
            if ref is not None:
                if not ref.get("secret"):
                    raise violation(where, epath + ".valueSource.secretKeyRef.secret", "field is required")
                self.check_secret(ref["secret"], ref.get("version"), where, epath + ".valueSource.secretKeyRef")

    def check_service_account(self, email):
        key = "projects/%s/serviceAccounts/%s" % (self.app.project, email)
        if "@" not in email or key not in self.sandbox.store.table("iam.serviceAccounts"):
            raise ApiError(403, "Permission 'iam.serviceaccounts.actAs' denied on service account %s (or it may not "
                                "exist)." % email, reason="forbidden", status="PERMISSION_DENIED")

    def check_secret(self, secret, version, where, path):
        m = re.fullmatch(r"projects/([^/]+)/secrets/([^/]+)", secret)
        if m:
            self.project_of(m.group(1))
            secret_id = m.group(2)
        elif "/" in secret:
            raise violation(where, path, "secret must be a secret name or projects/{project}/secrets/{secret}")
        else:
            secret_id = secret
        name = "projects/%s/secrets/%s" % (self.app.project_number, secret_id)
        if name not in self.sandbox.store.table("secretmanager.secrets"):
            raise violation(where, path, "Secret %s/versions/%s was not found" % (name, version or "latest"))
        if version and version != "latest" and version.isdigit():
            versions = self.sandbox.store.table("secretmanager.versions")
            if "%s/versions/%s" % (name, version) not in versions:
                raise violation(where, path + ".version", "Secret %s/versions/%s was not found" % (name, version))

    def validate_vpc(self, vpc, location, where):
        if not vpc:
            return
        interfaces = vpc.get("networkInterfaces") or []
        if vpc.get("connector") and interfaces:
            raise violation(where, "vpcAccess", "set either connector or networkInterfaces, not both")
        if vpc.get("egress") and not (vpc.get("connector") or interfaces):
            raise violation(where, "vpcAccess.egress", "egress needs a connector or a network interface")
        if vpc.get("connector"):
            raise ApiError(501, "the sandbox does not implement Serverless VPC Access connectors: use Direct VPC "
                                "egress (networkInterfaces)", status="UNIMPLEMENTED")
        if len(interfaces) > 1:
            raise violation(where, "vpcAccess.networkInterfaces", "only a single network interface is supported")
        store = self.sandbox.store
        for idx, nic in enumerate(interfaces):
            path = "vpcAccess.networkInterfaces[%d]" % idx
            network = subnet = None
            if not nic.get("network") and not nic.get("subnetwork"):
                raise violation(where, path, "at least one of network or subnetwork must be specified")
            if nic.get("network"):
                network = self.resource_path(nic["network"], "global/networks", where, path + ".network")
                if network not in store.table("compute.networks"):
                    raise violation(where, path + ".network", "VPC network '%s' was not found in project '%s'"
                                    % (nic["network"], self.app.project))
            if nic.get("subnetwork"):
                subnet = self.resource_path(nic["subnetwork"], "regions/%s/subnetworks" % location, where,
                                            path + ".subnetwork")
                row = store.table("compute.subnetworks").get(subnet)
                if subnet.split("/")[3] != location:
                    raise violation(where, path + ".subnetwork", "subnetwork '%s' is in region '%s'; a job in '%s' "
                                    "needs a subnetwork of its own region" % (nic["subnetwork"], subnet.split("/")[3],
                                                                               location))
                if row is None:
                    raise violation(where, path + ".subnetwork", "subnetwork '%s' was not found in region '%s' of "
                                    "project '%s'" % (nic["subnetwork"], location, self.app.project))
                if network and unlink(row["network"]) != network:
                    raise violation(where, path + ".subnetwork", "subnetwork '%s' does not belong to network '%s'"
                                    % (nic["subnetwork"], nic["network"]))

    def resource_path(self, ref, collection, where, path):
        """A name, a projects/... path or a compute URL -> the compute table key."""
        ref = unlink(ref)
        if "/" not in ref:
            return "projects/%s/%s/%s" % (self.app.project, collection, ref)
        m = re.fullmatch(r"projects/([^/]+)/((?:global|regions/[^/]+)/(?:networks|subnetworks)/[^/]+)", ref)
        if not m:
            raise violation(where, path, "'%s' is not a network or subnetwork name or path" % ref)
        return "projects/%s/%s" % (self.project_of(m.group(1)), m.group(2))

    # ---- jobs -----------------------------------------------------------------------------
    def job_view(self, row):
        view = {k: v for k, v in row.items() if not k.startswith("_")}
        # A job that never ran answers with an empty reference, not without the field: prefect-gcp's cloud-run-v2
        # worker reads response["latestCreatedExecution"] of the job it just created, and it works against Cloud Run.
        view.setdefault("latestCreatedExecution", {})
        return view

    def new_job(self, req, key, body):
        now = now_rfc3339()
        row = {k: copy.deepcopy(body[k]) for k in JOB_INPUT if body.get(k) is not None}
        row.update({
            "name": key, "uid": str(uuid.uuid4()), "generation": "1", "createTime": now, "updateTime": now,
            "creator": req.principal, "lastModifier": req.principal, "launchStage": body.get("launchStage") or "GA",
            "observedGeneration": "1", "reconciling": True, "etag": _etag(),
            "terminalCondition": {"type": "Ready", "state": "CONDITION_RECONCILING", "lastTransitionTime": now},
        })
        tmpl = row["template"]
        tmpl.setdefault("taskCount", 1)
        tmpl.setdefault("parallelism", 1 if tmpl["taskCount"] == 1 else tmpl["taskCount"])
        task = tmpl["template"]
        task.setdefault("maxRetries", 3)
        task.setdefault("timeout", "600s")
        task.setdefault("serviceAccount", "%s-compute@developer.gserviceaccount.com" % self.app.project_number)
        task.setdefault("executionEnvironment", "EXECUTION_ENVIRONMENT_GEN2")
        for container in task["containers"]:
            container.setdefault("resources", {"limits": {"cpu": "1000m", "memory": "512Mi"}})
        return row

    def settle(self, row):
        now = now_rfc3339()
        row["reconciling"] = False
        row["observedGeneration"] = row["generation"]
        row["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}
        return self.typed("Job", row)

    def typed(self, kind, row):
        return dict({"@type": TYPE % kind}, **self.job_view(row))

    def job_operation(self, location, key, row, on_done):
        started = self.operation(location, "run.job.reconcile", key, on_done, lambda: (self.typed("Job", row), None))
        # Beside the row, not in it: rows are the API's resources, and tests read them as JSON.
        self.job_operations[key] = self.ops[started["name"]][0]
        return started

    def create(self, req, p):
        if p["parent"].count("/") != 3:
            raise ApiError(400, "parent must be projects/{project}/locations/{location}", reason="badRequest",
                           status="INVALID_ARGUMENT")
        job_id = req.query.get("jobId") or ""
        if not job_id:
            raise violation("CreateJobRequest", "job_id", "field is required")
        if not JOB_ID_RE.match(job_id):
            raise violation("CreateJobRequest", "job_id", "'%s' must use only lowercase alphanumeric characters and "
                            "dashes, cannot begin or end with a dash, and cannot be longer than 63 characters" % job_id)
        p = dict(p, jobsId=job_id)
        key = self.job_key(p)
        body = req.json or {}
        if body.get("name"):
            raise violation("CreateJobRequest", "job.name", "must be empty: the name comes from job_id")
        location = p["locationsId"]
        self.validate(body, location, "CreateJobRequest")
        with self.lock:
            if key in self.jobs:
                raise ApiError(409, "Resource '%s' already exists." % job_id, reason="alreadyExists",
                               status="ALREADY_EXISTS")
            row = self.new_job(req, key, body)
            if req.query.get("validateOnly") == "true":
                return self.validate_only(location, row)
            self.jobs[key] = row
        return self.job_operation(location, key, row, lambda: self.settle(row))

    def validate_only(self, location, row):
        return self.operation(location, "run.job", row["name"], None, lambda: (self.typed("Job", row), self.typed("Job", row)),
                              duration=0)

    def get(self, req, p):
        self.get_job(p)
        operation = self.job_operations.get(self.job_key(p))
        if operation is not None:
            # A read sees the job as the time since its change makes it, not as the operation ticker last left it
            # (up to a tick late). Outside self.lock: the operation's completion takes it.
            operation.poll()
        return self.job_view(self.get_job(p))

    def list(self, req, p):
        prefix = "projects/%s/locations/%s/jobs/" % (self.project_of(p["projectsId"]), self.location(p))
        rows = [self.job_view(r) for k, r in sorted(self.jobs.items()) if k.startswith(prefix)]
        page, token = paginate(rows, req)
        out = {"jobs": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def check_etag(self, row, etag):
        if etag and etag != row["etag"]:
            raise ApiError(409, "The etag '%s' does not match the job's current etag; read the job again and retry."
                           % etag, reason="aborted", status="ABORTED")

    def patch(self, req, p):
        key = self.job_key(p)
        body = req.json or {}
        location = p["locationsId"]
        if body.get("name") and body["name"] not in (key, p["name"]):
            raise violation("UpdateJobRequest", "job.name", "'%s' does not match the job in the URL" % body["name"])
        with self.lock:
            row = self.jobs.get(key)
            if row is None:
                if req.query.get("allowMissing") != "true":
                    raise self.job_missing(p)
                self.validate(body, location, "UpdateJobRequest")
                row = self.new_job(req, key, body)
                if req.query.get("validateOnly") == "true":
                    return self.validate_only(location, row)
                self.jobs[key] = row
                return self.job_operation(location, key, row, lambda: self.settle(row))
            self.check_etag(row, body.get("etag"))
            self.validate(body, location, "UpdateJobRequest")
            fresh = self.new_job(req, key, body)
            if req.query.get("validateOnly") == "true":
                return self.validate_only(location, dict(row, **{k: fresh.get(k) for k in JOB_INPUT if k in fresh}))
            for k in JOB_INPUT:
                if k in fresh:
                    row[k] = fresh[k]
                else:
                    row.pop(k, None)
            now = now_rfc3339()
            row.update({"generation": str(int(row["generation"]) + 1), "updateTime": now, "etag": _etag(),
                        "lastModifier": req.principal, "reconciling": True,
                        "terminalCondition": {"type": "Ready", "state": "CONDITION_RECONCILING",
                                              "lastTransitionTime": now}})
        return self.job_operation(location, key, row, lambda: self.settle(row))

    def delete(self, req, p):
        key = self.job_key(p)
        location = p["locationsId"]
        with self.lock:
            row = self.get_job(p)
            self.check_etag(row, req.query.get("etag"))
            if req.query.get("validateOnly") == "true":
                return self.validate_only(location, row)
            row["reconciling"] = True
            row["deleteTime"] = now_rfc3339()
            row["expireTime"] = row["deleteTime"]
            for name, runner in list(self.runners.items()):
                if name.startswith(key + "/executions/"):
                    runner.cancel()

        def done():
            with self.lock:
                self.jobs.pop(key, None)
                self.job_operations.pop(key, None)
                for name in [n for n in self.executions if n.startswith(key + "/executions/")]:
                    self.executions.pop(name)
                    self.runners.pop(name, None)
                for name in [n for n in self.tasks if n.startswith(key + "/executions/")]:
                    self.tasks.pop(name)
            row["reconciling"] = False
            return self.typed("Job", row)

        return self.job_operation(location, key, row, done)

    # ---- executions -----------------------------------------------------------------------
    def run(self, req, p):
        key = self.job_key(p)
        location = p["locationsId"]
        body = req.json or {}
        with self.lock:
            job = self.get_job(p)
            self.check_etag(job, body.get("etag"))
            if job["terminalCondition"]["state"] != "CONDITION_SUCCEEDED" or job.get("deleteTime"):
                raise ApiError(400, "Job '%s' is not ready (it is still being reconciled); retry when its operation is "
                                    "done." % p["jobsId"], reason="failedPrecondition", status="FAILED_PRECONDITION")
            execution = self.new_execution(req, job, body.get("overrides") or {}, location)
            if body.get("validateOnly"):
                return self.operation(location, "run.job", execution["name"], None,
                                      lambda: (self.typed("Execution", execution), self.typed("Execution", execution)),
                                      duration=0)
            self.executions[execution["name"]] = execution
            job["executionCount"] = int(job.get("executionCount") or 0) + 1
            job["latestCreatedExecution"] = {"name": execution["name"], "createTime": execution["createTime"],
                                             "completionStatus": "EXECUTION_RUNNING"}

        def done():
            completed = next(c for c in execution["conditions"] if c["type"] == "Completed")
            if completed["state"] != "CONDITION_SUCCEEDED":
                raise ApiError(400, completed.get("message") or "Execution failed.")
            return self.typed("Execution", execution)

        tmpl = execution["template"]
        attempts = int(tmpl.get("maxRetries", 3)) + 1
        # Ended by the runner when the execution completes; this bound only guards a runner that died.
        bound = duration_seconds(tmpl.get("timeout", "600s"), "timeout", "RunJobRequest") * attempts * \
            int(execution["taskCount"]) + 300
        rendered = self.operation(location, "run.job", execution["name"], done,
                                  lambda: (self.typed("Execution", execution), None), duration=bound)
        runner = ExecutionRunner(self, job, execution, self.ops[rendered["name"]][0])
        self.runners[execution["name"]] = runner
        runner.start()
        return rendered

    def new_execution(self, req, job, overrides, location):
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        job_id = job["name"].rsplit("/", 1)[-1]
        name = "%s/executions/%s-%s" % (job["name"], job_id, suffix)
        tmpl = job["template"]
        task = copy.deepcopy(tmpl["template"])
        task_count = tmpl.get("taskCount", 1)
        where = "RunJobRequest.overrides"
        if overrides.get("taskCount") is not None:
            task_count = int(overrides["taskCount"])
            if task_count < 1:
                raise violation(where, "task_count", "must be at least 1")
        if overrides.get("timeout") is not None:
            duration_seconds(overrides["timeout"], "overrides.timeout", "RunJobRequest")
            task["timeout"] = overrides["timeout"]
        by_name = {c.get("name"): c for c in task["containers"]}
        for idx, override in enumerate(overrides.get("containerOverrides") or []):
            cname = override.get("name")
            if cname not in by_name and not (cname in (None, "") and len(task["containers"]) == 1):
                raise violation(where, "container_overrides[%d].name" % idx, "no container named '%s' in the job"
                                % cname)
            container = by_name.get(cname) or task["containers"][0]
            if override.get("clearArgs"):
                container.pop("args", None)
            if override.get("args"):
                container["args"] = list(override["args"])
            if override.get("env"):
                merged = {e["name"]: e for e in container.get("env") or []}
                merged.update({e.get("name"): e for e in override["env"]})
                container["env"] = list(merged.values())
                self.validate_env(container["env"], where, "container_overrides[%d].env" % idx)
        now = now_rfc3339()
        project = job["name"].split("/")[1]
        return {
            "name": name, "uid": str(uuid.uuid4()), "creator": req.principal, "generation": "1",
            "observedGeneration": "1", "createTime": now, "startTime": now, "updateTime": now,
            "launchStage": job.get("launchStage", "GA"), "job": job_id, "taskCount": task_count,
            "parallelism": min(tmpl.get("parallelism") or task_count, task_count), "template": task,
            "reconciling": True, "runningCount": 0, "labels": dict(tmpl.get("labels") or {}),
            "annotations": dict(tmpl.get("annotations") or {}), "etag": _etag(),
            "logUri": "https://console.cloud.google.com/logs/viewer?project=%s&advancedFilter=resource.type%%3D"
                      "%%22cloud_run_job%%22%%20resource.labels.job_name%%3D%%22%s%%22" % (project, job_id),
            "conditions": [{"type": "ResourcesAvailable", "state": "CONDITION_RECONCILING", "lastTransitionTime": now},
                           {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": now}],
        }

    def execution_get(self, req, p):
        self.get_job(p)
        name = "%s/executions/%s" % (self.job_key(p), p["executionsId"])
        row = self.executions.get(name)
        if row is None:
            raise ApiError(404, "Resource '%s' of kind 'EXECUTION' in region '%s' in project '%s' does not exist."
                           % (p["executionsId"], p["locationsId"], p["projectsId"]), reason="notFound",
                           status="NOT_FOUND")
        return row

    def after_runner(self, location, execution, on_done):
        """An operation that ends once the execution's runner has stopped (it may still be killing processes)."""
        runner = self.runners.get(execution["name"])
        rendered = self.operation(location, "run.job", execution["name"], on_done,
                                  lambda: (self.typed("Execution", execution), None), duration=3600)
        op = self.ops[rendered["name"]][0]

        def wait():
            if runner is not None:
                runner.done.wait(3000)
            op.end = time.monotonic()

        threading.Thread(target=wait, daemon=True).start()
        return rendered

    def execution_cancel(self, req, p):
        execution = self.execution_get(req, p)
        body = req.json or {}
        if body.get("etag") and body["etag"] != execution["etag"]:
            raise ApiError(409, "The etag '%s' does not match the execution's current etag." % body["etag"],
                           reason="aborted", status="ABORTED")
        if execution.get("completionTime"):
            raise ApiError(400, "Execution '%s' has already completed; only a running execution can be cancelled."
                           % p["executionsId"], reason="failedPrecondition", status="FAILED_PRECONDITION")
        if body.get("validateOnly"):
            return self.operation(p["locationsId"], "run.job", execution["name"], None,
                                  lambda: (self.typed("Execution", execution), self.typed("Execution", execution)),
                                  duration=0)
        self.runners[execution["name"]].cancel()
        return self.after_runner(p["locationsId"], execution, lambda: self.typed("Execution", execution))

    def execution_delete(self, req, p):
        execution = self.execution_get(req, p)
        if req.query.get("etag") and req.query["etag"] != execution["etag"]:
            raise ApiError(409, "The etag '%s' does not match the execution's current etag." % req.query["etag"],
                           reason="aborted", status="ABORTED")
        if req.query.get("validateOnly") == "true":
            return self.operation(p["locationsId"], "run.job", execution["name"], None,
                                  lambda: (self.typed("Execution", execution), self.typed("Execution", execution)),
                                  duration=0)
        runner = self.runners.get(execution["name"])
        if runner is not None and not execution.get("completionTime"):
            runner.cancel()
        execution["deleteTime"] = execution["expireTime"] = now_rfc3339()

        def done():
            name = execution["name"]
            with self.lock:
                self.executions.pop(name, None)
                self.runners.pop(name, None)
                for task in [n for n in self.tasks if n.startswith(name + "/tasks/")]:
                    self.tasks.pop(task)
            return self.typed("Execution", execution)

        return self.after_runner(p["locationsId"], execution, done)

    def task_get(self, req, p):
        self.execution_get(req, p)
        name = "%s/executions/%s/tasks/%s" % (self.job_key(p), p["executionsId"], p["tasksId"])
        row = self.tasks.get(name)
        if row is None:
            raise ApiError(404, "Resource '%s' of kind 'TASK' in region '%s' in project '%s' does not exist."
                           % (p["tasksId"], p["locationsId"], p["projectsId"]), reason="notFound", status="NOT_FOUND")
        return task_view(row)

    def task_list(self, req, p):
        execution = self.execution_get(req, p)
        prefix = execution["name"] + "/tasks/"
        rows = sorted((r for n, r in list(self.tasks.items()) if n.startswith(prefix)), key=lambda r: r["index"])
        page, token = paginate([task_view(r) for r in rows], req)
        out = {"tasks": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def execution_list(self, req, p):
        key = self.job_key(p)
        if p["jobsId"] != "-":
            self.get_job(p)
            prefix = key + "/executions/"
            rows = [r for n, r in self.executions.items() if n.startswith(prefix)]
        else:
            prefix = key[:-1]
            rows = [r for n, r in self.executions.items() if n.startswith(prefix)]
        rows.sort(key=lambda r: r["createTime"], reverse=True)
        page, token = paginate(rows, req)
        out = {"executions": page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out


def duration_seconds(value, path, request):
    if not isinstance(value, str) or not DURATION_RE.match(value):
        raise ApiError(400, "Invalid value at '%s' (type.googleapis.com/google.protobuf.Duration), Field '%s', "
                            "Illegal duration format; duration must end with 's'" % (path, path.rsplit(".", 1)[-1]),
                       reason="badRequest", status="INVALID_ARGUMENT")
    return float(value[:-1])


def paginate(rows, req):
    size = int(req.query.get("pageSize") or 0) or 100
    start = 0
    if req.query.get("pageToken"):
        try:
            start = int(base64.urlsafe_b64decode(req.query["pageToken"].encode()).decode())
        except ValueError:
            raise ApiError(400, "Invalid page token.", reason="badRequest", status="INVALID_ARGUMENT")
    end = start + size
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(rows) else None
    return rows[start:end], token


def register(app):
    r = Run(app)
    app.run = r
    base = "run.projects.locations.jobs."
    app.handle(base + "create", r.create)
    app.handle(base + "get", r.get)
    app.handle(base + "list", r.list)
    app.handle(base + "patch", r.patch)
    app.handle(base + "delete", r.delete)
    app.handle(base + "run", r.run)
    app.handle(base + "executions.get", r.execution_get)
    app.handle(base + "executions.list", r.execution_list)
    app.handle(base + "executions.cancel", r.execution_cancel)
    app.handle(base + "executions.delete", r.execution_delete)
    app.handle(base + "executions.tasks.get", r.task_get)
    app.handle(base + "executions.tasks.list", r.task_list)
    ops = "run.projects.locations.operations."
    app.handle(ops + "get", r.op_get)
    app.handle(ops + "wait", r.op_wait)
    app.handle(ops + "list", r.op_list)
    app.handle(ops + "delete", r.op_delete)
