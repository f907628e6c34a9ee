#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_secret
short_description: Manage a Secret Manager secret and its current value
version_added: 0.1.0
description:
  - Creates the secret, and adds a version when O(value) differs from the latest version's payload (compared
    without ever printing either).
  - With O(generate=true) and no version yet, generates a random password and stores it as the first version; later
    runs leave it alone.
  - No payload is returned unless O(return_value=true); then set C(no_log) on the task.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The secret ID.
    type: str
    required: true
  value:
    description: The payload to hold as the latest version. Mutually exclusive with O(generate).
    type: str
  generate:
    description: Generate a random password when the secret has no version yet.
    type: bool
    default: false
  length:
    description: Length of a generated password.
    type: int
    default: 32
  labels:
    description: Labels of the secret.
    type: dict
    default: {}
  return_value:
    description:
      - Return the latest payload as RV(secret_value) (use C(no_log) on the task).
      - Without O(value) or O(generate) this is a read. A missing secret is neither created nor relabelled, and
        RV(exists) tells the caller, which decides what a missing secret means.
    type: bool
    default: false
  state:
    description: Whether the secret should exist. V(absent) deletes it with all versions.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The database password, generated once
  skyforge.prefect_platform.gcp_secret:
    project: my-project
    name: prefect-db-password
    generate: true

- name: Read it back where the Prefect server needs it
  skyforge.prefect_platform.gcp_secret:
    project: my-project
    name: prefect-db-password
    return_value: true
  no_log: true
  register: db_password
"""

RETURN = r"""
secret:
  description: The secret's metadata (never its payload).
  returned: success
  type: dict
version:
  description: The latest version's name after the run (predicted as C(pending) in check mode).
  returned: when present and a version exists or is added
  type: str
secret_value:
  description: The latest payload; only with O(return_value=true).
  returned: when O(return_value=true) and a version exists
  type: str
exists:
  description: Whether the secret exists and holds a version (a read's answer).
  returned: always
  type: bool
changes:
  description: What differed on an existing secret, C(labels) and C(latest_version) (a new version was added).
  returned: when an existing secret changed
  type: list
  elements: str
"""

import base64
import re
import secrets
import string

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import crc32c, GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    project_path,
    secret_path,
    secret_version_path,
)

ALPHABET = string.ascii_letters + string.digits + "-_.~"


def payload(version):
    return base64.b64decode(version["payload"]["data"]).decode("utf-8") if version else None


class Secret(GcpResource):
    """The secret's labels and its latest value. The view never holds a value: a version to add shows as
    latest_version "previous value" (or "none") before and "new value" after."""

    kind = "secret"
    api = "secretmanager"
    compare_on_view = True

    def __init__(self, module):
        super(Secret, self).__init__(module)
        self.secrets = self.client().projects().secrets()
        self.path = secret_path(self.params["project"], self.params["name"])
        self.generated = None
        self.added = None
        self.latest = None

    def label(self):
        return "secret %s" % self.name

    def get(self):
        """The secret, with its latest version (payload included) as `latest`."""
        meta = self.module.get(self.secrets.get(name=self.path), resource=self.label())
        if meta is None:
            return None
        self.latest = self.module.get(self.secrets.versions().access(
            name=secret_version_path(self.params["project"], self.path)), resource=self.label())
        return dict(meta, latest=self.latest)

    def new_value(self, latest):
        """The value a new version must hold, or None when the latest one is as asked."""
        p = self.params
        if p["state"] == "absent":
            return None
        if p["value"] is not None:
            return p["value"] if p["value"] != payload(latest) else None
        if p["generate"] and latest is None:
            if self.generated is None:
                self.generated = "".join(secrets.choice(ALPHABET) for _i in range(p["length"]))
            return self.generated
        return None

    def view(self, resource):
        if not resource:
            return resource
        out = {"name": self.name, "labels": resource.get("labels") or {}}
        latest = resource.get("latest")
        if self.added and latest and latest["name"] == self.added:
            out["latest_version"] = "new value"
        elif self.new_value(latest) is not None:
            out["latest_version"] = "previous value" if latest else "none"
        return out

    def desired(self):
        return {"name": self.name, "labels": self.params["labels"]}

    def changes(self, desired, current):
        out = ["labels"] if current["labels"] != desired["labels"] else []
        return out + (["latest_version"] if current.get("latest_version") in ("previous value", "none") else [])

    def matches(self, desired, current):
        # A secret our retried create made has no version yet: its labels say whether it is ours.
        return current["labels"] == desired["labels"]

    def predict(self, current, desired):
        out = dict(desired)
        if self.new_value(self.latest if current else None) is not None:
            out["latest_version"] = "new value"
        return out

    def create(self, desired):
        body = {"replication": {"automatic": {}}, "labels": desired["labels"]}
        return self.module.execute(self.secrets.create(parent=project_path(self.params["project"]),
                                                       secretId=self.name, body=body), "create", self.label(),
                                   allow_409=True)

    def update(self, current, desired, changes):
        if "labels" in changes:
            self.module.execute(self.secrets.patch(name=self.path, updateMask="labels",
                                                   body={"labels": desired["labels"]}), "patch", self.label())
        value = self.new_value(current.get("latest"))
        if value is not None:
            data = value.encode("utf-8")
            body = {"payload": {"data": base64.b64encode(data).decode("ascii"), "dataCrc32c": str(crc32c(data))}}
            self.added = self.module.execute(self.secrets.addVersion(parent=self.path, body=body), "addVersion",
                                             self.label())["name"]

    def delete(self, current):
        self.module.execute(self.secrets.delete(name=self.path), "delete", self.label())

    def outputs(self, after):
        """version, exists and (with return_value) secret_value, from the latest version read after the run."""
        latest = self.latest if after else None
        pending = bool(after) and after.get("latest_version") == "new value" and not self.added
        version = "pending" if pending else (latest or {}).get("name")
        out = dict(exists=version is not None)
        if version:
            out["version"] = version
        if self.params["return_value"] and payload(latest) is not None:
            out["secret_value"] = payload(latest)
        return out


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            value=dict(type="str", no_log=True),
            generate=dict(type="bool", default=False),
            length=dict(type="int", default=32),
            labels=dict(type="dict", default={}),
            return_value=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("value", "generate")],
    )
    p = module.params
    if not re.match(r"^[A-Za-z0-9_-]{1,255}$", p["name"] or ""):
        module.fail_json(msg="name=%r is not a valid Secret Manager secret ID: 1 to 255 letters, digits, hyphens and "
                             "underscores. Fix the variable that sets it." % p["name"])
    if p["length"] < 12 or p["length"] > 4096:
        module.fail_json(msg="length=%d: generated passwords must be 12 to 4096 characters" % p["length"])
    secret = Secret(module)
    if p["state"] == "present" and p["return_value"] and p["value"] is None and not p["generate"]:
        # A read: creating an empty secret here would hide a lost value behind a 403 later, and the reader's lack of
        # labels would strip the writer's.
        current = secret.get()
        module.exit_json(changed=False, secret=secret.view(current) or {}, **secret.outputs(current))
    module.ensure(secret, extra=secret.outputs)


if __name__ == "__main__":
    one_exit(main)()
