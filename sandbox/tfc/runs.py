"""Runs: the HCP Terraform run state machine, stepped by the sandbox's timed operations.

pending -> plan_queued -> planning -> planned -> [confirmed] -> apply_queued -> applying -> applied, or
planned_and_finished (plan-only or no changes), errored (the configuration does not parse, a variable
has no value, no agent of an agent-mode workspace's pool became idle in time), discarded, canceled.
One non-speculative run is active per workspace at a time; later ones wait in `pending`.
"""

from __future__ import annotations

import itertools
import secrets
import time

from ..web import ApiError, Response
from . import hcl
from .common import API, invalid, now_iso, rid
from .workspaces import find_ws

FINAL = ("applied", "planned_and_finished", "errored", "discarded", "canceled", "force_canceled")
CANCELABLE = ("pending", "plan_queued", "planning", "confirmed", "apply_queued", "applying")
QUEUE_DELAY = 2.0  # realistic seconds between a run's queue states, scaled by the time scale
AGENT_WAIT = 600.0  # realistic seconds a job waits for an idle agent before the run errors
_SEQ = itertools.count()


class RunEngine:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.lock = app.lock

    # ---- helpers ---------------------------------------------------------------------------
    def scaled(self, seconds):
        return seconds * self.sandbox.config.time_scale

    def _schedule(self, run, kind, seconds, fn):
        gen = run["gen"]
        run_id = run["id"]

        def step():
            with self.lock:
                current = self.app.runs.get(run_id)
                if current is None or current["gen"] != gen or current["status"] in FINAL:
                    return
                fn(current)

        self.sandbox.ops.start(kind, on_done=step, resource=run_id, duration=seconds)

    def _set(self, run, status, ts_key=None):
        run["status"] = status
        run["ts"][(ts_key or status.replace("_", "-")) + "-at"] = now_iso()

    def _log(self, run, phase, *lines):
        run["log"][phase].extend(lines)

    def _find(self, req):
        run = self.app.runs.get(req.params["id"])
        if run is None:
            raise ApiError(404, None, reason="not found")
        return run

    def _ws(self, run):
        return self.app.workspaces.get(run["ws_id"]) or {}

    # ---- creating and queueing -----------------------------------------------------------------
    def create(self, req):
        data = req.json["data"]
        if data.get("type") != "runs":
            raise invalid("type must be runs", "/data/type")
        attrs = data.get("attributes") or {}
        rels = data.get("relationships") or {}
        ws_ref = ((rels.get("workspace") or {}).get("data") or {})
        if not ws_ref.get("id"):
            raise invalid("Workspace is required: set relationships.workspace", "/data/relationships/workspace")
        with self.lock:
            ws = self.app.workspaces.get(ws_ref["id"])
            if ws is None:
                raise ApiError(404, None, reason="not found")
            if ws["execution-mode"] == "local":
                raise invalid("Runs cannot be queued in workspace %s: its execution mode is 'local'" % ws["name"],
                              "/data/relationships/workspace", status=409, title="conflict")
            cv_ref = ((rels.get("configuration-version") or {}).get("data") or {})
            cv_id = cv_ref.get("id") or ws.get("current_cv")
            if not cv_id:
                raise invalid("Workspace %s has no configuration version: upload one before queueing a run"
                              % ws["name"], "/data/relationships/configuration-version")
            cv = self.app.cvs.get(cv_id)
            if cv is None or cv["ws_id"] != ws["id"]:
                raise ApiError(404, None, reason="not found")
            if cv["status"] == "pending":
                raise invalid("Configuration version %s is still pending: PUT the configuration to its upload-url "
                              "first" % cv_id, "/data/relationships/configuration-version")
            if cv["status"] != "uploaded":
                raise invalid("Configuration version %s is %s: %s" % (cv_id, cv["status"], cv.get("error_message")),
                              "/data/relationships/configuration-version")
            plan_only = bool(attrs.get("plan-only")) or cv["speculative"]
            if attrs.get("terraform-version") and not plan_only:
                raise invalid("terraform-version can only be set for plan-only runs", "/data/attributes/terraform-version")
            variables = attrs.get("variables") or []
            for item in variables:
                if not isinstance(item, dict) or not item.get("key"):
                    raise invalid("Run variables need a key and an HCL value", "/data/attributes/variables")
            run = self.queue(ws, cv, message=attrs.get("message") or "Triggered via API", plan_only=plan_only,
                             auto_apply=attrs.get("auto-apply"), is_destroy=bool(attrs.get("is-destroy")),
                             refresh=attrs.get("refresh", True), refresh_only=bool(attrs.get("refresh-only")),
                             allow_empty_apply=bool(attrs.get("allow-empty-apply")),
                             target_addrs=attrs.get("target-addrs"), replace_addrs=attrs.get("replace-addrs"),
                             variables=variables)
            return self.app.doc({"data": self.render(run)}, 201)

    def queue(self, ws, cv, message, plan_only=False, auto_apply=None, **extra):
        with self.lock:
            run = {"id": rid("run"), "ws_id": ws["id"], "cv_id": cv["id"], "message": message,
                   "plan_only": bool(plan_only), "auto_apply": ws["auto-apply"] if auto_apply is None else bool(auto_apply),
                   "is_destroy": False, "refresh": True, "refresh_only": False, "allow_empty_apply": False,
                   "target_addrs": None, "replace_addrs": None, "variables": [], "status": "pending",
                   "ts": {"plan-queueable-at": now_iso()}, "created": now_iso(), "has_changes": False, "gen": 0,
                   "agent_id": None, "waiting": None, "canceled_at": None, "confirmed": False,
                   "plan": {"id": rid("plan"), "status": "pending", "log": secrets.token_urlsafe(18),
                            "add": 0, "change": 0, "destroy": 0, "ts": {}},
                   "apply": {"id": rid("apply"), "status": "unreachable", "log": secrets.token_urlsafe(18),
                             "add": 0, "change": 0, "destroy": 0, "ts": {}},
                   "log": {"plan": [], "apply": []}, "planned_state": None, "seq": next(_SEQ)}
            run.update({k: v for k, v in extra.items() if v is not None})
            self.app.runs[run["id"]] = run
            self.app.logs[run["plan"]["log"]] = (run["id"], "plan")
            self.app.logs[run["apply"]["log"]] = (run["id"], "apply")
            ws["latest_run"] = run["id"]
            ws["runs_count"] = ws.get("runs_count", 0) + 1
        # As in HCP Terraform, the run is `pending` when created and is picked up a moment later.
        ws_id = ws["id"]
        self.sandbox.ops.start("tfc.queue", on_done=lambda: self.kick(ws_id), resource=run["id"],
                               duration=self.scaled(QUEUE_DELAY))
        return run

    def kick(self, ws_id):
        """Start what can start: plan-only runs at once, the oldest pending run when none is active."""
        with self.lock:
            runs = sorted((r for r in self.app.runs.values() if r["ws_id"] == ws_id), key=lambda r: r["seq"])
            for run in runs:
                if run["status"] == "pending" and run["plan_only"]:
                    self._start(run)
            active = any(r["status"] not in FINAL and r["status"] != "pending" and not r["plan_only"] for r in runs)
            if active:
                return
            nxt = next((r for r in runs if r["status"] == "pending" and not r["plan_only"]), None)
            if nxt is not None:
                self._ws(nxt)["current_run"] = nxt["id"]
                self._start(nxt)

    def _start(self, run):
        self._set(run, "plan_queued")
        run["plan"]["status"] = "queued"
        self._schedule(run, "tfc.queue", self.scaled(QUEUE_DELAY), lambda r: self._begin(r, "plan"))

    # ---- agents ----------------------------------------------------------------------------------
    def _acquire(self, run):
        ws = self._ws(run)
        if ws.get("execution-mode") != "agent":
            return True
        for agent in sorted(self.app.agents.values(), key=lambda a: a["created"]):
            if agent["pool_id"] == ws.get("agent_pool_id") and agent["status"] == "idle":
                agent["status"] = "busy"
                agent["busy_with"] = run["id"]
                run["agent_id"] = agent["id"]
                return True
        return False

    def _release(self, run):
        agent = self.app.agents.get(run.get("agent_id") or "")
        run["agent_id"] = None
        if agent is not None and agent.get("busy_with") == run["id"]:
            agent["busy_with"] = None
            if agent["status"] == "busy":
                agent["status"] = "idle"
                self.agents_changed()

    def agents_changed(self):
        with self.lock:
            waiting = sorted((r for r in self.app.runs.values() if r.get("waiting") and r["status"] not in FINAL),
                             key=lambda r: r["seq"])
            for run in waiting:
                phase = run["waiting"]
                if self._acquire(run):
                    run["waiting"] = None
                    self._run_phase(run, phase)

    def agent_lost(self, run_id, agent):
        with self.lock:
            run = self.app.runs.get(run_id)
            if run is None or run["status"] in FINAL:
                return
            phase = "apply" if run["status"] in ("applying", "apply_queued") else "plan"
            self._error(run, phase, "Error: the agent %s running this job exited before it finished" % agent["name"])

    # ---- phases ------------------------------------------------------------------------------------
    def _begin(self, run, phase):
        if self._acquire(run):
            self._run_phase(run, phase)
            return
        ws = self._ws(run)
        pool = self.app.pools.get(ws.get("agent_pool_id") or "") or {}
        run["waiting"] = phase
        self._log(run, phase, "Waiting for an idle agent in agent pool %s ..." % pool.get("name", "?"))
        wait = self.scaled(AGENT_WAIT)

        def timeout(r):
            if r.get("waiting") == phase:
                r["waiting"] = None
                self._error(r, phase, "Error: no agent of agent pool %s became idle within %.0f s. Start an agent "
                            "with a token of this pool (tfc_agent_token) and check tfc_agent_info."
                            % (pool.get("name", "?"), AGENT_WAIT))

        self._schedule(run, "tfc.agent_wait", wait, timeout)

    def _run_phase(self, run, phase):
        ws = self._ws(run)
        agent = self.app.agents.get(run.get("agent_id") or "")
        where = "agent %s" % agent["name"] if agent else "HCP Terraform"
        if phase == "plan":
            self._set(run, "planning")
            run["plan"]["status"] = "running"
            self._log(run, "plan", "Terraform v%s on linux_amd64 (%s)" % (ws.get("terraform-version", "1.9.8"), where),
                      "Initializing plugins and modules...")
            self._schedule(run, "tfc.plan", self.sandbox.config.duration("tfc.plan"), self._finish_plan)
        else:
            self._set(run, "applying")
            run["apply"]["status"] = "running"
            self._log(run, "apply", "Terraform v%s on linux_amd64 (%s)" % (ws.get("terraform-version", "1.9.8"), where))
            self._schedule(run, "tfc.apply", self.sandbox.config.duration("tfc.apply"), self._finish_apply)

    def _values(self, run, config):
        ws_vars = [v for v in self.app.vars.values() if v["ws_id"] == run["ws_id"] and v["category"] == "terraform"]
        values = {}
        for v in ws_vars:
            if v["key"] in config.variables:
                values[v["key"]] = hcl.typed_value(v["value"], v["hcl"])
        for item in run["variables"] or []:
            if item["key"] in config.variables:
                values[item["key"]] = hcl.typed_value(item.get("value") or "", True)
        return values

    def _finish_plan(self, run):
        ws = self._ws(run)
        cv = self.app.cvs.get(run["cv_id"]) or {}
        self._release(run)
        try:
            config = hcl.Config(cv.get("files") or {})
            values = config.resolve_variables(self._values(run, config))
            outputs = {} if run["is_destroy"] else config.evaluate_outputs(values)
            resources = {} if run["is_destroy"] else config.resource_hashes(values)
        except hcl.HclError as err:
            self._error(run, "plan", err.render())
            return
        state = ws.get("state") or {"resources": {}, "outputs": {}}
        old = state["resources"]
        add = sorted(set(resources) - set(old))
        change = sorted(a for a in resources if a in old and old[a] != resources[a])
        destroy = sorted(set(old) - set(resources))
        outputs_changed = state["outputs"] != outputs
        run["plan"].update({"add": len(add), "change": len(change), "destroy": len(destroy)})
        run["has_changes"] = bool(add or change or destroy or outputs_changed)
        run["planned_state"] = {"resources": resources, "outputs": outputs}
        for address in add:
            self._log(run, "plan", "  # %s will be created" % address)
        for address in change:
            self._log(run, "plan", "  # %s will be updated in-place" % address)
        for address in destroy:
            self._log(run, "plan", "  # %s will be destroyed" % address)
        if run["has_changes"]:
            self._log(run, "plan", "Plan: %d to add, %d to change, %d to destroy." % (len(add), len(change), len(destroy)))
            if outputs_changed:
                self._log(run, "plan", "Changes to Outputs: %s" % ", ".join(sorted(
                    set(outputs) ^ set(state["outputs"]) | {k for k in outputs if state["outputs"].get(k) != outputs[k]})))
        else:
            self._log(run, "plan", "No changes. Your infrastructure matches the configuration.")
        run["plan"]["status"] = "finished"
        if run["plan_only"] or not run["has_changes"]:
            self._set(run, "planned_and_finished")
            self._done(run)
            return
        self._set(run, "planned")
        if run["auto_apply"]:
            self._confirm(run, auto=True)

    def _confirm(self, run, auto=False):
        self._set(run, "confirmed")
        run["confirmed"] = True
        run["apply"]["status"] = "pending"
        self._log(run, "apply", "Apply confirmed%s." % (" (auto-apply)" if auto else ""))

        def queue_apply(r):
            self._set(r, "apply_queued")
            r["apply"]["status"] = "queued"
            self._schedule(r, "tfc.queue", self.scaled(QUEUE_DELAY), lambda r2: self._begin(r2, "apply"))

        self._schedule(run, "tfc.queue", self.scaled(QUEUE_DELAY), queue_apply)

    def _finish_apply(self, run):
        ws = self._ws(run)
        self._release(run)
        planned = run["planned_state"]
        ws["state"] = planned
        ws["sv_id"] = rid("sv")
        for key in [k for k, o in self.app.outputs.items() if o["ws_id"] == ws["id"]]:
            self.app.outputs.pop(key, None)
        for name, out in sorted(planned["outputs"].items()):
            kind, detailed = hcl.type_of(out["value"])
            oid = rid("wsout")
            self.app.outputs[oid] = {"id": oid, "ws_id": ws["id"], "sv_id": ws["sv_id"], "name": name,
                                     "sensitive": out["sensitive"], "value": out["value"], "type": kind,
                                     "detailed_type": detailed}
        p = run["plan"]
        run["apply"].update({"add": p["add"], "change": p["change"], "destroy": p["destroy"], "status": "finished"})
        self._log(run, "apply", "Apply complete! Resources: %d added, %d changed, %d destroyed."
                  % (p["add"], p["change"], p["destroy"]))
        self._set(run, "applied")
        self._done(run)

    def _error(self, run, phase, text):
        self._release(run)
        run["waiting"] = None
        self._log(run, phase, *text.splitlines())
        run[phase]["status"] = "errored"
        self._set(run, "errored")
        ws = self._ws(run)
        ws["run_failures"] = ws.get("run_failures", 0) + 1
        self._done(run)

    def _done(self, run):
        ws = self._ws(run)
        if ws.get("current_run") == run["id"]:
            ws["current_run"] = None
        self.kick(run["ws_id"])

    # ---- actions -------------------------------------------------------------------------------
    def _conflict(self, run, action):
        return ApiError(409, "The run is %s: it cannot be %s in this state" % (run["status"], action),
                        reason="transition not allowed")

    def apply(self, req):
        with self.lock:
            run = self._find(req)
            if run["status"] != "planned":
                raise self._conflict(run, "applied (only a run paused for confirmation, actions.is-confirmable, can)")
            self._confirm(run)
        return Response(202, None)

    def discard(self, req):
        with self.lock:
            run = self._find(req)
            if run["status"] != "planned":
                raise self._conflict(run, "discarded")
            run["gen"] += 1
            self._set(run, "discarded")
            run["apply"]["status"] = "unreachable"
            self._done(run)
        return Response(202, None)

    def cancel(self, req):
        with self.lock:
            run = self._find(req)
            if run["status"] not in CANCELABLE:
                raise self._conflict(run, "canceled")
            run["gen"] += 1
            run["waiting"] = None
            self._release(run)
            phase = "apply" if run["status"] in ("confirmed", "apply_queued", "applying") else "plan"
            run[phase]["status"] = "canceled"
            self._set(run, "canceled")
            run["canceled_at"] = now_iso()
            self._done(run)
        return Response(202, None)

    # ---- reading ----------------------------------------------------------------------------------
    def actions(self, run):
        s = run["status"]
        return {"is-cancelable": s in CANCELABLE, "is-confirmable": s == "planned", "is-discardable": s == "planned",
                "is-force-cancelable": False}

    def render(self, run):
        api = API
        attrs = {
            "actions": self.actions(run), "canceled-at": run["canceled_at"], "created-at": run["created"],
            "has-changes": run["has_changes"], "auto-apply": run["auto_apply"],
            "allow-empty-apply": run["allow_empty_apply"], "allow-config-generation": False,
            "is-destroy": run["is_destroy"], "message": run["message"], "plan-only": run["plan_only"],
            "source": "tfe-api", "status-timestamps": dict(run["ts"]), "status": run["status"],
            "trigger-reason": "manual", "target-addrs": run["target_addrs"], "replace-addrs": run["replace_addrs"],
            "permissions": {"can-apply": True, "can-cancel": True, "can-comment": True, "can-discard": True,
                            "can-force-execute": True, "can-force-cancel": True, "can-override-policy-check": True},
            "refresh": run["refresh"], "refresh-only": run["refresh_only"], "save-plan": False,
            "variables": [{"key": v["key"], "value": v.get("value")} for v in run["variables"] or []],
            "terraform-version": self._ws(run).get("terraform-version", "1.9.8"),
        }
        base = "%s/runs/%s" % (api, run["id"])
        rels = {
            "workspace": {"data": {"id": run["ws_id"], "type": "workspaces"}},
            "configuration-version": {"data": {"id": run["cv_id"], "type": "configuration-versions"},
                                      "links": {"related": base + "/configuration-version"}},
            "plan": {"data": {"id": run["plan"]["id"], "type": "plans"}, "links": {"related": base + "/plan"}},
            "apply": {"data": {"id": run["apply"]["id"], "type": "applies"}, "links": {"related": base + "/apply"}},
            "created-by": {"data": {"id": self.app.user_id, "type": "users"}},
            "comments": {"data": []}, "run-events": {"data": []}, "policy-checks": {"data": []},
            "task-stages": {"data": []},
        }
        return {"id": run["id"], "type": "runs", "attributes": attrs, "relationships": rels, "links": {"self": base}}

    def show(self, req):
        with self.lock:
            run = self._find(req)
            return self.app.doc({"data": self.render(run)})

    def plan_show(self, req):
        with self.lock:
            run = self._find(req)
            p = run["plan"]
            ws = self._ws(run)
            agent = self.app.agents.get(run.get("agent_id") or "")
            details = None
            if p["status"] not in ("pending", "queued"):
                details = {"mode": ws.get("execution-mode", "remote")}
                if ws.get("execution-mode") == "agent":
                    pool = self.app.pools.get(ws.get("agent_pool_id") or "") or {}
                    details.update({"agent-pool-id": pool.get("id", ""), "agent-pool-name": pool.get("name", "")})
                    if agent:
                        details.update({"agent-id": agent["id"], "agent-name": agent["name"]})
            return self.app.doc({"data": {
                "id": p["id"], "type": "plans",
                "attributes": {"status": p["status"], "has-changes": run["has_changes"],
                               "resource-additions": p["add"], "resource-changes": p["change"],
                               "resource-destructions": p["destroy"], "resource-imports": 0,
                               "execution-details": details, "status-timestamps": {},
                               "log-read-url": "%s/v1/log/%s" % (self.app.base_url(), p["log"])},
                "links": {"self": "%s/plans/%s" % (API, p["id"])}}})

    def list(self, req):
        ws = find_ws(self.app, req)
        with self.lock:
            items = sorted((r for r in self.app.runs.values() if r["ws_id"] == ws["id"]), key=lambda r: r["seq"],
                           reverse=True)
            statuses = req.query.get("filter[status]")
            if statuses:
                wanted = set(statuses.split(","))
                items = [r for r in items if r["status"] in wanted]
            chunk, links, meta = self.app.paginate(req, items, "/workspaces/%s/runs" % ws["id"])
            return self.app.doc({"data": [self.render(r) for r in chunk], "links": links, "meta": meta})

    def log_read(self, req):
        entry = self.app.logs.get(req.params["object"])
        if entry is None:
            return Response(404, "log not found\n", content_type="text/plain")
        run_id, phase = entry
        run = self.app.runs.get(run_id)
        text = "\n".join((run or {}).get("log", {}).get(phase, [])) + "\n"
        return Response(200, text, content_type="text/plain")


def wait_until(predicate, timeout=10.0, interval=0.02):
    """Test helper: poll until predicate() is truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def register(app):
    engine = app.engine = RunEngine(app)
    app.handle("GET", "/v1/log/{object}", engine.log_read, under_api=False)
    app.handle("POST", "/runs", engine.create)
    app.handle("GET", "/runs/{id}", engine.show)
    app.handle("GET", "/runs/{id}/plan", engine.plan_show)
    app.handle("GET", "/workspaces/{ws}/runs", engine.list)
    app.handle("POST", "/runs/{id}/actions/apply", engine.apply)
    # discard and cancel are documented (runs.discard.json, runs.cancel.json) but absent from the
    # OpenAPI file; their body is the same optional comment document as apply's.
    comment = {"type": "object", "additionalProperties": False,
               "properties": {"comment": {"type": ["string", "null"]}}}
    app.handle("POST", "/runs/{id}/actions/discard", engine.discard, schema=comment)
    app.handle("POST", "/runs/{id}/actions/cancel", engine.cancel, schema=comment)
