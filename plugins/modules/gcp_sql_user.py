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
    description: The password. Required when the user is created.
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
"""

RETURN = r"""
user:
  description: The user (name, type, instance; never the password).
  returned: success
  type: dict
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            instance=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
            update_password=dict(type="str", choices=["on_create", "always"], default="on_create"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    users = module.client("sqladmin").users()
    args = dict(project=p["project"], instance=p["instance"])
    label = "user %s of Cloud SQL instance %s" % (p["name"], p["instance"])
    current = module.get(users.get(name=p["name"], **args), resource=label)

    def view(user):
        return {"name": user["name"], "instance": p["instance"], "type": user.get("type", "BUILT_IN")} if user else None

    if p["state"] == "absent":
        if current and not module.check_mode:
            module.wait("sqladmin", module.execute(users.delete(name=p["name"], **args), "delete", label), resource=label)
        module.exit_json(changed=bool(current), user={}, diff=diff_dict(view(current), None))

    if current is None:
        if not p["password"]:
            module.fail_json(msg="%s does not exist yet: password is required to create it (keep it in Secret Manager "
                                 "with skyforge.prefect_platform.gcp_secret)" % label)
        after = {"name": p["name"], "instance": p["instance"], "type": "BUILT_IN"}
        if not module.check_mode:
            try:
                op = module.execute(users.insert(body={"name": p["name"], "password": p["password"], "type": "BUILT_IN"},
                                                 **args), "insert", label, allow_409=True)
                module.wait("sqladmin", op, resource=label)
            except GcpApiError:
                pass  # our own retried insert got through the first time

        module.exit_json(changed=True, user=after, diff=diff_dict(None, after))

    if p["update_password"] == "always" and p["password"]:
        if not module.check_mode:
            op = module.execute(users.update(name=p["name"], body={"name": p["name"], "password": p["password"]}, **args),
                                "update", label)
            module.wait("sqladmin", op, resource=label)
        module.exit_json(changed=True, user=view(current),
                         diff={"before": {"password": "(previous)"}, "after": {"password": "(updated)"}})
    module.exit_json(changed=False, user=view(current), diff=diff_dict(view(current), view(current)))


if __name__ == "__main__":
    main()
