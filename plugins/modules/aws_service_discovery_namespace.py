#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: aws_service_discovery_namespace
short_description: Manage an AWS Cloud Map private DNS namespace
version_added: 0.2.0
description:
  - Creates, updates or deletes a Cloud Map private DNS namespace on a VPC, found by name.
  - Cloud Map creates and deletes namespaces through operations; the module waits for each to finish.
  - A namespace is found by name among the account's private DNS namespaces; its VPC cannot change once created.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.aws
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The namespace's DNS name, for example V(prefect.internal).
    type: str
    required: true
  vpc_id:
    description: The VPC the namespace's private hosted zone is associated with. Required to create it.
    type: str
  description:
    description: A description of the namespace.
    type: str
  dns_ttl:
    description: TTL in seconds of the namespace's SOA record.
    type: int
    default: 15
  wait_timeout:
    description: Seconds to wait for Cloud Map's create, update or delete operation.
    type: int
    default: 300
  state:
    description: Whether the namespace should exist. A namespace that still has services cannot be deleted.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Private DNS namespace for the worker's service discovery
  skyforge.prefect_platform.aws_service_discovery_namespace:
    region: eu-west-1
    name: prefect.internal
    vpc_id: vpc-0123456789abcdef0
    description: Prefect worker discovery
"""

RETURN = r"""
namespace:
  description: The namespace as Cloud Map describes it (empty when absent).
  returned: always
  type: dict
  contains:
    Id:
      description:
        - The namespace ID (C(ns-...)), which
          O(skyforge.prefect_platform.aws_service_discovery_service#module:namespace_id) takes.
      type: str
      sample: ns-e1example0000000
    Arn:
      description: The namespace ARN.
      type: str
    Name:
      description: The namespace name.
      type: str
    Type:
      description: Always C(DNS_PRIVATE).
      type: str
    Description:
      description: The description.
      type: str
changes:
  description: The fields that differed and were updated.
  returned: when an existing namespace changed
  type: list
  elements: str
"""

import uuid

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.aws import AwsModule, AwsResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit

PRIVATE = "DNS_PRIVATE"


class Namespace(AwsResource):
    kind = "namespace"
    returns_resource = False

    def _wait(self, operation_id):
        module = self.module

        def read():
            return module.call("servicediscovery", "get_operation", OperationId=operation_id)["Operation"]

        op = module.wait(read, lambda o: o["Status"] in ("SUCCESS", "FAIL"), self.params["wait_timeout"],
                         "Cloud Map operation %s on namespace %s" % (operation_id, self.name))
        if op["Status"] == "FAIL":
            module.fail_json(msg="Cloud Map could not %s namespace %s: %s (%s)" % (
                op.get("Type", "change"), self.name, op.get("ErrorMessage"), op.get("ErrorCode")))
        return op

    def get(self):
        items = self.module.paginate("servicediscovery", "list_namespaces", "Namespaces",
                                     Filters=[{"Name": "TYPE", "Values": [PRIVATE], "Condition": "EQ"}])
        for item in items:
            if item.get("Name") == self.name and item.get("Type") == PRIVATE:
                return self.module.call("servicediscovery", "get_namespace", Id=item["Id"])["Namespace"]
        return None

    def desired(self):
        out = {"Name": self.name, "Type": PRIVATE,
               "Properties": {"DnsProperties": {"SOA": {"TTL": self.params["dns_ttl"]}}}}
        if self.params.get("description") is not None:
            out["Description"] = self.params["description"]
        return out

    def changes(self, desired, current):
        out = super(Namespace, self).changes(desired, current)
        # moto and older namespaces leave SOA unset: Cloud Map's default (15 s) applies.
        soa = ((current.get("Properties") or {}).get("DnsProperties") or {}).get("SOA")
        if not soa and self.params["dns_ttl"] == 15:
            out = [c for c in out if not c.startswith("Properties.")]
        return out

    def create(self, desired):
        if not self.params.get("vpc_id"):
            self.module.fail_json(msg="namespace %s does not exist: set vpc_id to create it." % self.name)
        args = dict(Name=self.name, Vpc=self.params["vpc_id"], CreatorRequestId=str(uuid.uuid4()),
                    Properties={"DnsProperties": {"SOA": {"TTL": self.params["dns_ttl"]}}})
        if self.params.get("description") is not None:
            args["Description"] = self.params["description"]
        self._wait(self.module.call("servicediscovery", "create_private_dns_namespace", **args)["OperationId"])

    def update(self, current, desired, changes):
        update = {}
        if any(c == "Description" for c in changes):
            update["Description"] = desired["Description"]
        if any(c.startswith("Properties") for c in changes):
            update["Properties"] = {"DnsProperties": {"SOA": {"TTL": self.params["dns_ttl"]}}}
        self._wait(self.module.call("servicediscovery", "update_private_dns_namespace", Id=current["Id"],
                                    UpdaterRequestId=str(uuid.uuid4()), Namespace=update)["OperationId"])

    def delete(self, current):
        out = self.module.call("servicediscovery", "delete_namespace", Id=current["Id"], allow=("NamespaceNotFound",))
        if out:
            self._wait(out["OperationId"])

    def view(self, resource):
        if resource is None:
            return None
        keep = ("Id", "Arn", "Name", "Type", "Description", "Properties")
        return dict((k, resource[k]) for k in keep if k in resource)


def main():
    module = AwsModule(argument_spec=dict(
        name=dict(type="str", required=True),
        vpc_id=dict(type="str"),
        description=dict(type="str"),
        dns_ttl=dict(type="int", default=15),
        wait_timeout=dict(type="int", default=300),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    ))
    module.ensure(Namespace(module))


if __name__ == "__main__":
    one_exit(main)()
