#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_zero_trust_list
short_description: Manage a Cloudflare Zero Trust (Gateway) list, such as an IP allow-list
version_added: 0.1.0
description:
  - Creates, updates or deletes a Zero Trust list, found by name in the account.
  - Items are changed in place with PATCH (append and remove), never by recreating the list, so Access policies
    that reference the list keep working while it changes.
  - The list holds exactly O(items); an item whose description changed is removed and appended again.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The list name, unique in the account.
    type: str
    required: true
  type:
    description: What the list holds; cannot change once created.
    type: str
    choices: [IP, DOMAIN, EMAIL, URL, SERIAL]
    default: IP
  description:
    description: A description of the list.
    type: str
    default: ""
  items:
    description: The entries. For V(IP) lists each value is an address or a CIDR with no host bits set.
    type: list
    elements: dict
    default: []
    suboptions:
      value:
        description: The entry.
        type: str
        required: true
      description:
        description: Why the entry is there (for example C(Cloud NAT egress)).
        type: str
  state:
    description: Whether the list should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Addresses allowed through Access
  skyforge.prefect_platform.cloudflare_zero_trust_list:
    account_id: 0123456789abcdef0123456789abcdef
    name: prefect-allowed-ips
    items:
      - value: 203.0.113.7/32
        description: Cloud NAT egress
      - value: 198.51.100.0/24
        description: operators
"""

RETURN = r"""
list:
  description: The list with its items (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "2c0fc9fa-937b-11eb-a8b3-0242ac130003", "name": "prefect-allowed-ips", "type": "IP", "count": 2}
changes:
  description: What differed and was updated (C(items) for appended or removed entries).
  returned: when an existing list changed
  type: list
  elements: str
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
    find_list,
    list_items,
)


class ZeroTrustList(CloudflareResource):
    kind = "list"
    area = "gateway"
    immutable = ("type",)

    def get(self):
        found = find_list(self.module, self.name)
        if found is None:
            return None
        found["items"] = list_items(self.module, found["id"], self.name)
        return found

    def desired(self):
        p = self.params
        items = []
        for item in p["items"]:
            entry = {"value": item["value"]}
            if item.get("description") is not None:
                entry["description"] = item["description"]
            items.append(entry)
        return {"name": p["name"], "type": p["type"], "description": p["description"],
                "items": sorted(items, key=lambda i: i["value"])}

    def changes(self, desired, current):
        out = []
        if desired["type"] != current.get("type"):
            out.append("type")
        if desired["description"] != (current.get("description") or ""):
            out.append("description")
        remove, append = self.delta(desired, current)
        if remove or append:
            out.append("items")
        return out

    @staticmethod
    def delta(desired, current):
        have = dict((i["value"], i) for i in current.get("items", []))
        want = dict((i["value"], i) for i in desired["items"])
        remove = sorted(v for v, i in have.items() if v not in want or want[v] != i)
        append = [i for v, i in sorted(want.items()) if v not in have or have[v] != i]
        return remove, append

    def predict(self, current, desired):
        out = dict(current or {})
        out.update(desired)
        out["count"] = len(desired["items"])
        return out

    def view(self, resource):
        if resource is None:
            return None
        out = dict(resource)
        out["items"] = sorted(out.get("items", []), key=lambda i: i["value"])
        return out

    def create(self, desired):
        self.call("create", self.client.zero_trust.gateway.lists.create, account_id=self.module.account_id,
                  name=desired["name"], type=desired["type"], description=desired["description"],
                  items=desired["items"])

    def update(self, current, desired, changes):
        lists = self.client.zero_trust.gateway.lists
        if "description" in changes:
            self.call("update", lists.update, current["id"], account_id=self.module.account_id,
                      name=desired["name"], description=desired["description"])
        remove, append = self.delta(desired, current)
        # Remove first: an item whose description changed goes out and comes back in.
        if remove:
            self.call("update", lists.edit, current["id"], account_id=self.module.account_id, remove=remove)
        if append:
            self.call("update", lists.edit, current["id"], account_id=self.module.account_id, append=append)

    def delete(self, current):
        self.call("delete", self.client.zero_trust.gateway.lists.delete, current["id"],
                  account_id=self.module.account_id)


def main():
    module = CloudflareModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            type=dict(type="str", choices=["IP", "DOMAIN", "EMAIL", "URL", "SERIAL"], default="IP"),
            description=dict(type="str", default=""),
            items=dict(type="list", elements="dict", default=[], options=dict(
                value=dict(type="str", required=True),
                description=dict(type="str"),
            )),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
    )
    seen = set()
    for item in module.params["items"]:
        value = item["value"]
        if value in seen:
            module.fail_json(msg="items: %s is listed twice; each value may appear once" % value)
        seen.add(value)
        if module.params["type"] == "IP":
            try:
                ipaddress.ip_network(value, strict=True)
            except ValueError as exc:
                module.fail_json(msg="items: %s is not an IP address or CIDR (%s). Fix: use for example "
                                 "203.0.113.7/32, with no host bits set" % (value, exc))
    module.ensure(ZeroTrustList(module))


if __name__ == "__main__":
    main()
