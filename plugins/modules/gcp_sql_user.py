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
  - Cloud SQL refuses a change to a user while another operation runs on the instance; the module then reads the user
    again and retries.
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
  host:
    description:
      - The host the user connects from, C(%) for any. Required on a MySQL instance (where C(app@%) and
        C(app@10.0.0.5) are two users); PostgreSQL users have no host, so leave it unset there.
    type: str
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

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import (
    CONFLICT,
    GcpApiError,
    GcpMember,
    GcpModule,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    secret_path,
    secret_version_path,
)


class User(GcpMember):
    """A user of a Cloud SQL instance. Each write is an operation on the instance, which Cloud SQL refuses (409) while
    another one runs there: the user is then read again and the write retried."""

    kind = "user"
    api = "sqladmin"

    def __init__(self, module):
        super(User, self).__init__(module)
        p = self.params
        self.users = self.client().users()
        self.args = dict(project=p["project"], instance=p["instance"])
        # users.insert takes the host in its body; get, update and delete take it as a parameter.
        self.host_args = dict(self.args, host=p["host"]) if p["host"] else self.args
        self.has_password = bool(p["password"] or p["password_secret"])

    def label(self):
        return "user %s of Cloud SQL instance %s" % (self.name, self.params["instance"])

    def parent_label(self):
        return "Cloud SQL instance %s" % self.params["instance"]

    def read(self):
        return self.module.get(self.users.get(name=self.name, **self.host_args), resource=self.label())

    def find(self, parent):
        # The parent read is the user itself: its instance holds no list of users to write back.
        if not parent:
            return None
        found = {"name": parent["name"], "instance": self.params["instance"], "type": parent.get("type", "BUILT_IN")}
        if self.params["host"]:
            found["host"] = parent.get("host", "")
        return found

    def target(self, current, state):
        if state == "absent":
            return None
        if current is None:
            if not self.has_password:
                self.module.fail_json(msg="%s does not exist yet: password or password_secret is required to create "
                                          "it (keep it in Secret Manager with skyforge.prefect_platform.gcp_secret)"
                                          % self.label())
            target = {"name": self.name, "instance": self.params["instance"], "type": "BUILT_IN"}
            if self.params["host"]:
                target["host"] = self.params["host"]
            return target
        if self.params["update_password"] == "always" and self.has_password:
            # The API cannot tell whether the password differs: setting it is always a change.
            return dict(current, password="(updated)")
        return current

    def password(self):
        p = self.params
        if p["password"]:
            return p["password"]
        secret = secret_path(p["project"], p["password_secret"])
        versions = self.module.client("secretmanager").projects().secrets().versions()
        latest = self.module.get(versions.access(name=secret_version_path(p["project"], secret)),
                                 resource="secret %s" % secret.rsplit("/", 1)[-1])
        if not latest:
            self.module.fail_json(msg="%s needs a password, but secret %s has no version. Fix: create it first "
                                      "(skyforge.prefect_platform.gcp_secret with generate: true)."
                                      % (self.label(), secret))
        value = base64.b64decode(latest["payload"]["data"]).decode("utf-8")
        self.module.no_log_values.add(value)
        return value

    def write(self, parent, current, target):
        if target is None:
            self._run(self.users.delete(name=self.name, **self.host_args), "delete")
        elif current is None:
            body = {"name": self.name, "password": self.password(), "type": "BUILT_IN"}
            if self.params["host"]:
                body["host"] = self.params["host"]
            try:
                self._run(self.users.insert(body=body, **self.args), "insert")
            except GcpApiError as exc:
                # Not ours: someone else's user, or an operation still running on the instance; read again.
                if self.module.adopt_duplicate(exc, self.read, lambda user: self.find(user) == target) is None:
                    raise
        else:
            self._run(self.users.update(name=self.name, body={"name": self.name, "password": self.password()},
                                        **self.host_args), "update")
        return None

    def _run(self, request, action):
        self.module.wait("sqladmin", self.module.execute(request, action, self.label(), allow=CONFLICT),
                         resource=self.label())

    def diff(self, before, after):
        if before and after and "password" in after:
            return {"before": {"password": "(previous)"}, "after": {"password": "(updated)"}}
        return super(User, self).diff(before, after)

    def result(self, parent, before, after, changes):
        return {"user": dict((k, v) for k, v in after.items() if k != "password") if after else {}}


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            instance=dict(type="str", required=True),
            host=dict(type="str"),
            password=dict(type="str", no_log=True),
            password_secret=dict(type="str", no_log=False),
            # A when-to-set enum, not a secret: its name only matches Ansible's password heuristic.
            update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("password", "password_secret")],
    )
    module.ensure(User(module))


if __name__ == "__main__":
    one_exit(main)()
