"""Cloudflare DNS records (A, AAAA, CNAME, TXT) of the account's zone; a proxied A record gets an edge
proxy of its own (sandbox/edge/proxy.py).
"""

from __future__ import annotations

import ipaddress
import uuid

from .common import PERM_DNS, VALIDATION_CODE, cf_error, now

CODE_BAD_ID = 7003
DNS_NOT_FOUND = 81044
DNS_IDENTICAL = 81058
DNS_CNAME_CONFLICT = 81053
DNS_NOT_PROXIABLE = 9004
DNS_BAD_CONTENT = 9005


class DnsRecords:
    def __init__(self, app):
        self.app = app

    def _zone(self, params):
        zone = self.app.zones.get(params["zone_id"])
        if zone is None:
            raise cf_error(400, CODE_BAD_ID, "Could not route to /zones/%s/dns_records, perhaps your object identifier "
                           "is invalid?" % params["zone_id"])
        return zone

    def list_records(self, req, params):
        zone = self._zone(params)
        items = [r for r in self.app.records.values() if r["zone_id"] == zone["id"]]
        q = req.query
        if q.get("name"):
            items = [r for r in items if r["name"] == _fqdn(q["name"], zone["name"])]
        if q.get("type"):
            items = [r for r in items if r["type"] == q["type"]]
        if q.get("content"):
            items = [r for r in items if r["content"] == q["content"]]
        if "proxied" in q:
            items = [r for r in items if r["proxied"] == (q["proxied"].lower() == "true")]
        items.sort(key=lambda r: (r["type"], r["name"], r["content"]))
        return self.app.paging(req, 100, [_record_view(r) for r in items])

    def get_record(self, req, params):
        return _record_view(self._record(params))

    def _record(self, params):
        self._zone(params)
        rec = self.app.records.get(params["dns_record_id"])
        if rec is None or rec["zone_id"] != params["zone_id"]:
            raise cf_error(404, DNS_NOT_FOUND, "Record does not exist.")
        return rec

    def create_record(self, req, params):
        zone = self._zone(params)
        rec = {"id": uuid.uuid4().hex, "zone_id": zone["id"], "created_on": now()}
        self._apply_record(rec, req.json, zone, replace=True)
        self.app.records[rec["id"]] = rec
        self.app.edge.sync()
        return _record_view(rec)

    def put_record(self, req, params):
        rec = self._record(params)
        zone = self.app.zones[rec["zone_id"]]
        self._apply_record(rec, req.json, zone, replace=True)
        self.app.edge.sync()
        return _record_view(rec)

    def patch_record(self, req, params):
        rec = self._record(params)
        zone = self.app.zones[rec["zone_id"]]
        self._apply_record(rec, req.json, zone, replace=False)
        self.app.edge.sync()
        return _record_view(rec)

    def delete_record(self, req, params):
        rec = self._record(params)
        del self.app.records[rec["id"]]
        self.app.edge.sync()
        return {"id": rec["id"]}

    def _apply_record(self, rec, body, zone, replace):
        new = {} if replace else dict((k, rec[k]) for k in ("type", "name", "content", "proxied", "ttl", "comment", "tags")
                                      if k in rec)
        new.update(body)
        rtype = new.get("type")
        if rtype not in ("A", "AAAA", "CNAME", "TXT"):
            raise cf_error(400, VALIDATION_CODE["dns"], "the sandbox serves A, AAAA, CNAME and TXT records, not %s" % rtype)
        name = _fqdn(new["name"], zone["name"])
        if name != zone["name"] and not name.endswith("." + zone["name"]):
            raise cf_error(400, 1004, "DNS Validation Error: %s is not in zone %s" % (name, zone["name"]))
        content = new.get("content", "")
        if rtype == "A":
            _check_ip(content, 4)
        elif rtype == "AAAA":
            _check_ip(content, 6)
        elif rtype == "CNAME":
            content = content.lower().rstrip(".")
            if content == name:
                raise cf_error(400, DNS_BAD_CONTENT, "Content for CNAME record is invalid: it must not match the name.")
        proxiable = rtype in ("A", "AAAA", "CNAME")
        proxied = bool(new.get("proxied", False))
        if proxied and not proxiable:
            raise cf_error(400, DNS_NOT_PROXIABLE, "This record type cannot be proxied.")
        for other in self.app.records.values():
            if other["id"] == rec.get("id") or other["zone_id"] != zone["id"] or other["name"] != name:
                continue
            if other["type"] == rtype and other["content"] == content:
                raise cf_error(400, DNS_IDENTICAL, "An identical record already exists.")
            if "CNAME" in (rtype, other["type"]) and {rtype, other["type"]} & {"A", "AAAA", "CNAME"} and \
                    rtype != "TXT" and other["type"] != "TXT":
                raise cf_error(400, DNS_CNAME_CONFLICT, "An A, AAAA, or CNAME record with that host already exists.")
        ttl = new.get("ttl", 1)
        rec.update({
            "type": rtype, "name": name, "content": content, "proxiable": proxiable, "proxied": proxied,
            # Proxied records always have automatic TTL.
            "ttl": 1 if proxied else int(ttl), "comment": new.get("comment"), "tags": list(new.get("tags") or []),
            "modified_on": now(),
        })
        if rec["comment"] is None:
            rec.pop("comment")


def register(app):
    dns = DnsRecords(app)
    z = "/zones/{zone_id}/dns_records"
    read, write = (PERM_DNS + " Read",), (PERM_DNS + " Write",)
    app.handle("GET", z, dns.list_records, "dns", read)
    app.handle("POST", z, dns.create_record, "dns", write)
    app.handle("GET", z + "/{dns_record_id}", dns.get_record, "dns", read)
    app.handle("PUT", z + "/{dns_record_id}", dns.put_record, "dns", write)
    app.handle("PATCH", z + "/{dns_record_id}", dns.patch_record, "dns", write)
    app.handle("DELETE", z + "/{dns_record_id}", dns.delete_record, "dns", write)


def _fqdn(name, zone):
    name = name.lower().rstrip(".")
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    return "%s.%s" % (name, zone)


def _check_ip(content, version):
    try:
        ok = ipaddress.ip_address(content).version == version
    except ValueError:
        ok = False
    if not ok:
        raise cf_error(400, DNS_BAD_CONTENT, "Content for %s record must be a valid IPv%d address."
                       % ("A" if version == 4 else "AAAA", version))


def _record_view(rec):
    out = dict((k, v) for k, v in rec.items() if k not in ("zone_id",))
    if not rec["proxiable"]:
        out.pop("proxied")  # the description has no `proxied` on TXT records
    out["meta"] = {"auto_added": False}
    return out
