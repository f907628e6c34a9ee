#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tfc_variable
short_description: Manage a variable of an HCP Terraform workspace
version_added: 0.1.0
description:
  - Creates, updates or deletes a Terraform or environment variable of a workspace, identified by
    O(key) and O(category).
  - A sensitive variable's value can never be read back, so it is never compared or diffed. It is
    written when the variable is created, and afterwards only with O(force_update_sensitive=true);
    the result says so in RV(sensitive_value).
  - HCP Terraform cannot turn a sensitive variable back into a non-sensitive one; delete it first.
  - O(value) is a C(no_log) option, so Ansible masks its text wherever it appears in the task's output;
    very short values (such as C(1)) make other output hard to read.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.tfc
  - skyforge.prefect_platform.attributes
options:
  workspace:
    description: The workspace name.
    type: str
    required: true
  key:
    description: The variable name.
    type: str
    required: true
  value:
    description:
      - The value (a string; with O(hcl=true) an HCL expression such as C(["a", "b"])).
      - Required when O(state=present). Never logged.
    type: str
  category:
    description: A Terraform input variable or a shell environment variable of the run.
    type: str
    choices: [terraform, env]
    default: terraform
  hcl:
    description: Whether the value is HCL (lists, maps, numbers) rather than a string.
    type: bool
    default: false
  sensitive:
    description: Whether the value is write-only (never shown again, by the API or by this module).
    type: bool
    default: false
  description:
    description: A description of the variable.
    type: str
  force_update_sensitive:
    description: Rewrite the value of an existing sensitive variable (it cannot be compared).
    type: bool
    default: false
  state:
    description: Whether the variable should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The GCP region the configuration deploys to
  skyforge.prefect_platform.tfc_variable:
    organization: skyforge
    workspace: prefect-infra
    key: region
    value: europe-west1

- name: A credential, write-only
  skyforge.prefect_platform.tfc_variable:
    organization: skyforge
    workspace: prefect-infra
    key: GOOGLE_CREDENTIALS
    category: env
    value: "{{ lookup('file', 'key.json') | to_json }}"
    sensitive: true
"""

RETURN = r"""
variable:
  description: The variable; the value of a sensitive variable is always null.
  returned: success
  type: dict
  sample: {"id": "var-EavQ1LztoRTQHSNT", "key": "region", "category": "terraform", "hcl": false,
           "sensitive": false, "value": "europe-west1"}
sensitive_value:
  description:
    - For a sensitive variable, what happened to its value.
    - V(written) (created or rewritten), V(not_compared) (left as is; set O(force_update_sensitive) to rewrite).
  returned: when the variable is sensitive
  type: str
changes:
  description: The fields that differed and were updated.
  returned: when an existing variable changed
  type: list
  elements: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.tfc import TfcModule, TfcResource

try:
    from pytfe.models import VariableCreateOptions, VariableUpdateOptions
except ImportError:
    pass  # TfcModule reports the missing SDK


class Variable(TfcResource):
    kind = "variable"
    secret_keys = ("value",)

    def __init__(self, module, ws):
        super(Variable, self).__init__(module)
        self.ws = ws
        self.sensitive_note = None

    @property
    def name(self):
        return "%s/%s (%s)" % (self.params["workspace"], self.params["key"], self.params["category"])

    def get(self):
        if self.ws is None:
            return None
        m = self.module
        for v in m.call(lambda: list(m.client.variables.list(self.ws["id"])), action="list variables of",
                        resource=self.params["workspace"]):
            if v.key == self.params["key"] and getattr(v.category, "value", v.category) == self.params["category"]:
                return v
        return None

    def view(self, resource):
        v = resource
        if v is None:
            return None
        if isinstance(v, dict):
            return v
        out = {"id": v.id, "key": v.key, "category": getattr(v.category, "value", v.category), "hcl": bool(v.hcl),
               "sensitive": bool(v.sensitive), "description": v.description}
        if not v.sensitive:
            out["value"] = v.value
        return out

    def desired(self):
        p = self.params
        out = {"key": p["key"], "category": p["category"], "hcl": p["hcl"], "sensitive": p["sensitive"]}
        if p["description"] is not None:
            out["description"] = p["description"]
        if not p["sensitive"]:
            out["value"] = p["value"]
        return out

    def changes(self, desired, current):
        found = super(Variable, self).changes(desired, current)
        if current and current.get("sensitive") and self.params["sensitive"]:
            if self.params["force_update_sensitive"]:
                found.append("value")
                self.sensitive_note = "written"
            elif self.sensitive_note is None:
                self.sensitive_note = "not_compared"
        return found

    def predict(self, current, desired):
        out = dict(current or {}, **desired)
        if out.get("sensitive"):
            out.pop("value", None)
        return out

    def create(self, desired):
        m = self.module
        p = self.params
        opts = VariableCreateOptions(key=p["key"], value=p["value"], category=p["category"], hcl=p["hcl"],
                                     sensitive=p["sensitive"], description=p["description"])
        m.call(lambda: m.client.variables.create(self.ws["id"], opts), action="create variable",
               resource=self.name, allow=(422,))
        if p["sensitive"]:
            self.sensitive_note = "written"

    def update(self, current, desired, changes):
        m = self.module
        p = self.params
        fields = dict(hcl=p["hcl"], sensitive=p["sensitive"])
        if p["description"] is not None:
            fields["description"] = p["description"]
        if "value" in changes or (p["sensitive"] and not (current.sensitive if current else False)):
            # Making a variable sensitive rewrites its value too, so the stored value is the one asked for.
            fields["value"] = p["value"]
            if p["sensitive"]:
                self.sensitive_note = "written"
        opts = VariableUpdateOptions(**fields)
        m.call(lambda: m.client.variables.update(self.ws["id"], current.id, opts), action="update variable",
               resource=self.name)

    def delete(self, current):
        m = self.module
        m.call(lambda: m.client.variables.delete(self.ws["id"], current.id), action="delete variable",
               resource=self.name, allow_404=True)


def main():
    module = TfcModule(
        argument_spec=dict(
            workspace=dict(type="str", required=True),
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", no_log=True),
            category=dict(type="str", choices=["terraform", "env"], default="terraform"),
            hcl=dict(type="bool", default=False),
            sensitive=dict(type="bool", default=False),
            description=dict(type="str"),
            force_update_sensitive=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["value"])],
    )
    p = module.params
    if p["category"] == "terraform" and not (p["key"][:1].isalpha() or p["key"][:1] == "_"):
        module.fail_json(msg="key=%r is not a valid Terraform variable name: start with a letter or _" % p["key"])
    if p["hcl"] and p["category"] == "env":
        module.fail_json(msg="hcl=true has no effect on environment variables: drop hcl or use category=terraform")
    ws = module.require_workspace(p["workspace"])
    resource = Variable(module, ws)
    current = resource.get() if p["state"] == "present" else None
    if current is not None and current.sensitive and not p["sensitive"]:
        module.fail_json(msg="variable %s is sensitive and HCP Terraform cannot make it non-sensitive. Fix: delete "
                             "it (state=absent) and create it again, or keep sensitive=true." % resource.name)

    def extra(_after):
        return {"sensitive_value": resource.sensitive_note} if p["sensitive"] and p["state"] == "present" else {}

    module.ensure(resource, extra=extra)


if __name__ == "__main__":
    main()
