#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_dns_record
short_description: Manage a DNS record in a Cloudflare zone
version_added: 0.1.0
description:
  - Creates, updates (with PUT) or deletes one DNS record, found by zone, name and type.
  - Only one record per name and type is managed unless O(multiple=true); then the record is found by its content
    too, so several records of one name can coexist (round-robin A records, several TXT values).
  - A record must be proxied (O(proxied=true)) for Cloudflare Access to apply to its host.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  zone:
    description: The zone name, for example C(example.com). Looked up by name.
    type: str
    required: true
  name:
    description:
      - The record name, one label relative to the zone (C(app)) or fully qualified in it (C(app.example.com)); C(@) is
        the apex.
      - A name with a dot that is not in O(zone) (C(app.example.org) in C(example.com)) is refused before any API
        call, rather than made into C(app.example.org.example.com); write deeper names in full (C(app.dev.example.com)).
    type: str
    required: true
  type:
    description: The record type.
    type: str
    choices: [A, AAAA, CNAME, TXT]
    required: true
  content:
    description: The IPv4 address, IPv6 address, target host name or text. Required when O(state=present).
    type: str
  proxied:
    description: Whether traffic goes through Cloudflare (A, AAAA and CNAME only). Proxied records have automatic TTL.
    type: bool
    default: false
  ttl:
    description: Time to live in seconds, 30 to 86400, or 1 for automatic. Ignored for proxied records.
    type: int
    default: 1
  comment:
    description: A comment on the record; not compared when omitted.
    type: str
  tags:
    description: Tags of the form C(name:value); not compared when omitted.
    type: list
    elements: str
  multiple:
    description: Allow several records with this name and type; the record is then identified by its content.
    type: bool
    default: false
  state:
    description: Whether the record should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The Prefect UI behind Cloudflare
  skyforge.prefect_platform.cloudflare_dns_record:
    zone: example.com
    name: prefect
    type: A
    content: 203.0.113.10
    proxied: true
    comment: managed by skyforge
"""

RETURN = r"""
record:
  description: The record as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "372e67954025e0ba6aaa6d586b9e0b59", "name": "prefect.example.com", "type": "A", "proxied": true}
changes:
  description: The fields that differed and were updated.
  returned: when an existing record changed
  type: list
  elements: str
host_records:
  description:
    - Every record named O(name), of any type, after the run (this record as RV(record) shows it), so a caller can
      check, for example, that none bypasses the proxy without listing them again.
  returned: success
  type: list
  elements: dict
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit


def fqdn(name, zone):
    """The record's full name; None for a dotted name outside the zone (not silently suffixed with the zone)."""
    name = name.lower().rstrip(".")
    zone = zone.lower().rstrip(".")
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    if "." in name:
        return None
    return "%s.%s" % (name, zone)


class Record(CloudflareResource):
    kind = "record"
    area = "dns"
    unordered = ("tags",)

    def __init__(self, module):
        super(Record, self).__init__(module)
        self.zone_id = module.zone_id(self.params["zone"])
        self.fqdn = fqdn(self.params["name"], self.params["zone"])
        self.others = []

    @property
    def name(self):
        return "%s %s" % (self.params["type"], self.fqdn)

    def get(self):
        p = self.params
        # `name` is the filter the API description documents (the SDK would send name.exact). Every type is listed,
        # so the records that share the name come back too (RV(host_records)) without a second read.
        named = self.module.paginate(self.client.dns.records.list, per_page=100, action="list", resource=self.name,
                                     area=self.area, zone_id=self.zone_id, extra_query={"name": self.fqdn})
        named = [r for r in named if r.get("name") == self.fqdn]
        found = [r for r in named if r.get("type") == p["type"]]
        if p["multiple"]:
            content = normalize(p["type"], p["content"]) if p["content"] is not None else None
            found = [r for r in found if normalize(p["type"], r.get("content")) == content]
        if len(found) > 1:
            self.module.fail_json(
                msg="%d %s records named %s exist (%s). Fix: set multiple=true to manage one of them by content, or "
                "delete the extra records." % (len(found), p["type"], self.fqdn,
                                               ", ".join(sorted(r.get("content", "") for r in found))))
        current = found[0] if found else None
        self.others = [r for r in named if current is None or r.get("id") != current.get("id")]
        return current

    def desired(self):
        p = self.params
        out = {
            "name": self.fqdn,
            "type": p["type"],
            "content": normalize(p["type"], p["content"]),
            "ttl": 1 if p["proxied"] else p["ttl"],
        }
        if p["type"] != "TXT":
            # The API knows `proxied` only for the types that can be proxied.
            out["proxied"] = p["proxied"]
        if p["comment"] is not None:
            out["comment"] = p["comment"]
        if p["tags"] is not None:
            out["tags"] = sorted(p["tags"])
        return out

    def changes(self, desired, current):
        cur = dict(current)
        cur["content"] = normalize(cur.get("type"), cur.get("content"))
        cur["tags"] = sorted(cur.get("tags") or [])
        return super(Record, self).changes(desired, cur)

    def _body(self, desired, current=None):
        body = dict(desired)
        # PUT replaces the record: keep the comment and tags the user does not manage.
        for key in ("comment", "tags"):
            if key not in body and current and current.get(key) not in (None, []):
                body[key] = current[key]
        return body

    def create(self, desired):
        out = self.call("create", self.client.dns.records.create, zone_id=self.zone_id, **self._body(desired))
        return out.to_dict(mode="json")

    def update(self, current, desired, changes):
        out = self.call("update", self.client.dns.records.update, current["id"], zone_id=self.zone_id,
                        **self._body(desired, current))
        return out.to_dict(mode="json")

    def delete(self, current):
        self.call("delete", self.client.dns.records.delete, current["id"], zone_id=self.zone_id)


def normalize(rtype, content):
    if content is None:
        return None
    if rtype == "AAAA":
        try:
            return str(ipaddress.IPv6Address(content))
        except ValueError:
            return content
    if rtype == "CNAME":
        return content.lower().rstrip(".")
    return content


def check_input(module):
    p = module.params
    if fqdn(p["name"], p["zone"]) is None:
        module.fail_json(msg="name=%s is not in the zone %s: give a name relative to the zone (%s) or fully qualified in "
                             "it (%s.%s), or set zone to the zone that holds %s"
                             % (p["name"], p["zone"], p["name"].split(".")[0], p["name"].split(".")[0],
                                p["zone"].rstrip("."), p["name"]))
    if p["state"] == "present" and p["content"] is None:
        module.fail_json(msg="content is required when state=present: give the address, target or text of the record")
    if p["content"] is not None:
        if p["type"] in ("A", "AAAA"):
            version = 4 if p["type"] == "A" else 6
            try:
                ok = ipaddress.ip_address(p["content"]).version == version
            except ValueError:
                ok = False
            if not ok:
                module.fail_json(msg="content=%s is not an IPv%d address, which a %s record needs"
                                 % (p["content"], version, p["type"]))
    if p["proxied"] and p["type"] == "TXT":
        module.fail_json(msg="proxied=true is not possible for TXT records: only A, AAAA and CNAME can be proxied")
    if p["ttl"] != 1 and not 30 <= p["ttl"] <= 86400:
        module.fail_json(msg="ttl=%d is out of range: use 1 (automatic) or 30 to 86400 seconds" % p["ttl"])


def main():
    module = CloudflareModule(
        argument_spec=dict(
            zone=dict(type="str", required=True),
            name=dict(type="str", required=True),
            type=dict(type="str", required=True, choices=["A", "AAAA", "CNAME", "TXT"]),
            content=dict(type="str"),
            proxied=dict(type="bool", default=False),
            ttl=dict(type="int", default=1),
            comment=dict(type="str"),
            tags=dict(type="list", elements="str"),
            multiple=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    check_input(module)
    record = Record(module)
    module.ensure(record, extra=lambda after: {"host_records": record.others + ([after] if after else [])})


if __name__ == "__main__":
    one_exit(main)()
