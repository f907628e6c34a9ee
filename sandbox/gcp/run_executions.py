"""Cloud Run executions that run: each task's container as a local process, with Cloud Run's status and retries.

A task's container is mapped to a local argv by sandbox/images.py (only Prefect's official images can run; any other
image fails the execution with the reason, as an image Cloud Run cannot pull would). The process gets the container's
env, with `secretKeyRef` values read from Secret Manager as the job's runtime service account — when that account
may not read the secret, the execution fails before any container starts, as Cloud Run's secrets check does — plus
the variables Cloud Run sets (CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT,
CLOUD_RUN_TASK_COUNT) and an egress proxy (sandbox/egress.py) that sends its traffic from the address GCP would.

Each attempt may run for the task's `timeout`; a task is retried up to `maxRetries` times; at most `parallelism`
tasks run at once. Output goes to `<state dir>/run/logs/<execution>.log` (`python -m sandbox logs`).
"""

from __future__ import annotations

import base64
import collections
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

from ..egress import EgressProxy, decide_source
from ..images import ImageError, local_argv
from .app import now_rfc3339


class SecretDenied(Exception):
    pass


def logs_dir(state_dir):
    return os.path.join(state_dir, "run", "logs")


def log_path(state_dir, execution_name):
    return os.path.join(logs_dir(state_dir), "%s.log" % execution_name.rsplit("/", 1)[-1])


def _etag():
    return base64.b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class ExecutionRunner:
    def __init__(self, run, job, execution, op):
        self.run = run
        self.sandbox = run.sandbox
        self.job = job
        self.execution = execution
        self.op = op
        self.name = execution["name"]
        self.exec_id = self.name.rsplit("/", 1)[-1]
        parts = self.name.split("/")
        self.project, self.location = parts[1], parts[3]
        self.lock = threading.Lock()
        self.log_file = log_path(self.sandbox.config.state_dir, self.name)
        os.makedirs(os.path.dirname(self.log_file), exist_ok=True)
        self.work_dir = os.path.join(self.sandbox.config.state_dir, "run", "tasks", self.exec_id)
        self.tasks = []
        self.denials = []  # what Cloudflare Access refused this execution's traffic, for the failure message
        self.procs = set()
        self.cancelled = False
        self.done = threading.Event()
        self.started = time.monotonic()

    # ---- log ----------------------------------------------------------------------------
    def log(self, line, who="execution"):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.lock:
            with open(self.log_file, "a", encoding="utf-8") as fh:
                fh.write("%s %s | %s\n" % (stamp, who, line.rstrip("\n")))

    def egress_log(self, line):
        self.log(line, "egress")
        if " -> 403" in line:
            self.denials.append(line.split(": ", 1)[-1])

    # ---- tasks --------------------------------------------------------------------------
    def new_task(self, index):
        tmpl = self.execution["template"]
        now = now_rfc3339()
        task_id = "%s-task%d" % (self.exec_id, index)
        row = {
            "name": "%s/tasks/%s" % (self.name, task_id), "uid": str(uuid.uuid4()), "generation": "1",
            "observedGeneration": "1", "labels": dict(self.execution.get("labels") or {}),
            "annotations": dict(self.execution.get("annotations") or {}), "createTime": now, "updateTime": now,
            "job": self.execution["job"], "execution": self.exec_id, "containers": tmpl["containers"],
            "maxRetries": tmpl.get("maxRetries", 3), "timeout": tmpl.get("timeout", "600s"),
            "serviceAccount": tmpl.get("serviceAccount"), "executionEnvironment": tmpl.get("executionEnvironment"),
            "reconciling": True, "index": index, "retried": 0, "etag": _etag(), "logUri": self.execution["logUri"],
            "conditions": [{"type": "Started", "state": "CONDITION_PENDING", "lastTransitionTime": now},
                           {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": now}],
        }
        for field in ("volumes", "vpcAccess"):
            if tmpl.get(field):
                row[field] = tmpl[field]
        return {k: v for k, v in row.items() if v is not None}

    def set_condition(self, row, ctype, state, message=None, **extra):
        now = now_rfc3339()
        cond = {"type": ctype, "state": state, "lastTransitionTime": now}
        if message:
            cond["message"] = message
        if state == "CONDITION_FAILED":
            cond["severity"] = "ERROR"
        cond.update(extra)
        row["conditions"] = [c for c in row["conditions"] if c["type"] != ctype] + [cond]
        row["updateTime"] = now
        row["etag"] = _etag()

    def counts(self):
        ex = self.execution
        with self.lock:
            ex["runningCount"] = sum(1 for t in self.tasks if t.get("_state") == "running")
            ex["succeededCount"] = sum(1 for t in self.tasks if t.get("_state") == "succeeded")
            ex["failedCount"] = sum(1 for t in self.tasks if t.get("_state") == "failed")
            ex["cancelledCount"] = sum(1 for t in self.tasks if t.get("_state") == "cancelled")
            ex["retriedCount"] = sum(t.get("retried", 0) for t in self.tasks)
            ex["updateTime"] = now_rfc3339()
            ex["etag"] = _etag()

    # ---- env ----------------------------------------------------------------------------
    def container_env(self, container, cidx):
        sa = self.execution["template"].get("serviceAccount", "")
        out = {}
        from .secretmanager import latest_payload, may_read_secret

        versions = self.sandbox.store.table("secretmanager.versions")
        number = self.run.app.project_number
        for idx, var in enumerate(container.get("env") or []):
            ref = (var.get("valueSource") or {}).get("secretKeyRef")
            if ref is None:
                out[var["name"]] = var.get("value", "")
                continue
            secret_id = ref["secret"].rsplit("/", 1)[-1]
            version = ref.get("version") or "latest"
            full = "projects/%s/secrets/%s/versions/%s" % (number, secret_id, version)
            if not may_read_secret(self.sandbox, self.project, secret_id, sa):
                raise SecretDenied(
                    "spec.template.spec.containers[%d].env[%d].value_from.secret_key_ref.name: Permission denied on "
                    "secret: %s for the job's service account %s. The service account used must be granted the "
                    "'Secret Manager Secret Accessor' role (roles/secretmanager.secretAccessor) at the secret, "
                    "project or higher level." % (cidx, idx, full, sa or "(none)"))
            if version == "latest":
                payload = latest_payload(self.sandbox, self.project, secret_id)
            else:
                row = versions.get("projects/%s/secrets/%s/versions/%s" % (number, secret_id, version)) or {}
                payload = base64.b64decode(row["_payload"]) if row.get("state") == "ENABLED" else None
            if payload is None:
                raise SecretDenied("spec.template.spec.containers[%d].env[%d].value_from.secret_key_ref: Secret %s "
                                   "was not found or is not enabled." % (cidx, idx, full))
            out[var["name"]] = payload.decode("utf-8", "replace")
        return out

    # ---- the run ------------------------------------------------------------------------
    def start(self):
        threading.Thread(target=self.main, name="run-%s" % self.exec_id, daemon=True).start()

    def main(self):
        try:
            self._main()
        except Exception as exc:  # noqa: BLE001 - the execution fails, the sandbox goes on
            self.finish("Execution %s failed in the sandbox: %s" % (self.exec_id, exc), reason=None)

    def _main(self):
        ex = self.execution
        tmpl = ex["template"]
        count = int(ex["taskCount"])
        self.log("execution %s of job %s: %d task(s), parallelism %s, image %s" % (
            self.exec_id, ex["job"], count, ex.get("parallelism") or count, tmpl["containers"][0].get("image")))
        with self.lock:
            self.tasks = [self.new_task(i) for i in range(count)]
            for t in self.tasks:
                self.run.tasks[t["name"]] = t
        if len(tmpl["containers"]) > 1:
            return self.fail_all("The sandbox runs one container per task; this template has %d (sidecars are not "
                                 "emulated)." % len(tmpl["containers"]), reason=None)
        container = tmpl["containers"][0]
        try:
            env = self.container_env(container, 0)
        except SecretDenied as exc:
            return self.fail_all(str(exc), reason="SECRETS_ACCESS_CHECK_FAILED")
        try:
            argv = local_argv(container.get("image"), container.get("command"), container.get("args"), env)
        except ImageError as exc:
            return self.fail_all("Image '%s' not found: %s" % (container.get("image"), exc), reason="CONTAINER_MISSING")
        # Cloud Run takes a while to provision an execution's instances before any container starts.
        time.sleep(self.sandbox.config.duration("run.job"))
        source, why = decide_source(self.sandbox, self.project, self.location, tmpl)
        self.log("egress from %s: %s" % (source, why))
        self.set_condition(ex, "ResourcesAvailable", "CONDITION_SUCCEEDED", "Provisioned imported containers.")
        self.set_condition(ex, "Started", "CONDITION_SUCCEEDED", "Started deployed execution.")
        ex["reconciling"] = True
        proxy = EgressProxy(self.sandbox, source, self.egress_log)
        try:
            slots = threading.Semaphore(int(ex.get("parallelism") or count) or count)
            threads = []
            for task in self.tasks:
                th = threading.Thread(target=self.run_task, args=(task, argv, env, proxy, slots), daemon=True)
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
        finally:
            proxy.stop()
        failed = [t for t in self.tasks if t["_state"] != "succeeded"]
        if self.cancelled:
            self.finish("The execution was cancelled.", reason=None)
        elif not failed:
            self.finish(None)
        else:
            first = failed[0]
            self.finish("Task %s failed with message: %s" % (first["name"].rsplit("/", 1)[-1], first["_message"]),
                        reason=None)

    def run_task(self, task, argv, env, proxy, slots):
        tmpl = self.execution["template"]
        attempts = int(tmpl.get("maxRetries", 3)) + 1
        timeout = float(str(tmpl.get("timeout", "600s"))[:-1])
        with slots:
            for attempt in range(attempts):
                if self.cancelled:
                    task["_state"] = "cancelled"
                    task["_message"] = "The task was cancelled."
                    break
                with self.lock:
                    task["_state"] = "running"
                    task["retried"] = attempt
                    task.setdefault("startTime", now_rfc3339())
                self.set_condition(task, "Started", "CONDITION_SUCCEEDED")
                self.counts()
                ok, result, message = self.attempt(task, attempt, argv, env, proxy, timeout)
                task["lastAttemptResult"] = result
                if ok:
                    task["_state"] = "succeeded"
                    break
                task["_message"] = message
                if attempt + 1 < attempts:
                    self.log("attempt %d failed (%s); retrying" % (attempt, message), self.who(task, attempt))
                    self.set_condition(task, "Retry", "CONDITION_SUCCEEDED", "System will retry after 0:00:00 from "
                                       "lastTransitionTime for attempt %d." % (attempt + 1), reason="IMMEDIATE_RETRY")
                    self.counts()
                else:
                    task["_state"] = "failed"
        if self.cancelled and task.get("_state") != "succeeded":
            task["_state"] = "cancelled"
            task["_message"] = "The task was cancelled."
        now = now_rfc3339()
        task.update({"completionTime": now, "reconciling": False})
        if task["_state"] == "succeeded":
            self.set_condition(task, "Completed", "CONDITION_SUCCEEDED", "Task completed successfully.")
        else:
            self.set_condition(task, "Completed", "CONDITION_FAILED", task["_message"])
        self.counts()

    def who(self, task, attempt):
        return "task%d attempt%d" % (task["index"], attempt)

    def attempt(self, task, attempt, argv, env, proxy, timeout):
        who = self.who(task, attempt)
        home = os.path.join(self.work_dir, "task%d-attempt%d" % (task["index"], attempt))
        os.makedirs(home, exist_ok=True)
        bindir = os.path.dirname(argv[0]) if os.path.isabs(argv[0]) else ""
        penv = {"PATH": ":".join(p for p in (bindir, "/usr/local/bin", "/usr/bin", "/bin") if p), "HOME": home,
                "LANG": "C.UTF-8"}
        penv.update(proxy.trust_env())
        penv.update(env)
        penv.update({"CLOUD_RUN_JOB": self.execution["job"], "CLOUD_RUN_EXECUTION": self.exec_id,
                     "CLOUD_RUN_TASK_INDEX": str(task["index"]), "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
                     "CLOUD_RUN_TASK_COUNT": str(self.execution["taskCount"])})
        penv.update(proxy.env())
        self.log("starting %s" % argv[0].rsplit("/", 1)[-1], who)
        tail = collections.deque(maxlen=5)
        try:
            proc = subprocess.Popen(argv, env=penv, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            message = "The container could not start: %s" % exc
            self.log(message, who)
            return False, {"exitCode": 127, "status": {"code": 2, "message": message}}, message
        self.sandbox.children.append(proc)
        with self.lock:
            self.procs.add(proc)
        if self.cancelled:
            self.kill(proc)

        def pump():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                tail.append(line)
                self.log(line, who)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        reader.join(5)
        try:
            self.sandbox.children.remove(proc)
        except ValueError:
            pass
        with self.lock:
            self.procs.discard(proc)
        shutil.rmtree(home, ignore_errors=True)
        code = proc.returncode
        if timed_out:
            message = "The configured timeout was reached (%ss)." % ("%g" % timeout)
            self.log(message, who)
            return False, {"termSignal": 9, "status": {"code": 4, "message": message}}, message
        if code == 0:
            self.log("exited 0", who)
            return True, {"exitCode": 0}, None
        message = "The container exited with an error (exit code %s)." % code
        last = [line for line in tail if line.strip()]
        if last:
            message += " Last output: %s" % last[-1].strip()[:400]
        if self.denials:
            message += " Cloudflare Access refused this task's traffic: %s." % self.denials[-1]
        self.log(message, who)
        result = {"exitCode": code, "status": {"code": 2, "message": message}} if code >= 0 else \
            {"termSignal": -code, "status": {"code": 2, "message": message}}
        return False, result, message

    # ---- the end ------------------------------------------------------------------------
    @staticmethod
    def kill(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def cancel(self):
        """Stop every running attempt and start no other (executions.cancel/delete, job delete)."""
        self.cancelled = True
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            self.kill(proc)

    def fail_all(self, message, reason):
        self.log(message)
        for task in self.tasks:
            task.update({"_state": "failed", "_message": message, "reconciling": False,
                         "completionTime": now_rfc3339()})
            extra = {"reason": reason} if reason else {}
            self.set_condition(task, "Completed", "CONDITION_FAILED", message, **extra)
        self.set_condition(self.execution, "ResourcesAvailable", "CONDITION_FAILED", message,
                           **({"reason": reason} if reason else {}))
        self.finish(message, reason=reason)

    def finish(self, failure, reason=None):
        self.counts()
        ex = self.execution
        now = now_rfc3339()
        total = int(ex["taskCount"])
        ex.update({"completionTime": now, "reconciling": False, "runningCount": 0})
        seconds = time.monotonic() - self.started
        if failure is None:
            self.set_condition(ex, "Completed", "CONDITION_SUCCEEDED",
                               "Execution completed successfully in %.2fs." % seconds)
            status = "EXECUTION_SUCCEEDED"
        else:
            message = "Execution %s has failed to complete, %d/%d tasks were a success. %s" % (
                self.exec_id, ex.get("succeededCount", 0), total, failure)
            if self.cancelled:
                extra, status = {"executionReason": "CANCELLED"}, "EXECUTION_CANCELLED"
            else:
                extra = {"reason": reason} if reason else {"executionReason": "NON_ZERO_EXIT_CODE"}
                status = "EXECUTION_FAILED"
            self.set_condition(ex, "Completed", "CONDITION_FAILED", message, **extra)
        latest = self.job.get("latestCreatedExecution") or {}
        if latest.get("name") == self.name:
            latest.update({"completionStatus": status, "completionTime": now})
        self.log("%s: %s" % (status, next(c for c in ex["conditions"] if c["type"] == "Completed")["message"]))
        # The run operation ends with the execution, as Cloud Run's does.
        self.op.end = time.monotonic()
        self.done.set()


def task_view(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}

