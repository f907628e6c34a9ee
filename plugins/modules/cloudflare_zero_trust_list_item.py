#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_zero_trust_list_item
short_description: Add or remove one entry of a Cloudflare Zero Trust list, leaving the others alone
version_added: 0.2.0
description:
  - Ensures one entry (an IP address or CIDR, a domain...) is in, or out of, an existing Zero Trust list, with PATCH
    (append or remove), so the list's other entries and the Access policies that reference it stay as they are.
  - For a producer that is not the list's owner, such as a Prefect worker outside GCP whose egress IP must pass
    Cloudflare Access. The list's owner (M(skyforge.prefect_platform.cloudflare_zero_trust_list), which keeps exactly
    its O(skyforge.prefect_platform.cloudflare_zero_trust_list#module:items)) removes the entry on its next run unless
    it lists it too; the cloudflare_zero_trust role does, from C(cloudflare_zero_trust_worker_egress_ips).
  - An entry whose description differs is removed and appended again, as the list module does.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  list:
    description: The list's name or id. It must exist when O(state=present); when it does not, O(state=absent) has
      nothing to do.
    type: str
    required: true
  value:
    description: The entry. In an V(IP) list, an address or a CIDR with no host bits set; an address without a prefix
      also matches its /32 or /128 entry already in the list.
    type: str
    required: true
  description:
    description: Why the entry is there (for example C(ECS worker prefect-worker egress)).
    type: str
  state:
    description: Whether the entry should be in the list.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Admit an ECS worker's Elastic IP through Access
  skyforge.prefect_platform.cloudflare_zero_trust_list_item:
    account_id: 0123456789abcdef0123456789abcdef
    list: prefect-allowed-ips
    value: 198.51.100.23
    description: ECS worker prefect-worker egress
"""

RETURN = r"""
item:
  description: The entry as it is after the run (predicted in check mode); empty when absent.
  returned: success
  type: dict
  sample: {"value": "198.51.100.23/32", "description": "ECS worker prefect-worker egress"}
list:
  description: The list's id, name and type; empty when it does not exist.
  returned: success
  type: dict
  sample: {"id": "2c0fc9fa-937b-11eb-a8b3-0242ac130003", "name": "prefect-allowed-ips", "type": "IP"}
"""

import ipaddress

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    find_list,
    list_items,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import InputError, one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import Member


NOT_AN_ADDRESS = "not an address"


def ip_problem(value):
    """None for an address or a CIDR without host bits; NOT_AN_ADDRESS for a domain, email, URL...; else why not."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return NOT_AN_ADDRESS
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return str(exc)
    return None


class ListItem(Member):
    kind = "item"

    @property
    def name(self):
        return self.params["value"]

    def parent_label(self):
        return "Zero Trust list %s" % self.params["list"]

    def read(self):
        found = find_list(self.module, self.params["list"])
        if found is None:
            if self.params["state"] == "present":
                missing = "Zero Trust list %s does not exist in account %s" % (
                    self.params["list"], self.module.account_id)
                raise InputError(missing, fix="create it first (the platform's site.yml, cloudflare_zero_trust "
                                              "role), or set list to its name or id")
            return None
        found["items"] = list_items(self.module, found["id"], found["name"])
        return found

    def forms(self):
        """The entry as given and, for one address, bare and as its /32 or /128: a list may hold either form."""
        value = self.params["value"]
        if ip_problem(value) is not None:
            return (value,)
        net = ipaddress.ip_network(value)
        return (value, str(net.network_address), str(net)) if net.num_addresses == 1 else (value,)

    def find(self, parent):
        if parent is not None and parent.get("type", "IP") == "IP" and ip_problem(self.params["value"]) is not None:
            raise InputError("value: %s is not an IP address or CIDR, and list %s holds IP entries"
                             % (self.params["value"], parent["name"]),
                             fix="use for example 203.0.113.7 or 203.0.113.0/24, with no host bits set")
        return next((i for i in (parent or {}).get("items", []) if i["value"] in self.forms()), None)

    def target(self, current, state):
        if state == "absent":
            return None
        item = {"value": current["value"] if current else self.params["value"]}
        if self.params["description"] is not None:
            item["description"] = self.params["description"]
        return item

    def changes(self, current, target):
        if current is None or target is None:
            return [self.kind] if current != target else []
        return ["description"] if current.get("description") != target.get("description") else []

    def write(self, parent, current, target):
        edit = self.module.client.zero_trust.gateway.lists.edit
        label = "%s in list %s" % (target or current, parent["name"])
        if current is not None:
            self.module.call(edit, parent["id"], account_id=self.module.account_id, remove=[current["value"]],
                             action="remove", resource=label, area="gateway")
        if target is not None:
            self.module.call(edit, parent["id"], account_id=self.module.account_id, append=[target],
                             action="append", resource=label, area="gateway")
        return None

    def result(self, parent, before, after, changes):
        about = dict((k, parent[k]) for k in ("id", "name", "type") if k in parent) if parent else {}
        return {"item": after or {}, "list": about}


def main():
    module = CloudflareModule(
        argument_spec=dict(
            list=dict(type="str", required=True),
            value=dict(type="str", required=True),
            description=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
    )
    problem = ip_problem(module.params["value"])
    if problem not in (None, NOT_AN_ADDRESS):
        module.fail_json(msg="value: %s is not a valid IP range (%s). Fix: use for example 203.0.113.7 or "
                             "203.0.113.0/24, with no host bits set" % (module.params["value"], problem))
    module.ensure(ListItem(module))


if __name__ == "__main__":
    one_exit(main)()
