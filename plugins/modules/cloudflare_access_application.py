#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_access_application
short_description: Manage a self-hosted Cloudflare Access application
version_added: 0.1.0
description:
  - Creates, updates or deletes a self-hosted Access application, found by name in the account.
  - Policies are reusable Access policies, by name or id, in the order they apply (the first gets precedence 1).
    Those the application already links are matched on what it returns; the account's policies are listed only
    for the others.
  - Updates use PUT, as the API has no PATCH for applications, so settings this module does not manage are reset
    to their defaults when the application changes.
  - Access applies only to hosts whose DNS record is proxied.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The application name, unique in the account.
    type: str
    required: true
  domain:
    description: The host the application protects, for example C(prefect.example.com). Required when O(state=present).
    type: str
  path:
    description: Protect only this path (and below) of O(domain), for example C(api).
    type: str
  type:
    description: The application type; only self-hosted applications are managed.
    type: str
    choices: [self_hosted]
    default: self_hosted
  session_duration:
    description: How long an Access session lasts, for example C(24h).
    type: str
    default: 24h
  policies:
    description: Reusable Access policies by name (or id), in precedence order.
    type: list
    elements: str
    default: []
  cors_headers:
    description:
      - CORS settings as the API takes them (C(allowed_origins), C(allowed_methods), C(allow_credentials), ...).
        Not compared when omitted.
    type: dict
  allowed_idps:
    description:
      - The identity providers (by name or id) people may log in with to this application; an empty list allows
        every provider of the account. Not compared when omitted (an update then resets it, as PUT does).
      - See M(skyforge.prefect_platform.cloudflare_access_identity_provider).
    type: list
    elements: str
  app_launcher_visible:
    description: Whether the application shows in the App Launcher.
    type: bool
    default: true
  state:
    description: Whether the application should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Access in front of the Prefect UI and API
  skyforge.prefect_platform.cloudflare_access_application:
    name: prefect
    domain: prefect.example.com
    session_duration: 24h
    policies:
      - prefect-automation
      - prefect-nat-ips
"""

RETURN = r"""
app:
  description: The application as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "023e105f-4ecd-4f7c-b8e2-6a6b9a4c2d1f", "name": "prefect", "domain": "prefect.example.com", "aud": "737646a5..."}
changes:
  description: The fields that differed and were updated.
  returned: when an existing application changed
  type: list
  elements: str
unresolved:
  description:
    - Policies and identity providers that do not exist yet (only in check mode, where an earlier task would create
      them).
  returned: when some are missing in check mode
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
    find_identity_provider,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit

DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


class Application(CloudflareResource):
    kind = "app"
    area = "access"
    unordered = ("allowed_idps",)
    # Read back after a write: get() reads the API's JSON as sent, and the SDK's typed create/update answer (a union
    # of app types) drops fields of it, so the module would return another shape after a write than after a read.
    returns_resource = False

    def __init__(self, module):
        super(Application, self).__init__(module)
        self.unresolved = []
        self.current = None

    def get(self):
        apps = self.module.read_list("/accounts/%s/access/apps" % self.module.account_id, per_page=50, action="list",
                                     resource="Access applications", area=self.area)
        self.current = next((app for app in apps if app.get("name") == self.name), None)
        return self.current

    def policy_links(self):
        # The policies the app links already come with their names: only a reference that is not among them
        # needs the account's policies, listed once for all such references.
        known = [pol for pol in (self.current or {}).get("policies") or [] if pol.get("id")]
        listed = None
        links = []
        for idx, ref in enumerate(self.params["policies"]):
            found = next((pol for pol in known if ref in (pol.get("id"), pol.get("name"))), None)
            if found is None:
                if listed is None:
                    listed = self.module.read_list("/accounts/%s/access/policies" % self.module.account_id,
                                                   per_page=50, action="list", resource="Access policies",
                                                   area=self.area)
                found = next((pol for pol in listed if ref in (pol.get("id"), pol.get("name"))), None)
            if found is None:
                if not self.module.check_mode:
                    self.module.fail_json(msg="Access application %s: policy %s was not found in account %s. Fix: "
                                          "create it first with cloudflare_access_policy" % (self.name, ref,
                                                                                             self.module.account_id))
                self.unresolved.append(ref)
                links.append({"id": ref, "precedence": idx + 1})
            else:
                links.append({"id": found["id"], "precedence": idx + 1})
        return links

    def idp_ids(self):
        have = (self.current or {}).get("allowed_idps") or []
        out = []
        for ref in self.params["allowed_idps"]:
            found = {"id": ref} if ref in have else find_identity_provider(self.module, ref)
            if found is None:
                if not self.module.check_mode:
                    self.module.fail_json(msg="Access application %s: identity provider %s was not found in account "
                                          "%s. Fix: create it first with cloudflare_access_identity_provider"
                                          % (self.name, ref, self.module.account_id))
                self.unresolved.append(ref)
                found = {"id": ref}
            out.append(found["id"])
        return out

    def desired(self):
        p = self.params
        domain = p["domain"].lower().rstrip(".")
        if p["path"]:
            domain = "%s/%s" % (domain, p["path"].strip("/"))
        out = {
            "name": p["name"], "type": p["type"], "domain": domain, "session_duration": p["session_duration"],
            "app_launcher_visible": p["app_launcher_visible"], "policies": self.policy_links(),
        }
        if p["cors_headers"] is not None:
            out["cors_headers"] = p["cors_headers"]
        if p["allowed_idps"] is not None:
            out["allowed_idps"] = self.idp_ids()
        return out

    def compared(self, app):
        out = dict(app)
        out["policies"] = [{"id": pol.get("id"), "precedence": pol.get("precedence", idx + 1)}
                           for idx, pol in enumerate(app.get("policies") or [])]
        return out

    def changes(self, desired, current):
        return super(Application, self).changes(desired, self.compared(current))

    def predict(self, current, desired):
        out = dict(current or {})
        out.update(desired)
        return out

    def view(self, resource):
        if resource is None:
            return None
        out = self.compared(resource)
        # Name the policies too, so a diff reads as what the user wrote.
        names = dict((pol.get("id"), pol.get("name")) for pol in resource.get("policies") or [] if pol.get("name"))
        for link in out["policies"]:
            if link["id"] in names:
                link["name"] = names[link["id"]]
        return out

    def _body(self, desired):
        body = dict(desired)
        body["self_hosted_domains"] = [desired["domain"]]
        return body

    def create(self, desired):
        out = self.call("create", self.client.zero_trust.access.applications.create,
                        account_id=self.module.account_id, **self._body(desired))
        return out.to_dict(mode="json")

    def update(self, current, desired, changes):
        out = self.call("update", self.client.zero_trust.access.applications.update, current["id"],
                        account_id=self.module.account_id, **self._body(desired))
        return out.to_dict(mode="json")

    def delete(self, current):
        self.call("delete", self.client.zero_trust.access.applications.delete, current["id"],
                  account_id=self.module.account_id)


def main():
    module = CloudflareModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            domain=dict(type="str"),
            path=dict(type="str"),
            type=dict(type="str", choices=["self_hosted"], default="self_hosted"),
            session_duration=dict(type="str", default="24h"),
            policies=dict(type="list", elements="str", default=[]),
            cors_headers=dict(type="dict"),
            allowed_idps=dict(type="list", elements="str"),
            app_launcher_visible=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
        required_if=[("state", "present", ("domain",))],
    )
    p = module.params
    if p["domain"] and ("/" in p["domain"] or ":" in p["domain"]):
        module.fail_json(msg="domain=%s must be a bare host name; give the path in the path option" % p["domain"])
    if not DURATION.match(p["session_duration"]):
        module.fail_json(msg="session_duration=%s is not a duration: use for example 24h, 30m or 1h30m"
                         % p["session_duration"])
    if len(set(p["policies"])) != len(p["policies"]):
        module.fail_json(msg="policies lists a policy twice; name each once, in precedence order")
    app = Application(module)
    module.ensure(app, extra=lambda after: {"unresolved": app.unresolved} if app.unresolved else None)


if __name__ == "__main__":
    one_exit(main)()
