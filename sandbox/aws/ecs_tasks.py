"""ECS Fargate tasks run for real: for every ACTIVE service with desiredCount > 0 in the AWS stand-in, its task
definition's container runs as a local process, as the sandbox runs Cloud Run executions.

What ECS does before a container starts is checked as ECS does it: the execution role must exist, be assumable by
ecs-tasks.amazonaws.com and allow secretsmanager:GetSecretValue on each secret the container names (else the task
stops with ResourceInitializationError and nothing runs); each secret's JSON key must exist. The image is not pulled:
a container whose command starts with `prefect` runs this environment's Prefect (the image's own release), anything
else is refused. Processes get offline_env(): only loopback is ever dialled.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import threading

from ..kube.releases import offline_env


class TaskStartError(Exception):
    pass


def _statements(document):
    doc = json.loads(document) if isinstance(document, str) else document
    stmts = doc.get("Statement", [])
    return stmts if isinstance(stmts, list) else [stmts]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _allows(statements, action, resource):
    allowed = False
    for stmt in statements:
        actions = [a.lower() for a in _as_list(stmt.get("Action", []))]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(stmt.get("Resource", []))):
            continue
        if stmt.get("Effect") == "Deny":
            return False
        allowed = allowed or stmt.get("Effect") == "Allow"
    return allowed


class EcsTaskRunner:
    def __init__(self, standin, state_dir, interval=1.0):
        self.standin = standin
        self.state_dir = state_dir
        self.interval = interval
        self.tasks = {}  # service ARN -> (task definition ARN, Popen)
        self.stopped_reasons = {}  # service ARN -> why its task did not start
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    # ---- what ECS checks before the container starts -----------------------------------------------------------
    def _role_statements(self, role_arn):
        iam = self.standin.client("iam")
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            raise TaskStartError("ResourceInitializationError: execution role %s does not exist" % role_arn)
        trust = _statements(role["AssumeRolePolicyDocument"])
        if not any(s.get("Effect") == "Allow" and "ecs-tasks.amazonaws.com" in _as_list(
                (s.get("Principal") or {}).get("Service", [])) for s in trust):
            raise TaskStartError("ResourceInitializationError: ECS cannot assume %s (its trust policy does not name "
                                 "ecs-tasks.amazonaws.com)" % role_arn)
        out = []
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            out.extend(_statements(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]))
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            meta = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=meta["DefaultVersionId"])
            out.extend(_statements(version["PolicyVersion"]["Document"]))
        return out

    def _secret_value(self, statements, role_arn, value_from):
        parts = value_from.split(":")
        secret_arn, key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
        if not _allows(statements, "secretsmanager:GetSecretValue", secret_arn):
            raise TaskStartError("ResourceInitializationError: unable to pull secrets: %s is not authorized to "
                                 "perform secretsmanager:GetSecretValue on %s" % (role_arn, secret_arn))
        sm = self.standin.client("secretsmanager")
        value = sm.get_secret_value(SecretId=secret_arn)["SecretString"]
        if not key:
            return value
        data = json.loads(value)
        if key not in data:
            raise TaskStartError("ResourceInitializationError: secret %s has no JSON key %s" % (secret_arn, key))
        return data[key]

    def container_env(self, taskdef):
        container = taskdef["containerDefinitions"][0]
        env = {e["name"]: e["value"] for e in container.get("environment", [])}
        if container.get("secrets"):
            role_arn = taskdef.get("executionRoleArn")
            if not role_arn:
                raise TaskStartError("ResourceInitializationError: the task definition names secrets but no "
                                     "execution role")
            statements = self._role_statements(role_arn)
            for secret in container["secrets"]:
                env[secret["name"]] = self._secret_value(statements, role_arn, secret["valueFrom"])
        return env

    def _command(self, container):
        command = list(container.get("entryPoint") or []) + list(container.get("command") or [])
        if not command or command[0] != "prefect":
            raise TaskStartError("CannotStartContainerError: the sandbox runs Prefect containers only, not %r"
                                 % (command[:1],))
        return [sys.executable, "-m", "prefect"] + command[1:]

    # ---- reconcile ----------------------------------------------------------------------------------------------
    def wanted(self):
        """{service ARN: task definition ARN} of every ACTIVE service that wants tasks."""
        ecs = self.standin.client("ecs")
        out = {}
        for cluster in ecs.list_clusters()["clusterArns"]:
            arns = ecs.list_services(cluster=cluster)["serviceArns"]
            if not arns:
                continue
            for svc in ecs.describe_services(cluster=cluster, services=arns)["services"]:
                if svc.get("status") == "ACTIVE" and svc.get("desiredCount", 0) > 0:
                    out[svc["serviceArn"]] = svc["taskDefinition"]
        return out

    def _start(self, service_arn, taskdef_arn):
        ecs = self.standin.client("ecs")
        taskdef = ecs.describe_task_definition(taskDefinition=taskdef_arn)["taskDefinition"]
        container = taskdef["containerDefinitions"][0]
        command = self._command(container)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
        env.update(offline_env())
        home = os.path.join(self.state_dir, "ecs", service_arn.rsplit("/", 1)[-1])
        os.makedirs(home, exist_ok=True)
        env.update({"PREFECT_HOME": home, "PYTHONUNBUFFERED": "1"})
        env.update(self.container_env(taskdef))
        log = open(os.path.join(home, "task.log"), "ab")
        try:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
                                    start_new_session=True)
        finally:
            log.close()
        return proc

    @staticmethod
    def _kill(proc):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def sync(self):
        wanted = self.wanted()
        with self._lock:
            for service_arn, (taskdef_arn, proc) in list(self.tasks.items()):
                if wanted.get(service_arn) != taskdef_arn or proc.poll() is not None:
                    self._kill(proc)
                    del self.tasks[service_arn]
            for service_arn, taskdef_arn in wanted.items():
                if service_arn in self.tasks:
                    continue
                try:
                    self.tasks[service_arn] = (taskdef_arn, self._start(service_arn, taskdef_arn))
                    self.stopped_reasons.pop(service_arn, None)
                except TaskStartError as exc:
                    self.stopped_reasons[service_arn] = str(exc)

    def start(self):
        def loop():
            while not self._stop.wait(self.interval):
                try:
                    self.sync()
                except Exception:  # noqa: BLE001 - the stand-in restarting or a transient error: try again
                    pass

        self.sync()
        self._thread = threading.Thread(target=loop, name="ecs-tasks", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            for _taskdef_arn, proc in self.tasks.values():
                self._kill(proc)
            self.tasks.clear()
