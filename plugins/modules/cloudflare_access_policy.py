#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_access_policy
short_description: Manage a reusable Cloudflare Access policy
version_added: 0.1.0
description:
  - Creates, updates (with PUT) or deletes an account-level, reusable Access policy, found by name.
  - Applications reference reusable policies by id (M(skyforge.prefect_platform.cloudflare_access_application)
    resolves them by name).
  - Rules are given as a short list of one-key dicts; IP lists and service tokens may be named instead of
    giving their ids. A name is looked up on every run; an id the policy already holds is not, so a caller that
    has the id (for example registered from the module that manages the list or token) saves those reads.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The policy name, unique in the account.
    type: str
    required: true
  decision:
    description:
      - What happens when the rules match. V(non_identity) (Service Auth) admits service tokens and IP rules
        without a login; V(bypass) switches Access off for matching requests.
    type: str
    choices: [allow, deny, bypass, non_identity]
    default: allow
  include:
    description:
      - Rules of which at least one must match. Each item has exactly one key, one of C(ip) (a CIDR),
        C(ip_list) (a Zero Trust IP list, by name or id), C(service_token) (by name or id),
        C(any_valid_service_token) (true), C(email), C(email_domain), C(group) (an Access group id),
        C(everyone) (true), or a group of an identity provider's users (people who log in; see
        M(skyforge.prefect_platform.cloudflare_access_identity_provider)).
      - "C(okta): C({identity_provider: <name or id>, group: <Okta group name>}); C(azure_ad):
        C({identity_provider: <name or id>, group: <Azure group object id>}); C(gsuite):
        C({identity_provider: <name or id>, group: <group email>}); C(github_organization):
        C({identity_provider: <name or id>, name: <organization>}); C(saml): C({attribute: <SAML attribute name>,
        value: <value>}) (the API version this collection targets ties a SAML rule to no one provider)."
      - A generic OIDC provider has no group rule in that API version; admit its users by C(email) or
        C(email_domain).
      - Required when O(state=present).
    type: list
    elements: dict
  exclude:
    description: Rules of which none may match; same form as O(include).
    type: list
    elements: dict
    default: []
  require:
    description: Rules that must all match; same form as O(include).
    type: list
    elements: dict
    default: []
  session_duration:
    description: How long a session lasts, for example C(24h) or C(30m).
    type: str
    default: 24h
  state:
    description: Whether the policy should exist. A policy still used by an application cannot be deleted.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Admit the platform's egress IPs
  skyforge.prefect_platform.cloudflare_access_policy:
    name: prefect-nat-ips
    decision: non_identity
    include:
      - ip_list: prefect-allowed-ips

- name: Admit the people of an Okta group
  skyforge.prefect_platform.cloudflare_access_policy:
    name: prefect-operators
    decision: allow
    include:
      - okta: {identity_provider: okta, group: prefect-operators}
      - azure_ad: {identity_provider: entra, group: 1e5c2f9a-0000-4000-8000-000000000000}

- name: Admit the automation's service token
  skyforge.prefect_platform.cloudflare_access_policy:
    name: prefect-automation
    decision: non_identity
    include:
      - service_token: prefect-automation
"""

RETURN = r"""
policy:
  description: The policy as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "name": "prefect-nat-ips", "decision": "non_identity"}
changes:
  description: The fields that differed and were updated.
  returned: when an existing policy changed
  type: list
  elements: str
"""

import ipaddress
import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
    find_list,
    find_identity_provider,
    find_policy,
    find_service_token,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit

# Group rules of an identity provider's users: the module's key -> (the API's key, the provider type it needs,
# the API's field for the group, the module's field for it).
IDP_RULES = {
    "okta": ("okta", "okta", "email", "group"),
    "azure_ad": ("azureAD", "azureAD", "id", "group"),
    "gsuite": ("gsuite", "google-apps", "email", "group"),
    "github_organization": ("github-organization", "github", "name", "name"),
}
RULE_KEYS = ("ip", "ip_list", "service_token", "any_valid_service_token", "email", "email_domain", "group", "everyone",
             "okta", "azure_ad", "gsuite", "github_organization", "saml")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
FIELDS = ("include", "exclude", "require")


class Policy(CloudflareResource):
    kind = "policy"
    area = "access"

    def __init__(self, module):
        super(Policy, self).__init__(module)
        self.unresolved = []
        self.current = None

    def get(self):
        self.current = find_policy(self.module, self.name)
        return self.current

    def referenced(self, key, field):
        """Ids of `key` rules (ip_list, service_token) the current policy holds: given by id, they need no look-up."""
        ids = set()
        for field_name in FIELDS:
            for rule in (self.current or {}).get(field_name) or []:
                ref = (rule or {}).get(key) or {}
                if ref.get(field):
                    ids.add(ref[field])
        return ids

    def rule(self, item):
        key = [k for k in RULE_KEYS if item.get(k) not in (None, False)][0]
        value = item[key]
        if key == "ip":
            return {"ip": {"ip": value}}
        if key == "ip_list":
            if value in self.referenced("ip_list", "id"):
                return {"ip_list": {"id": value}}
            found = find_list(self.module, value, "IP")
            if found is None:
                return self._missing("IP list", value, {"ip_list": {"id": value}})
            return {"ip_list": {"id": found["id"]}}
        if key == "service_token":
            if value in self.referenced("service_token", "token_id"):
                return {"service_token": {"token_id": value}}
            found = find_service_token(self.module, value)
            if found is None:
                return self._missing("service token", value, {"service_token": {"token_id": value}})
            return {"service_token": {"token_id": found["id"]}}
        if key == "any_valid_service_token":
            return {"any_valid_service_token": {}}
        if key == "everyone":
            return {"everyone": {}}
        if key == "email":
            return {"email": {"email": value}}
        if key == "email_domain":
            return {"email_domain": {"domain": value}}
        if key == "saml":
            return {"saml": {"attribute_name": value["attribute"], "attribute_value": value["value"]}}
        if key in IDP_RULES:
            api_key, kind, api_field, field = IDP_RULES[key]
            connection = self.idp_id(api_key, kind, value["identity_provider"])
            return {api_key: {api_field: value[field], "connection_id": connection}}
        return {"group": {"id": value}}

    def idp_id(self, api_key, kind, name_or_id):
        if name_or_id in self.referenced(api_key, "connection_id"):
            return name_or_id
        found = find_identity_provider(self.module, name_or_id)
        if found is None:
            return self._missing("identity provider", name_or_id, {api_key: name_or_id})[api_key]
        if found.get("type") != kind:
            self.module.fail_json(msg="Access policy %s: identity provider %s is of type %s; a %s rule needs a %s "
                                  "provider" % (self.name, name_or_id, found.get("type"), api_key, kind))
        return found["id"]

    def _missing(self, what, value, placeholder):
        if self.module.check_mode:
            # An earlier task of this check-mode run would create it; predict with the name.
            self.unresolved.append("%s %s" % (what, value))
            return placeholder
        self.module.fail_json(msg="Access policy %s: %s %s was not found in account %s. Fix: create it first (or "
                              "give its id)" % (self.name, what, value, self.module.account_id))

    def desired(self):
        p = self.params
        out = {"name": p["name"], "decision": p["decision"], "session_duration": p["session_duration"]}
        for field in FIELDS:
            out[field] = [self.rule(item) for item in (p[field] or [])]
        return out

    def changes(self, desired, current):
        cur = dict(current)
        for field in FIELDS:
            cur[field] = cur.get(field) or []
        return super(Policy, self).changes(desired, cur)

    def view(self, resource):
        if resource is None:
            return None
        keep = ("id", "name", "decision", "include", "exclude", "require", "session_duration", "app_count",
                "reusable", "created_at", "updated_at")
        return dict((k, v) for k, v in resource.items() if k in keep)

    def create(self, desired):
        out = self.call("create", self.client.zero_trust.access.policies.create, account_id=self.module.account_id,
                        **desired)
        return out.to_dict(mode="json")

    def update(self, current, desired, changes):
        out = self.call("update", self.client.zero_trust.access.policies.update, current["id"],
                        account_id=self.module.account_id, **desired)
        return out.to_dict(mode="json")

    def delete(self, current):
        self.call("delete", self.client.zero_trust.access.policies.delete, current["id"],
                  account_id=self.module.account_id)


def check_input(module):
    p = module.params
    if p["state"] == "present" and not p["include"]:
        module.fail_json(msg="include is required when state=present: give at least one rule, for example "
                         "- ip_list: <list name>")
    if not DURATION.match(p["session_duration"]):
        module.fail_json(msg="session_duration=%s is not a duration: use for example 24h, 30m or 1h30m"
                         % p["session_duration"])
    for field in FIELDS:
        for idx, item in enumerate(p[field] or []):
            where = "%s[%d]" % (field, idx)
            if not isinstance(item, dict):
                module.fail_json(msg="%s must be a one-key dict such as {ip: 203.0.113.7/32}" % where)
            unknown = sorted(set(item) - set(RULE_KEYS))
            if unknown:
                module.fail_json(msg="%s: unknown rule %s; use one of %s"
                                 % (where, ", ".join(unknown), ", ".join(RULE_KEYS)))
            keys = [k for k in RULE_KEYS if item.get(k) not in (None, False)]
            if len(keys) != 1:
                module.fail_json(msg="%s must set exactly one of %s (it sets %s)"
                                 % (where, ", ".join(RULE_KEYS), ", ".join(keys) or "none"))
            if keys[0] in IDP_RULES or keys[0] == "saml":
                value = item[keys[0]]
                need = ("attribute", "value") if keys[0] == "saml" else ("identity_provider", IDP_RULES[keys[0]][3])
                if not isinstance(value, dict) or sorted(value) != sorted(need) or \
                        not all(isinstance(value[k], str) and value[k] for k in need):
                    module.fail_json(msg="%s: %s takes {%s} (non-empty strings)"
                                     % (where, keys[0], ", ".join("%s: ..." % k for k in need)))
            if keys[0] == "ip":
                try:
                    ipaddress.ip_network(item["ip"], strict=False)
                except ValueError:
                    module.fail_json(msg="%s: ip=%s is not an address or CIDR" % (where, item["ip"]))


def main():
    module = CloudflareModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            decision=dict(type="str", choices=["allow", "deny", "bypass", "non_identity"], default="allow"),
            include=dict(type="list", elements="dict"),
            exclude=dict(type="list", elements="dict", default=[]),
            require=dict(type="list", elements="dict", default=[]),
            session_duration=dict(type="str", default="24h"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
    )
    check_input(module)
    policy = Policy(module)
    module.ensure(policy, extra=lambda after: {"unresolved": policy.unresolved} if policy.unresolved else None)


if __name__ == "__main__":
    one_exit(main)()
