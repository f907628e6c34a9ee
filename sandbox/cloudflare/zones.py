"""Cloudflare /ips and /zones: the published edge ranges and the account's zone (read-only)."""

from __future__ import annotations

import uuid

from .common import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6, PERM_DNS, PERM_ZONE_READ


class Zones:
    def __init__(self, app):
        self.app = app

    def ips(self, req, params):
        digest = uuid.uuid5(uuid.NAMESPACE_URL, ",".join(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)).hex
        return {"etag": digest, "ipv4_cidrs": list(CLOUDFLARE_IPV4), "ipv6_cidrs": list(CLOUDFLARE_IPV6)}

    def list_zones(self, req, params):
        items = list(self.app.zones.values())
        name = req.query.get("name")
        if name:
            items = [z for z in items if _name_filter(name, z["name"])]
        if req.query.get("account.id"):
            items = [z for z in items if z["account"]["id"] == req.query["account.id"]]
        if req.query.get("status"):
            items = [z for z in items if z["status"] == req.query["status"]]
        items.sort(key=lambda z: z["name"])
        return self.app.paging(req, 20, [_zone_view(z) for z in items])


def register(app):
    zones = Zones(app)
    app.handle("GET", "/ips", zones.ips, "ips", None)
    app.handle("GET", "/zones", zones.list_zones, "zones", (PERM_ZONE_READ, PERM_DNS + " Read"))


def _name_filter(expr, value):
    op, _, arg = expr.partition(":") if ":" in expr else ("equal", "", expr)
    value, arg_l = value.lower(), arg.lower()
    return {
        "equal": value == arg_l, "not_equal": value != arg_l, "starts_with": value.startswith(arg_l),
        "ends_with": value.endswith(arg_l), "contains": arg_l in value,
    }.get(op, value == expr.lower())


def _zone_view(zone):
    return dict((k, v) for k, v in zone.items() if k not in ("status", "paused", "type", "permissions", "plan"))
