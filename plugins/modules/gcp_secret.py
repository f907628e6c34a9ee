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
"""

import base64
import re
import secrets
import string

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    project_path,
    secret_path,
    secret_version_path,
)

ALPHABET = string.ascii_letters + string.digits + "-_.~"


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in bytearray(data):
        crc ^= byte
        for _i in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


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
    sm = module.client("secretmanager").projects().secrets()
    name = secret_path(p["project"], p["name"])
    label = "secret %s" % p["name"]
    current = module.get(sm.get(name=name), resource=label)
    view_before = {"name": p["name"], "labels": (current or {}).get("labels", {})} if current else None

    if p["state"] == "absent":
        if current and not module.check_mode:
            module.execute(sm.delete(name=name), "delete", label)
        module.exit_json(changed=bool(current), secret={}, exists=False, diff=diff_dict(view_before, None))

    if p["return_value"] and p["value"] is None and not p["generate"]:
        # A read: creating an empty secret here would hide a lost value behind a 403 later, and the reader's lack of
        # labels would strip the writer's.
        latest = None
        if current is not None:
            latest = module.get(sm.versions().access(name=secret_version_path(p["project"], name)), resource=label)
        result = dict(changed=False, exists=latest is not None, secret=view_before or {})
        if latest:
            result["version"] = latest["name"]
            result["secret_value"] = base64.b64decode(latest["payload"]["data"]).decode("utf-8")
        module.exit_json(**result)

    changed = False
    if current is None:
        changed = True
        if not module.check_mode:
            body = {"replication": {"automatic": {}}, "labels": p["labels"]}
            try:
                current = module.execute(sm.create(parent=project_path(p["project"]), secretId=p["name"], body=body),
                                         "create", label, allow_409=True)
            except GcpApiError as exc:
                current = module.adopt_duplicate(exc, lambda: module.get(sm.get(name=name), resource=label),
                                                 lambda cur: (cur.get("labels") or {}) == p["labels"])
                if current is None:
                    module.fail_json(msg=str(exc), status=exc.status)
    elif (current.get("labels") or {}) != p["labels"]:
        changed = True
        if not module.check_mode:
            current = module.execute(sm.patch(name=name, updateMask="labels", body={"labels": p["labels"]}),
                                     "patch", label)

    latest = None
    if current is not None and "name" in current:
        latest = module.get(sm.versions().access(name=secret_version_path(p["project"], name)), resource=label)
    latest_value = base64.b64decode(latest["payload"]["data"]).decode("utf-8") if latest else None

    new_value = None
    if p["value"] is not None and p["value"] != latest_value:
        new_value = p["value"]
    elif p["generate"] and latest is None:
        new_value = "".join(secrets.choice(ALPHABET) for _i in range(p["length"]))
    version = latest["name"] if latest else None
    version_changed = new_value is not None
    if version_changed:
        changed = True
        version = "pending"
        if not module.check_mode:
            data = new_value.encode("utf-8")
            body = {"payload": {"data": base64.b64encode(data).decode("ascii"), "dataCrc32c": str(crc32c(data))}}
            added = module.execute(sm.addVersion(parent=name, body=body), "addVersion", label)
            version = added["name"]
            latest_value = new_value

    after = {"name": p["name"], "labels": p["labels"]}
    if version_changed:
        # The diff says a new version holds a new value, never what either value is.
        after["latest_version"] = "new value"
        before_view = dict(view_before or {}, latest_version="previous value" if latest else "none")
    else:
        before_view = view_before
    result = dict(changed=changed, secret=after, diff=diff_dict(before_view, after), exists=version is not None)
    if version:
        result["version"] = version
    if p["return_value"] and latest_value is not None:
        result["secret_value"] = latest_value
    module.exit_json(**result)


if __name__ == "__main__":
    main()
