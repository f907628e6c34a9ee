"""compute v1 firewalls (global): exactly one of allowed/denied, GCP's defaults for source and destination ranges."""

from __future__ import annotations

import ipaddress

from .compute import Collection
from .compute_common import invalid, log_config, unlink


class Firewalls(Collection):
    def prepare(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.compute.resolve_ref(body["network"], "networks", p["project"])
        if bool(body.get("allowed")) == bool(body.get("denied")):
            raise invalid("Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be set.")
        direction = body.get("direction", "INGRESS")
        priority = int(body.get("priority", 1000))
        if not 0 <= priority <= 65535:
            raise invalid("Invalid value for field 'resource.priority': '%s'. Must be between 0 and 65535." % priority)
        for field in ("sourceRanges", "destinationRanges"):
            for idx, cidr in enumerate(body.get(field) or []):
                try:
                    ipaddress.ip_network(cidr)
                except ValueError:
                    raise invalid("Invalid value for field 'resource.%s[%d]': '%s'. Must be a CIDR range." % (field, idx, cidr))
        row = {k: v for k, v in body.items() if k not in ("name", "network", "priority", "direction")}
        row.update({"network": net["selfLink"], "direction": direction, "priority": priority,
                    "disabled": bool(body.get("disabled", False))})
        if direction == "INGRESS" and not (body.get("sourceRanges") or body.get("sourceTags") or body.get("sourceServiceAccounts")):
            row["sourceRanges"] = ["0.0.0.0/0"]
        if direction == "EGRESS" and not body.get("destinationRanges"):
            row["destinationRanges"] = ["0.0.0.0/0"]
        row["logConfig"] = log_config(body.get("logConfig") or {"enable": False}, firewall=True)
        row.setdefault("description", "")
        return row

    def update(self, current, body, replace):
        if replace:
            merged = {k: v for k, v in body.items()}
            merged.setdefault("network", current["network"])
            p = {"project": unlink(current["selfLink"]).split("/")[1]}
            new = self.prepare(merged, p, unlink(current["selfLink"]))
            for key in ("kind", "id", "name", "creationTimestamp", "selfLink"):
                new[key] = current[key]
            return new
        new = dict(current)
        for key, value in body.items():
            if key == "network" and unlink(value) != unlink(current["network"]):
                raise invalid("Invalid value for field 'resource.network': the network of a firewall cannot be changed.")
            if key == "logConfig":
                value = log_config(value, firewall=True)
            new[key] = value
        if new.get("allowed") and new.get("denied"):
            raise invalid("Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be set.")
        return new

    def user_of(self, row):
        return None


def register(app):
    compute = app.compute
    compute.kinds["firewalls"] = Firewalls(compute)
    for verb, fn in compute.handlers("firewalls", "get", "list", "insert", "delete", "patch", "update"):
        app.handle("compute.firewalls.%s" % verb, fn)
