#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_access_service_token
short_description: Manage a Cloudflare Access service token
version_added: 0.1.0
description:
  - Creates, updates or deletes an Access service token, found by name in the account.
  - Cloudflare returns a token's client secret only when it is created or rotated. This module returns it as
    RV(client_secret) in exactly those runs, so store it then (for example in Secret Manager) and set C(no_log)
    on the task; later runs return only RV(client_id).
  - O(rotate=true) issues a new client secret on every run (the old one stops working).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The token name, unique in the account.
    type: str
    required: true
  duration:
    description: How long the token is valid, for example C(8760h) (one year, the default) or C(forever).
    type: str
    default: 8760h
  rotate:
    description: Issue a new client secret now (the task then reports a change and returns the new secret).
    type: bool
    default: false
  state:
    description: Whether the token should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Set C(no_log=true) on the task, since RV(client_secret) is in the result when the token is created or rotated.
"""

EXAMPLES = r"""
- name: The automation's service token
  skyforge.prefect_platform.cloudflare_access_service_token:
    name: prefect-automation
  register: token
  no_log: true
"""

RETURN = r"""
service_token:
  description: The token's metadata (never its secret; predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "3537a672-e4d8-4d89-aab9-26cb622918a1", "name": "prefect-automation", "duration": "8760h"}
client_id:
  description: The client id, sent as the C(CF-Access-Client-Id) header.
  returned: when the token exists (not in check mode before creation)
  type: str
client_secret:
  description:
    - The client secret, sent as the C(CF-Access-Client-Secret) header. Only when the token was created or
      rotated in this run; Cloudflare never shows it again. Set C(no_log) on the task.
  returned: when created or rotated (not in check mode)
  type: str
secret_issued:
  description: Whether this run issued a client secret (created or rotated), so the caller knows to store it.
  returned: always
  type: bool
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
    find_service_token,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit


class ServiceToken(CloudflareResource):
    kind = "service_token"
    area = "service_token"
    secret_keys = ("client_secret",)

    def __init__(self, module):
        super(ServiceToken, self).__init__(module)
        self.secret = None

    def get(self):
        return find_service_token(self.module, self.name)

    def desired(self):
        return {"name": self.params["name"], "duration": self.params["duration"]}

    def view(self, resource):
        if resource is None:
            return None
        return dict((k, v) for k, v in resource.items() if k != "client_secret")

    def create(self, desired):
        out = self.call("create", self.client.zero_trust.access.service_tokens.create,
                        account_id=self.module.account_id, **desired).to_dict(mode="json")
        self.secret = out.pop("client_secret", None)
        return out

    def update(self, current, desired, changes):
        out = self.call("update", self.client.zero_trust.access.service_tokens.update, current["id"],
                        account_id=self.module.account_id, **desired)
        return out.to_dict(mode="json")

    def delete(self, current):
        self.call("delete", self.client.zero_trust.access.service_tokens.delete, current["id"],
                  account_id=self.module.account_id)

    def rotate(self, current):
        out = self.call("rotate", self.client.zero_trust.access.service_tokens.rotate, current["id"],
                        account_id=self.module.account_id).to_dict(mode="json")
        self.secret = out.pop("client_secret", None)
        return out


def main():
    module = CloudflareModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            duration=dict(type="str", default="8760h"),
            rotate=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
    )
    token = ServiceToken(module)
    if module.params["rotate"] and module.params["state"] == "present":
        current = token.get()
        if current is not None:
            # Rotation is its own change: the metadata converges first, then the secret is replaced.
            changes = token.changes(token.desired(), current)
            result = dict(changed=True, rotated=True, secret_issued=not module.check_mode,
                          client_id=current.get("client_id"))
            after = token.view(token.predict(current, token.desired()))
            if not module.check_mode:
                if changes:
                    token.update(current, token.desired(), changes)
                after = token.view(token.rotate(current))
                result["client_secret"] = token.secret
            result["service_token"] = after
            result["diff"] = {"before": token.view(current), "after": dict(after, client_secret="(rotated)")}
            if changes:
                result["changes"] = changes
            module.exit_json(**result)

    def extra(after):
        out = {"secret_issued": token.secret is not None}
        if after and after.get("client_id"):
            out["client_id"] = after["client_id"]
        if token.secret is not None:
            out["client_secret"] = token.secret
        return out

    module.ensure(token, extra=extra)


if __name__ == "__main__":
    one_exit(main)()
