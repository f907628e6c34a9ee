"""compute v1 securityPolicies (global): Cloud Armor backend security policies.

insert, get, list, delete, patch (never the rules: GCP refuses), addRule, getRule, patchRule, removeRule. Every
write is a global operation and lands when it completes; every landed write gives the policy a new fingerprint.
Rules are kept in priority order. A policy always has its default rule (priority 2147483647, matching every source);
it can be patched (its action) but never removed. A SRC_IPS_V1 rule takes at most 10 ranges, as GCP enforces.

`evaluate(policy, ip)` is how the origin side of the sandbox applies a policy to a client address.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import threading

from ..web import ApiError
from .app import compute_timestamp
from .compute_common import NAME_RE, fingerprint, invalid, link, not_found

DEFAULT_PRIORITY = 2147483647
MAX_SRC_IP_RANGES = 10
DEFAULT_RULE_DESCRIPTION = "Default rule, higher priority overrides it"
# The fingerprint GCP gives an empty label set.
EMPTY_LABEL_FINGERPRINT = "42WmSpB8rSM="
ACTION_RE = re.compile(r"^(allow|deny\((403|404|502)\)|redirect|throttle|rate_based_ban)$")
TABLE = "compute.securityPolicies"


def policy_path(project, name):
    return "projects/%s/global/securityPolicies/%s" % (project, name)


def _is_match_all(rule):
    match = rule.get("match") or {}
    return match.get("versionedExpr") == "SRC_IPS_V1" and (match.get("config") or {}).get("srcIpRanges") == ["*"]


def check_rule(rule, field, policy_type="CLOUD_ARMOR"):
    """Refuse a rule as the API does; return it normalised as the API stores it."""
    priority = int(rule.get("priority", 0))
    if not 0 <= priority <= DEFAULT_PRIORITY:
        raise invalid("Invalid value for field '%s.priority': '%s'. The priority must be between 0 and %d."
                      % (field, priority, DEFAULT_PRIORITY))
    action = rule.get("action")
    if not action:
        raise invalid("Required field '%s.action' not specified" % field, reason="required")
    if not ACTION_RE.match(action):
        raise invalid("Invalid value for field '%s.action': '%s'. Valid actions are allow, deny(403), deny(404), "
                      "deny(502), redirect, throttle and rate_based_ban." % (field, action))
    if action in ("throttle", "rate_based_ban") and not rule.get("rateLimitOptions"):
        raise invalid("Invalid value for field '%s.rateLimitOptions': action '%s' requires rateLimitOptions."
                      % (field, action), reason="required")
    if action not in ("throttle", "rate_based_ban") and rule.get("rateLimitOptions"):
        raise invalid("Invalid value for field '%s.rateLimitOptions': rateLimitOptions cannot be specified for "
                      "action '%s'." % (field, action))
    if action == "redirect" and (policy_type != "CLOUD_ARMOR" or not rule.get("redirectOptions")):
        raise invalid("Invalid value for field '%s.redirectOptions': action 'redirect' requires redirectOptions and "
                      "a policy of type CLOUD_ARMOR." % field)
    match = rule.get("match")
    if not match:
        raise invalid("Required field '%s.match' not specified" % field, reason="required")
    if bool(match.get("versionedExpr")) == bool(match.get("expr")):
        raise invalid("Invalid value for field '%s.match': exactly one of versionedExpr and expr must be specified."
                      % field)
    if match.get("versionedExpr"):
        ranges = (match.get("config") or {}).get("srcIpRanges") or []
        if not ranges:
            raise invalid("Required field '%s.match.config.srcIpRanges' not specified: versionedExpr SRC_IPS_V1 "
                          "needs srcIpRanges." % field, reason="required")
        if len(ranges) > MAX_SRC_IP_RANGES:
            raise invalid("Invalid value for field '%s.match.config.srcIpRanges': %d ranges. The maximum number of "
                          "srcIpRanges allowed in a rule is %d." % (field, len(ranges), MAX_SRC_IP_RANGES))
        for idx, cidr in enumerate(ranges):
            if cidr == "*":
                if len(ranges) > 1:
                    raise invalid("Invalid value for field '%s.match.config.srcIpRanges[%d]': '*' must be the only "
                                  "range of a rule." % (field, idx))
                continue
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise invalid("Invalid value for field '%s.match.config.srcIpRanges[%d]': '%s'. Must be an IP "
                              "address, a CIDR range or '*'." % (field, idx, cidr))
    else:
        if match.get("config"):
            raise invalid("Invalid value for field '%s.match.config': config can only be specified with "
                          "versionedExpr." % field)
        if not (match.get("expr") or {}).get("expression"):
            raise invalid("Required field '%s.match.expr.expression' not specified" % field, reason="required")
    out = copy.deepcopy(rule)
    out["priority"] = priority
    out["kind"] = "compute#securityPolicyRule"
    out.setdefault("preview", False)
    if priority == DEFAULT_PRIORITY and not _is_match_all(out):
        raise invalid("Invalid value for field '%s.match': the default rule (priority %d) must match all traffic "
                      "(versionedExpr SRC_IPS_V1 with srcIpRanges ['*'])." % (field, DEFAULT_PRIORITY))
    return out


def evaluate(policy, ip):
    """The action of the first rule (lowest priority number) matching `ip`; expr rules never match here."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        addr = None
    for rule in sorted(policy.get("rules", []), key=lambda r: r["priority"]):
        if rule.get("preview"):
            continue
        match = rule.get("match") or {}
        if match.get("versionedExpr") != "SRC_IPS_V1":
            continue
        for cidr in (match.get("config") or {}).get("srcIpRanges", []):
            if cidr == "*":
                return rule["action"], rule["priority"]
            if addr is not None:
                try:
                    if addr in ipaddress.ip_network(cidr, strict=False):
                        return rule["action"], rule["priority"]
                except ValueError:
                    continue
    return "allow", None


class SecurityPolicies:
    def __init__(self, app, compute):
        self.app = app
        self.compute = compute
        self.sandbox = app.sandbox
        self.lock = threading.RLock()
        self.pending = set()
        # Callables(policy selfLink) -> the user of the policy or None; the kube family registers its backends.
        self.users = []

    @property
    def table(self):
        return self.sandbox.store.table(TABLE)

    def _current(self, p):
        path = policy_path(p["project"], p["securityPolicy"])
        row = self.table.get(path)
        if row is None:
            raise not_found(path)
        return path, row

    def _op(self, op_type, path, done, on_fail=None):
        return self.compute.operation("compute.securityPolicy", op_type, path, "global", done, on_fail=on_fail)

    # ---- the collection ----------------------------------------------------------------
    def get(self, req, p):
        return copy.deepcopy(self._current(p)[1])

    def list(self, req, p):
        prefix = policy_path(p["project"], "")
        rows = [copy.deepcopy(r) for k, r in sorted(self.table.items()) if k.startswith(prefix)]
        m = re.match(r'^\s*\(?\s*name\s*(=|eq)\s*"?([^")\s]+)"?\s*\)?\s*$', req.query.get("filter", ""))
        if m:
            rows = [r for r in rows if re.fullmatch(m.group(2), r["name"])]
        size = int(req.query.get("maxResults", 500))
        start = int(req.query.get("pageToken") or 0)
        out = {"kind": "compute#securityPolicyList", "id": prefix.rstrip("/"), "items": rows[start:start + size]}
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        return out

    def insert(self, req, p):
        body = req.json
        name = body.get("name") or ""
        if not NAME_RE.match(name):
            raise invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex "
                          "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'" % name)
        for field in ("fingerprint", "id", "selfLink", "creationTimestamp"):
            body.pop(field, None)
        policy_type = body.get("type", "CLOUD_ARMOR")
        if policy_type != "CLOUD_ARMOR" and "rules" in body and any(
                r.get("action") == "redirect" for r in body["rules"]):
            raise invalid("Invalid value for field 'resource.rules': redirect is only supported in policies of type "
                          "CLOUD_ARMOR.")
        rules = [check_rule(r, "resource.rules[%d]" % i, policy_type) for i, r in enumerate(body.get("rules") or [])]
        seen = set()
        for idx, rule in enumerate(rules):
            if rule["priority"] in seen:
                raise invalid("Invalid value for field 'resource.rules[%d].priority': '%d'. Cannot have rules with "
                              "the same priorities." % (idx, rule["priority"]))
            seen.add(rule["priority"])
        if not rules:
            rules = [{"kind": "compute#securityPolicyRule", "description": DEFAULT_RULE_DESCRIPTION,
                      "priority": DEFAULT_PRIORITY, "action": "allow", "preview": False,
                      "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}}]
        elif DEFAULT_PRIORITY not in seen:
            raise invalid("Invalid value for field 'resource.rules': a security policy must have a default rule at "
                          "priority %d that matches all traffic." % DEFAULT_PRIORITY)
        path = policy_path(p["project"], name)
        row = {
            "kind": "compute#securityPolicy", "id": self.sandbox.store.next_id(),
            "creationTimestamp": compute_timestamp(), "name": name, "description": body.get("description", ""),
            "rules": sorted(rules, key=lambda r: r["priority"]), "fingerprint": fingerprint(),
            "selfLink": link(path), "type": policy_type, "labelFingerprint": EMPTY_LABEL_FINGERPRINT,
        }
        for key in ("adaptiveProtectionConfig", "advancedOptionsConfig", "recaptchaOptionsConfig",
                    "ddosProtectionConfig"):
            if key in body:
                row[key] = body[key]
        with self.lock:
            if path in self.table or path in self.pending:
                raise ApiError(409, "The resource '%s' already exists" % path, reason="alreadyExists")
            if req.query.get("validateOnly") == "true":
                return self._op("insert", path, None)
            self.pending.add(path)

        def done():
            with self.lock:
                self.pending.discard(path)
                self.table[path] = row

        def failed():
            # The name is reserved here, not in compute's own pending set: a failed insert frees it.
            with self.lock:
                self.pending.discard(path)

        return self._op("insert", path, done, on_fail=failed)

    def patch(self, req, p):
        path, current = self._current(p)
        body = req.json
        if "rules" in body:
            raise invalid("Invalid value for field 'resource.rules': rules cannot be updated with patch; use addRule, "
                          "patchRule and removeRule.")
        if body.get("fingerprint") is None:
            raise invalid("Required field 'resource.fingerprint' not specified", reason="required")
        if body["fingerprint"] != current["fingerprint"]:
            raise ApiError(412, "Supplied fingerprint does not match current fingerprint.", reason="conditionNotMet")
        if body.get("name") not in (None, current["name"]):
            raise invalid("Invalid value for field 'resource.name': '%s'. The name of a resource cannot be changed."
                          % body["name"])
        if body.get("type") not in (None, current["type"]):
            raise invalid("Invalid value for field 'resource.type': '%s'. The type can be set only at creation."
                          % body["type"])
        cleared = [f.strip() for f in (req.query.get("updateMask") or "").split(",") if f.strip()]
        changes = {k: v for k, v in body.items() if k not in ("fingerprint", "name", "type", "kind", "id",
                                                             "selfLink", "creationTimestamp", "labelFingerprint")}

        def done():
            with self.lock:
                row = self.table.get(path)
                if row is None:
                    return
                for field in cleared:
                    if field == "description":
                        row["description"] = ""
                    else:
                        row.pop(field, None)
                row.update(copy.deepcopy(changes))
                row["fingerprint"] = fingerprint()

        return self._op("patch", path, done)

    def delete(self, req, p):
        path, current = self._current(p)
        for user in self.users:
            who = user(current["selfLink"])
            if who:
                raise ApiError(400, "The security_policy resource '%s' is already being used by '%s'" % (path, who),
                               reason="resourceInUseByAnotherResource")

        def done():
            with self.lock:
                self.table.pop(path, None)

        return self._op("delete", path, done)

    # ---- rules ------------------------------------------------------------------------
    @staticmethod
    def _priority(req):
        return int(req.query.get("priority", 0))

    @staticmethod
    def _find(row, priority):
        for idx, rule in enumerate(row["rules"]):
            if rule["priority"] == priority:
                return idx
        return None

    def _missing(self, path, priority):
        return invalid("Invalid value for field 'priority': '%d'. The security policy '%s' has no rule with this "
                       "priority." % (priority, path))

    def get_rule(self, req, p):
        path, row = self._current(p)
        priority = self._priority(req)
        idx = self._find(row, priority)
        if idx is None:
            raise self._missing(path, priority)
        return copy.deepcopy(row["rules"][idx])

    def _rule_op(self, req, op_type, path, apply):
        """Check `apply` against the policy now, then run it again when the operation lands."""
        with self.lock:
            apply(copy.deepcopy(self.table[path]))
        if req.query.get("validateOnly") == "true":
            return self._op(op_type, path, None)

        def done():
            with self.lock:
                row = self.table.get(path)
                if row is None:
                    raise not_found(path)
                new = apply(copy.deepcopy(row))
                new["rules"].sort(key=lambda r: r["priority"])
                new["fingerprint"] = fingerprint()
                self.table[path] = new

        return self._op(op_type, path, done)

    def add_rule(self, req, p):
        path, current = self._current(p)
        rule = check_rule(req.json, "resource", current["type"])

        def apply(row):
            if self._find(row, rule["priority"]) is not None:
                raise invalid("Invalid value for field 'resource.priority': '%d'. Cannot have rules with the same "
                              "priorities." % rule["priority"])
            row["rules"].append(copy.deepcopy(rule))
            return row

        return self._rule_op(req, "addRule", path, apply)

    def patch_rule(self, req, p):
        path, current = self._current(p)
        priority = self._priority(req)
        body = req.json
        if body.get("priority") not in (None, priority):
            raise invalid("Invalid value for field 'resource.priority': '%s'. The priority of a rule cannot be "
                          "changed; remove the rule and add it at the new priority." % body["priority"])
        cleared = [f.strip() for f in (req.query.get("updateMask") or "").split(",") if f.strip()]

        def apply(row):
            idx = self._find(row, priority)
            if idx is None:
                raise self._missing(path, priority)
            merged = copy.deepcopy(row["rules"][idx])
            for field in cleared:
                merged.pop(field, None)
            merged.update(copy.deepcopy(body))
            merged["priority"] = priority
            row["rules"][idx] = check_rule(merged, "resource", row["type"])
            return row

        return self._rule_op(req, "patchRule", path, apply)

    def remove_rule(self, req, p):
        path, _current = self._current(p)
        priority = self._priority(req)
        if priority == DEFAULT_PRIORITY:
            raise invalid("Invalid value for field 'priority': '%d'. The default rule of a security policy cannot be "
                          "removed; patch its action instead." % priority)

        def apply(row):
            idx = self._find(row, priority)
            if idx is None:
                raise self._missing(path, priority)
            del row["rules"][idx]
            return row

        return self._rule_op(req, "removeRule", path, apply)

    # ---- for the origin side of the sandbox ---------------------------------------------
    def by_name(self, project, name):
        row = self.table.get(policy_path(project, name))
        return copy.deepcopy(row) if row else None


def register(app):
    sp = SecurityPolicies(app, app.compute)
    app.security_policies = sp
    for method, fn in (("insert", sp.insert), ("get", sp.get), ("list", sp.list), ("delete", sp.delete),
                       ("patch", sp.patch), ("addRule", sp.add_rule), ("getRule", sp.get_rule),
                       ("patchRule", sp.patch_rule), ("removeRule", sp.remove_rule)):
        app.handle("compute.securityPolicies.%s" % method, fn)
