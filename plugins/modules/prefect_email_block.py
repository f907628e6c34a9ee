#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_email_block
short_description: Manage a Prefect notification block that sends mail through an SMTP server
version_added: 0.1.0
description:
  - Creates, updates or deletes a notification block document on a self-hosted Prefect server, found by name, that
    sends each notification as mail through an SMTP server (submission with AUTH). An automation's
    C(send-notification) action (M(skyforge.prefect_platform.prefect_automation)) names it by the C(id) in
    RV(email_block).
  - Open-source Prefect has no SMTP block the server itself can send with; its Apprise-backed C(slack-webhook) block
    sends to any Apprise URL, and the server loads it for C(send-notification). This module stores an Apprise
    C(mailtos://) (or C(mailto://)) URL there, built from the options below, so the server needs no extra package.
  - The URL holds the SMTP password, so it is read back with the server's C(include_secrets) and compared, never
    shown; the result and diff show the parts of it with the password hidden.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The block document name (lowercase letters, digits and dashes).
    type: str
    required: true
  smtp_host:
    description: The SMTP server's host name or IP address. Required when O(state=present).
    type: str
  smtp_port:
    description: The SMTP server's port, 1-65535.
    type: int
    default: 587
  smtp_security:
    description:
      - V(starttls) upgrades the connection with STARTTLS, V(ssl) speaks TLS from the start (usually port 465),
        V(none) sends in clear (only for a relay on the same host).
      - The certificate is verified against the Prefect server's trust store.
    type: str
    choices: [starttls, ssl, none]
    default: starttls
  smtp_username:
    description: The SMTP AUTH login. Required when O(state=present).
    type: str
  smtp_password:
    description: The SMTP AUTH password. Required when O(state=present). Never shown in output or diffs.
    type: str
  from_address:
    description: The sender address. Required when O(state=present).
    type: str
  to:
    description: The recipient addresses; one mail is sent to each. Required when O(state=present).
    type: list
    elements: str
  notify_type:
    description: The Apprise notification type, which some mail clients show.
    type: str
    choices: [info, success, warning, failure]
    default: failure
  state:
    description: Whether the block should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Mail the on-call list through the company relay
  skyforge.prefect_platform.prefect_email_block:
    api_url: https://prefect.example.com/api
    auth_string: "{{ prefect_auth_string }}"
    name: flow-failure-mail
    smtp_host: smtp.example.com
    smtp_port: 587
    smtp_username: prefect-alerts
    smtp_password: "{{ smtp_password }}"
    from_address: prefect@example.com
    to: [oncall@example.com]
  register: mail_block
"""

RETURN = r"""
email_block:
  description:
    - The block as its parts (predicted in check mode, without an C(id) when it would be created); empty when
      O(state=absent). C(smtp_password) is always hidden.
  returned: success
  type: dict
  sample: {"id": "3f7ae988-27ac-431a-91bf-6e0452891448", "name": "flow-failure-mail", "smtp_host": "smtp.example.com",
           "smtp_port": 587, "smtp_security": "starttls", "smtp_username": "prefect-alerts",
           "smtp_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "from_address": "prefect@example.com",
           "to": ["oncall@example.com"], "notify_type": "failure"}
changes:
  description: The parts that differed and were updated (C(smtp_password) when only the password did).
  returned: when an existing block changed
  type: list
  elements: str
"""

import re

from ansible.module_utils.six.moves.urllib.parse import quote, unquote, urlsplit, parse_qs

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule, PrefectResource

BLOCK_TYPE = "slack-webhook"
FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password", "from_address", "to",
          "notify_type")
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")
SCHEME = {"starttls": "mailtos", "ssl": "mailtos", "none": "mailto"}
MODE = {"starttls": "starttls", "ssl": "ssl", "none": "insecure"}


def build_url(parts):
    return "%s://%s:%s@%s:%d?mode=%s&from=%s&to=%s" % (
        SCHEME[parts["smtp_security"]], quote(parts["smtp_username"], safe=""), quote(parts["smtp_password"], safe=""),
        parts["smtp_host"], parts["smtp_port"], MODE[parts["smtp_security"]], quote(parts["from_address"], safe=""),
        ",".join(quote(a, safe="") for a in parts["to"]))


def parse_url(url):
    """The parts of a URL build_url() made; None for anything else (another writer's block: it is replaced)."""
    try:
        split = urlsplit(url or "")
        query = parse_qs(split.query)
        mode = query.get("mode", [""])[0]
        security = dict((v, k) for k, v in MODE.items()).get(mode)
        if split.scheme not in ("mailto", "mailtos") or security is None or SCHEME[security] != split.scheme:
            return None
        return {"smtp_host": split.hostname, "smtp_port": split.port, "smtp_security": security,
                "smtp_username": unquote(split.username or ""), "smtp_password": unquote(split.password or ""),
                "from_address": query.get("from", [""])[0],
                "to": [a for a in query.get("to", [""])[0].split(",") if a]}
    except ValueError:
        return None


class EmailBlock(PrefectResource):
    kind = "email_block"
    secret_keys = ("smtp_password",)
    compare_on_view = True

    @property
    def path(self):
        return "/block_types/slug/%s/block_documents/name/%s?include_secrets=true" % (BLOCK_TYPE, self.name)

    def get(self):
        return self.fetch(self.path)

    def view(self, resource):
        if resource is None:
            return None
        data = resource.get("data") or {}
        out = dict((k, None) for k in FIELDS)
        out.update(parse_url(data.get("url")) or {})
        out.update(id=resource.get("id"), name=resource.get("name"), notify_type=data.get("notify_type"))
        return out

    def desired(self):
        p = self.params
        missing = [k for k in ("smtp_host", "smtp_username", "smtp_password", "from_address", "to") if not p[k]]
        if missing:
            self.module.fail_json(msg="state=present needs %s" % ", ".join(missing))
        if not NAME.match(self.name):
            self.module.fail_json(msg="name=%r: a block name is lowercase letters, digits and dashes" % self.name)
        if not 0 < p["smtp_port"] < 65536:
            self.module.fail_json(msg="smtp_port=%d is not a TCP port (1-65535)" % p["smtp_port"])
        bad = [a for a in [p["from_address"]] + p["to"] if not ADDRESS.match(a)]
        if bad:
            self.module.fail_json(msg="not mail addresses (user@domain): %s" % ", ".join(bad))
        return dict((k, p[k]) for k in FIELDS)

    def changes(self, desired, current):
        return [k for k in FIELDS if desired[k] != current.get(k)]

    def predict(self, current, desired):
        return dict(current or {}, name=self.name, **desired)

    def data(self, desired):
        return {"url": build_url(desired), "notify_type": desired["notify_type"], "allow_private_urls": True}

    def create(self, desired):
        _status, block_type = self.module.request("GET", "/block_types/slug/%s" % BLOCK_TYPE)
        _status, schemas = self.module.request("POST", "/block_schemas/filter", {
            "block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}})
        if not schemas:
            self.module.fail_json(msg="the server has no block schema for %s blocks; is it Prefect 3?" % BLOCK_TYPE)
        schema = max(schemas, key=lambda s: s.get("created") or "")
        self.module.request("POST", "/block_documents/", {
            "name": self.name, "data": self.data(desired), "block_schema_id": schema["id"],
            "block_type_id": block_type["id"]})

    def update(self, current, desired, changes):
        self.module.request("PATCH", "/block_documents/%s" % current["id"],
                            {"data": self.data(desired), "merge_existing_data": False})

    def delete(self, current):
        self.module.request("DELETE", "/block_documents/%s" % current["id"], allow=(404,))


def main():
    module = PrefectModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            smtp_host=dict(type="str"),
            smtp_port=dict(type="int", default=587),
            smtp_security=dict(type="str", choices=["starttls", "ssl", "none"], default="starttls"),
            smtp_username=dict(type="str"),
            smtp_password=dict(type="str", no_log=True),
            from_address=dict(type="str"),
            to=dict(type="list", elements="str"),
            notify_type=dict(type="str", choices=["info", "success", "warning", "failure"], default="failure"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    module.ensure(EmailBlock(module))


if __name__ == "__main__":
    one_exit(main)()
