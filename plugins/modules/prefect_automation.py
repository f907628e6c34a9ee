#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_automation
short_description: Manage a Prefect automation (a trigger and the actions it runs)
version_added: 0.1.0
description:
  - Creates, updates or deletes an automation on a self-hosted Prefect server, found by name. The server's triggers
    and actions services evaluate it; they run in the server by default.
  - O(trigger) and each action are compared key by key on the keys given, each key's value as a whole, so defaults
    the server fills in (a trigger's C(id), C(for_each), C(match_related)) never cause a change, and removing an
    entry from a given C(match) or C(expect) does. A trigger's C(expect), C(after) and C(for_each) are sets to the
    server, so their order is not compared.
  - Names are not unique in Prefect; more than one automation with O(name) fails and names their ids.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The automation's name.
    type: str
    required: true
  description:
    description: A description.
    type: str
    default: ""
  enabled:
    description: Whether the automation runs.
    type: bool
    default: true
  tags:
    description: Tags of the automation.
    type: list
    elements: str
    default: []
  trigger:
    description:
      - The trigger, as the API takes it (for example C(type=event), C(match), C(expect), C(posture), C(threshold),
        C(within)). Required when O(state=present).
    type: dict
  actions:
    description:
      - The actions run when it triggers, as the API takes them; for example C(type=send-notification) with
        C(block_document_id), C(subject) and C(body) (Jinja templates the server renders, with C(flow_run) and
        C(flow) among their variables).
    type: list
    elements: dict
    default: []
  actions_on_resolve:
    description: The actions run when a proactive trigger resolves.
    type: list
    elements: dict
    default: []
  state:
    description: Whether the automation should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Mail when any flow run fails
  skyforge.prefect_platform.prefect_automation:
    api_url: https://prefect.example.com/api
    auth_string: "{{ prefect_auth_string }}"
    name: flow-run-failed-mail
    trigger:
      type: event
      match:
        prefect.resource.id: prefect.flow-run.*
      expect: [prefect.flow-run.Failed]
      posture: Reactive
      threshold: 1
      within: 0
    actions:
      - type: send-notification
        block_document_id: "{{ mail_block.email_block.id }}"
        # The server renders these templates; !unsafe keeps Ansible from rendering them first.
        subject: !unsafe "Prefect flow run {{ flow_run.name }} failed"
        body: !unsafe "{{ flow.name }} / {{ flow_run.name }}: {{ flow_run.state.message }}"
"""

RETURN = r"""
automation:
  description: The automation as the server returns it (predicted in check mode); empty when O(state=absent).
  returned: success
  type: dict
  sample: {"id": "a4cb8a92-b746-4ee8-9d1f-3e50aca06118", "name": "flow-run-failed-mail", "enabled": true}
changes:
  description: The fields that differed and were updated.
  returned: when an existing automation changed
  type: list
  elements: str
"""

import json

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule, PrefectResource

MANAGED = ("description", "enabled", "tags", "trigger", "actions", "actions_on_resolve")
SERVER_FIELDS = ("id", "created", "updated")
SET_FIELDS = ("expect", "after", "for_each")


def same(desired, current):
    """Every key of `desired` has the same whole value in `current` (a dict), key by key one level down."""
    if not isinstance(current, dict):
        return False
    return all(json.dumps(v, sort_keys=True) == json.dumps(current.get(k), sort_keys=True) for k, v in desired.items())


def _number(value):
    # The server keeps `within` as a float; 0 and 0.0 are the same setting.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def normal_trigger(trigger):
    """A trigger with its sets in one order: the server keeps `expect` and `after` as sets, and lists them in any."""
    if not isinstance(trigger, dict):
        return trigger
    out = dict((k, _number(v)) for k, v in trigger.items())
    for key in SET_FIELDS:
        if isinstance(out.get(key), list):
            out[key] = sorted(out[key])
    if isinstance(out.get("triggers"), list):
        out["triggers"] = [normal_trigger(t) for t in out["triggers"]]
    return out


def same_list(desired, current):
    return isinstance(current, list) and len(desired) == len(current) and all(
        same(d, c) for d, c in zip(desired, current))


class Automation(PrefectResource):
    kind = "automation"
    returns_resource = True

    def get(self):
        _status, found = self.module.request("POST", "/automations/filter",
                                             {"automations": {"name": {"any_": [self.name]}}})
        found = [a for a in found or [] if a.get("name") == self.name]
        if len(found) > 1:
            self.module.fail_json(msg="%d automations are named %s (ids %s): delete all but one in the Prefect UI or "
                                      "API, then run again" % (len(found), self.name,
                                                               ", ".join(a["id"] for a in found)))
        return found[0] if found else None

    def desired(self):
        p = self.params
        if not p["trigger"]:
            self.module.fail_json(msg="state=present needs trigger")
        desired = dict((k, p[k]) for k in MANAGED)
        # Round-trip through JSON so comparisons see the data the server stores, not Python types.
        return json.loads(json.dumps(desired))

    def changes(self, desired, current):
        out = []
        for key in MANAGED:
            if key == "trigger":
                differ = not same(normal_trigger(desired[key]), normal_trigger(current.get(key)))
            elif key in ("actions", "actions_on_resolve"):
                differ = not same_list(desired[key], current.get(key))
            else:
                differ = desired[key] != current.get(key)
            if differ:
                out.append(key)
        return out

    def predict(self, current, desired):
        return dict(current, **desired) if current is not None else dict(desired, name=self.name)

    def body(self, current, desired):
        body = dict((k, v) for k, v in (current or {}).items() if k not in SERVER_FIELDS)
        body.update(desired, name=self.name)
        return body

    def create(self, desired):
        return self.module.request("POST", "/automations/", self.body(None, desired))[1]

    def update(self, current, desired, changes):
        self.module.request("PUT", "/automations/%s" % current["id"], self.body(current, desired))
        return self.get()

    def delete(self, current):
        self.module.request("DELETE", "/automations/%s" % current["id"], allow=(404,))

    def diff_view(self, view):
        return dict((k, view.get(k)) for k in MANAGED) if view else None


def main():
    module = PrefectModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str", default=""),
            enabled=dict(type="bool", default=True),
            tags=dict(type="list", elements="str", default=[]),
            trigger=dict(type="dict"),
            actions=dict(type="list", elements="dict", default=[]),
            actions_on_resolve=dict(type="list", elements="dict", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    module.ensure(Automation(module))


if __name__ == "__main__":
    one_exit(main)()
