#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_sql_user
short_description: Manage a built-in database user of a Cloud SQL instance
version_added: 0.1.0
description:
  - Creates or deletes a user. The password is never returned and never appears in a diff.
  - The API cannot tell whether a password differs, so O(update_password=on_create) (the default) sets it only when
    the user is created; V(always) sets it on every run and then always reports a change.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The user name.
    type: str
    required: true
  instance:
    description: The Cloud SQL instance name.
    type: str
    required: true
  password:
    description: The password. This or O(password_secret) is required when the user is created.
    type: str
  password_secret:
    description:
      - A Secret Manager secret (its name in O(project), or C(projects/P/secrets/S)) whose latest version is the
        password. The module reads it only when it sets the password, so a run that finds the user reads no secret,
        and the password never passes through the playbook.
    type: str
  update_password:
    description: When to set the password.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description: Whether the user should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Prefect's database user
  skyforge.prefect_platform.gcp_sql_user:
    project: my-project
    instance: prefect-db
    name: prefect
    password: "{{ db_password.secret_value }}"
  no_log: false  # the password option is no_log already

- name: The same, the password read from Secret Manager only if the user must be created
  skyforge.prefect_platform.gcp_sql_user:
    project: my-project
    instance: prefect-db
    name: prefect
    password_secret: prefect-db-password
"""

RETURN = r"""
user:
  description: The user (name, type, instance; never the password).
  returned: success
  type: dict
"""

import base64

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            instance=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
            password_secret=dict(type="str", no_log=False),
            # A when-to-set enum, not a secret: its name only matches Ansible's password heuristic.
            update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("password", "password_secret")],
    )
    p = module.params
    users = module.client("sqladmin").users()
    args = dict(project=p["project"], instance=p["instance"])
    label = "user %s of Cloud SQL instance %s" % (p["name"], p["instance"])
    current = module.get(users.get(name=p["name"], **args), resource=label)
    has_password = bool(p["password"] or p["password_secret"])

    def password():
        if p["password"]:
            return p["password"]
        secret = p["password_secret"]
        if not secret.startswith("projects/"):
            secret = "projects/%s/secrets/%s" % (p["project"], secret)
        latest = module.get(module.client("secretmanager").projects().secrets().versions().access(
            name="%s/versions/latest" % secret), resource="secret %s" % secret.rsplit("/", 1)[-1])
        if not latest:
            module.fail_json(msg="%s needs a password, but secret %s has no version. Fix: create it first "
                                 "(skyforge.prefect_platform.gcp_secret with generate: true)." % (label, secret))
        value = base64.b64decode(latest["payload"]["data"]).decode("utf-8")
        module.no_log_values.add(value)
        return value

    def view(user):
        return {"name": user["name"], "instance": p["instance"], "type": user.get("type", "BUILT_IN")} if user else None

    if p["state"] == "absent":
        if current and not module.check_mode:
            module.wait("sqladmin", module.execute(users.delete(name=p["name"], **args), "delete", label), resource=label)
        module.exit_json(changed=bool(current), user={}, diff=diff_dict(view(current), None))

    if current is None:
        if not has_password:
            module.fail_json(msg="%s does not exist yet: password or password_secret is required to create it (keep "
                                 "it in Secret Manager with skyforge.prefect_platform.gcp_secret)" % label)
        after = {"name": p["name"], "instance": p["instance"], "type": "BUILT_IN"}
        if not module.check_mode:
            value = password()
            try:
                op = module.execute(users.insert(body={"name": p["name"], "password": value, "type": "BUILT_IN"},
                                                 **args), "insert", label, allow_409=True)
                module.wait("sqladmin", op, resource=label)
            except GcpApiError:
                pass  # our own retried insert got through the first time

        module.exit_json(changed=True, user=after, diff=diff_dict(None, after))

    if p["update_password"] == "always" and has_password:
        if not module.check_mode:
            op = module.execute(users.update(name=p["name"], body={"name": p["name"], "password": password()}, **args),
                                "update", label)
            module.wait("sqladmin", op, resource=label)
        module.exit_json(changed=True, user=view(current),
                         diff={"before": {"password": "(previous)"}, "after": {"password": "(updated)"}})
    module.exit_json(changed=False, user=view(current), diff=diff_dict(view(current), view(current)))


if __name__ == "__main__":
    main()
