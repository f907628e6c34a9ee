#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_sql_database
short_description: Manage a database in a Cloud SQL instance
version_added: 0.1.0
description:
  - Creates or deletes a database. Charset and collation cannot change once created.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The database name.
    type: str
    required: true
  instance:
    description: The Cloud SQL instance name.
    type: str
    required: true
  charset:
    description:
      - Character set. When omitted, the engine's default at creation (C(UTF8) on PostgreSQL, C(utf8mb4) on MySQL)
        and left alone afterwards.
    type: str
  state:
    description: Whether the database should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Prefect's database
  skyforge.prefect_platform.gcp_sql_database:
    project: my-project
    instance: prefect-db
    name: prefect
"""

RETURN = r"""
database:
  description: The database as the API returns it (predicted in check mode).
  returned: success
  type: dict
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource


class SqlDatabase(GcpResource):
    api = "sqladmin"
    kind = "database"
    immutable = ("charset",)

    def _args(self, **kw):
        kw.update(project=self.params["project"], instance=self.params["instance"])
        return kw

    def label(self):
        return "database %s of Cloud SQL instance %s" % (self.name, self.params["instance"])

    def get(self):
        return self.module.get(self.client().databases().get(**self._args(database=self.name)), resource=self.label())

    def desired(self):
        desired = {"name": self.name}
        if self.params["charset"]:
            desired["charset"] = self.params["charset"]
        return desired

    def create(self, desired):
        op = self.module.execute(self.client().databases().insert(body=desired, **self._args()), "insert",
                                 self.label(), allow_409=True)
        self.module.wait("sqladmin", op, resource=self.label())

    def delete(self, current):
        op = self.module.execute(self.client().databases().delete(**self._args(database=self.name)), "delete",
                                 self.label())
        self.module.wait("sqladmin", op, resource=self.label())


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            instance=dict(type="str", required=True),
            charset=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    module.ensure(SqlDatabase(module))


if __name__ == "__main__":
    one_exit(main)()
