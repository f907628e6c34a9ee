#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_access_identity_provider
short_description: Manage a Cloudflare Access identity provider (OIDC, Okta, Azure AD, SAML)
version_added: 0.1.0
description:
  - Creates, updates (with PUT) or deletes an account-level Access identity provider, found by name.
  - Access policies admit the provider's users by group
    (M(skyforge.prefect_platform.cloudflare_access_policy) rules C(okta), C(azure_ad), C(saml)).
  - Cloudflare never returns a provider's client secret, so whether it differs cannot be read. Changes are decided on
    the other fields; O(update_secret=on_create) (the default) sends O(client_secret) only when the provider is
    created, V(always) sends it on every run, which then always reports a change. The secret never appears in the
    result; the diff shows only C(previous value) and C(new value) for it.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The provider's name, shown to users on the login page; unique in the account for this module.
    type: str
    required: true
  type:
    description:
      - The kind of provider. It cannot change in place (delete the provider and create it again).
      - Required when O(state=present).
    type: str
    choices: [oidc, okta, azureAD, saml]
  client_id:
    description: The OAuth client id the provider issued to Cloudflare. Required for V(oidc), V(okta) and V(azureAD).
    type: str
  client_secret:
    description:
      - The OAuth client secret. Required to create a V(oidc), V(okta) or V(azureAD) provider; when to send it
        later is O(update_secret).
    type: str
  update_secret:
    description: When to send O(client_secret).
    type: str
    choices: [on_create, always]
    default: on_create
  config:
    description:
      - The type's other settings, as the API names them. V(oidc) needs C(auth_url), C(token_url) and C(certs_url)
        and takes C(scopes), C(claims), C(email_claim_name); V(okta) needs C(okta_account) and takes
        C(authorization_server_id), C(claims), C(email_claim_name); V(azureAD) needs C(directory_id) and takes
        C(support_groups), C(conditional_access_enabled), C(prompt), C(claims), C(email_claim_name); V(saml) needs
        C(issuer_url) and C(sso_target_url) and takes C(idp_public_certs), C(attributes), C(email_attribute_name),
        C(sign_request), C(header_attributes).
      - The whole config is compared, so a setting left out here is removed from the provider.
    type: dict
    default: {}
  state:
    description: Whether the provider should exist. One still used by a policy or an application cannot be deleted.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Changing only the secret of an existing provider needs O(update_secret=always) for that run.
"""

EXAMPLES = r"""
- name: The company's Okta
  skyforge.prefect_platform.cloudflare_access_identity_provider:
    name: okta
    type: okta
    client_id: 0oa1b2c3d4
    client_secret: "{{ okta_client_secret }}"
    config:
      okta_account: https://example.okta.com
      claims: [groups]

- name: Azure AD with its groups
  skyforge.prefect_platform.cloudflare_access_identity_provider:
    name: entra
    type: azureAD
    client_id: 5f6e7d8c-0000-4000-8000-000000000000
    client_secret: "{{ azure_client_secret }}"
    config:
      directory_id: 0c1d2e3f-0000-4000-8000-000000000000
      support_groups: true

- name: Rotate the Okta client secret
  skyforge.prefect_platform.cloudflare_access_identity_provider:
    name: okta
    type: okta
    client_id: 0oa1b2c3d4
    client_secret: "{{ new_okta_client_secret }}"
    update_secret: always
    config:
      okta_account: https://example.okta.com
      claims: [groups]
"""

RETURN = r"""
identity_provider:
  description: The provider as the API returns it, never with its client secret (predicted in check mode).
  returned: success
  type: dict
  sample: {"id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "name": "okta", "type": "okta",
           "config": {"client_id": "0oa1b2c3d4", "okta_account": "https://example.okta.com"}}
changes:
  description: The fields that differed and were updated (C(config.client_secret) when the secret was sent).
  returned: when an existing provider changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import (
    CloudflareModule,
    CloudflareResource,
    find_identity_provider,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit

# The config fields of each type in the API description (client_id and client_secret are options of their own).
FIELDS = {
    "oidc": ("auth_url", "token_url", "certs_url", "scopes", "claims", "email_claim_name"),
    "okta": ("okta_account", "authorization_server_id", "claims", "email_claim_name"),
    "azureAD": ("directory_id", "support_groups", "conditional_access_enabled", "prompt", "claims",
                "email_claim_name"),
    "saml": ("issuer_url", "sso_target_url", "idp_public_certs", "attributes", "email_attribute_name",
             "sign_request", "header_attributes"),
}
REQUIRED = {
    "oidc": ("auth_url", "token_url", "certs_url"),
    "okta": ("okta_account",),
    "azureAD": ("directory_id",),
    "saml": ("issuer_url", "sso_target_url"),
}
OAUTH = ("oidc", "okta", "azureAD")
SECRET = "client_secret"


class IdentityProvider(CloudflareResource):
    kind = "identity_provider"
    area = "idp"
    returns_resource = True
    immutable = ("type",)
    secret_keys = (SECRET,)

    def __init__(self, module):
        super(IdentityProvider, self).__init__(module)
        self.current = None
        self.prefetched = False

    def get(self):
        if self.prefetched:
            # main() read it to check the secret's presence; ensure()'s first read is that one.
            self.prefetched = False
            return self.current
        self.current = find_identity_provider(self.module, self.name)
        return self.current

    def desired(self):
        p = self.params
        config = dict(p["config"] or {})
        if p["client_id"]:
            config["client_id"] = p["client_id"]
        return {"name": p["name"], "type": p["type"], "config": config}

    def send_secret(self, creating):
        return bool(self.params[SECRET]) and (creating or self.params["update_secret"] == "always")

    def changes(self, desired, current):
        out = super(IdentityProvider, self).changes(desired, current)
        # A setting left out is removed by the PUT; fields the API adds on its own (or holds at their empty
        # default) are no drift.
        have = current.get("config") or {}
        extra = sorted(k for k in set(have) - set(desired["config"])
                       if k in FIELDS.get(desired["type"], ()) and have[k] not in (None, False, "", [], {}))
        out.extend("config.%s" % k for k in extra if "config.%s" % k not in out)
        if self.send_secret(False):
            out.append("config.%s" % SECRET)
        return out

    def predict(self, current, desired):
        out = dict(current or {})
        out.update(desired)
        return out

    def view(self, resource):
        if resource is None:
            return None
        out = dict((k, v) for k, v in resource.items() if k in ("id", "name", "type", "config"))
        out["config"] = dict((k, v) for k, v in (out.get("config") or {}).items() if k != SECRET)
        return out

    def body(self, desired, creating):
        config = dict(desired["config"])
        if self.send_secret(creating):
            config[SECRET] = self.params[SECRET]
        return dict(desired, config=config)

    def create(self, desired):
        out = self.call("create", self.client.zero_trust.identity_providers.create,
                        account_id=self.module.account_id, **self.body(desired, True))
        return out.to_dict(mode="json")

    def update(self, current, desired, changes):
        out = self.call("update", self.client.zero_trust.identity_providers.update, current["id"],
                        account_id=self.module.account_id, **self.body(desired, False))
        return out.to_dict(mode="json")

    def delete(self, current):
        self.call("delete", self.client.zero_trust.identity_providers.delete, current["id"],
                  account_id=self.module.account_id)

    def secret_diff(self, after):
        """The diff with the secret as 'previous value' / 'new value' when this run sends one, never its value."""
        before = self.view(self.current) if self.current else None
        creating = self.current is None
        diff = {"before": before or {}, "after": after or {}}
        if after and self.params["state"] == "present" and self.send_secret(creating):
            if before:
                diff["before"] = dict(before, config=dict(before["config"], client_secret="previous value"))
            diff["after"] = dict(after, config=dict(after.get("config") or {}, client_secret="new value"))
        return diff


def check_input(module):
    p = module.params
    if p["state"] != "present":
        return
    if not p["type"]:
        module.fail_json(msg="type is required when state=present: one of oidc, okta, azureAD, saml")
    kind = p["type"]
    config = p["config"] or {}
    if SECRET in config or "client_id" in config:
        module.fail_json(msg="config must not hold client_id or client_secret: give them as the module's client_id "
                         "and client_secret options (the secret is then hidden from logs and diffs)")
    unknown = sorted(set(config) - set(FIELDS[kind]))
    if unknown:
        module.fail_json(msg="config.%s is not a setting of a %s provider; it takes %s"
                         % (", config.".join(unknown), kind, ", ".join(FIELDS[kind])))
    missing = [k for k in REQUIRED[kind] if config.get(k) in (None, "", [])]
    if kind in OAUTH and not p["client_id"]:
        missing.insert(0, "client_id")
    if missing:
        module.fail_json(msg="a %s provider needs %s" % (kind, ", ".join(
            k if k == "client_id" else "config.%s" % k for k in missing)))
    if kind == "saml" and (p["client_id"] or p[SECRET]):
        module.fail_json(msg="a saml provider has no client_id or client_secret: remove them")
    for key in ("scopes", "claims", "idp_public_certs", "attributes", "header_attributes"):
        if key in config and not isinstance(config[key], list):
            module.fail_json(msg="config.%s must be a list" % key)


def main():
    module = CloudflareModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            type=dict(type="str", choices=["oidc", "okta", "azureAD", "saml"]),
            client_id=dict(type="str"),
            client_secret=dict(type="str", no_log=True),
            # A when-to-send enum, not a secret: its name only matches Ansible's secret heuristic.
            update_secret=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
            config=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        needs_account=True,
    )
    check_input(module)
    idp = IdentityProvider(module)
    if module.params["state"] == "present" and module.params["type"] in OAUTH and not module.params[SECRET]:
        if idp.get() is None:
            module.fail_json(msg="identity provider %s does not exist yet: client_secret is required to create a %s "
                             "provider" % (module.params["name"], module.params["type"]))
        idp.prefetched = True
    module.ensure(idp, extra=lambda after: {"diff": idp.secret_diff(after)})


if __name__ == "__main__":
    one_exit(main)()
