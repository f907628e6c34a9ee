#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: aws_service_discovery_service
short_description: Manage an AWS Cloud Map service in a DNS namespace
version_added: 0.2.0
description:
  - Creates, updates or deletes a Cloud Map service, found by name in its namespace. An ECS service registers its
    tasks with it through C(service_registries) (its C(registryArn) is RV(service.Arn)).
  - The routing policy and the health-check kind cannot change once created; the DNS records' TTL and the
    description can.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.aws
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The service name; its DNS name is C(<name>.<namespace>).
    type: str
    required: true
  namespace_id:
    description:
      - The namespace's ID (C(ns-...)), as M(skyforge.prefect_platform.aws_service_discovery_namespace) returns it.
      - One of O(namespace_id) and O(namespace) is required.
    type: str
  namespace:
    description:
      - The namespace's name, looked up among the private DNS namespaces, instead of O(namespace_id).
      - With O(state=absent) a namespace that does not exist means there is no service to delete.
    type: str
  description:
    description: A description of the service.
    type: str
  dns_record_type:
    description: The DNS record each registered task gets. V(A) for tasks in C(awsvpc) network mode.
    type: str
    choices: [A, AAAA, SRV]
    default: A
  dns_ttl:
    description: TTL in seconds of the records.
    type: int
    default: 10
  routing_policy:
    description: How Cloud Map answers with several healthy tasks. Cannot change once created.
    type: str
    choices: [MULTIVALUE, WEIGHTED]
    default: MULTIVALUE
  custom_health_check:
    description:
      - Whether the registering service (ECS) reports the tasks' health (C(HealthCheckCustomConfig)), as ECS needs
        for a task without a load balancer. Cannot change once created.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for Cloud Map's update operation.
    type: int
    default: 300
  state:
    description: Whether the service should exist. A service with registered instances cannot be deleted.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Namespace for the worker
  skyforge.prefect_platform.aws_service_discovery_namespace:
    name: prefect.internal
    vpc_id: "{{ vpc_id }}"
  register: ns

- name: Cloud Map service the ECS service registers its tasks with
  skyforge.prefect_platform.aws_service_discovery_service:
    name: prefect-worker
    namespace_id: "{{ ns.namespace.Id }}"
    dns_ttl: 10
  register: discovery
"""

RETURN = r"""
service:
  description: The service as Cloud Map describes it (empty when absent).
  returned: always
  type: dict
  contains:
    Id:
      description: The service ID (C(srv-...)).
      type: str
    Arn:
      description: The service ARN, the C(registryArn) of an ECS service's C(service_registries).
      type: str
    Name:
      description: The service name.
      type: str
    NamespaceId:
      description: The namespace's ID.
      type: str
    Description:
      description: The description.
      type: str
    DnsConfig:
      description: Routing policy and DNS records.
      type: dict
    HealthCheckCustomConfig:
      description: Present when the registering service reports health.
      type: dict
changes:
  description: The fields that differed and were updated.
  returned: when an existing service changed
  type: list
  elements: str
"""

import uuid

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.aws import AwsModule, AwsResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit


class Service(AwsResource):
    kind = "service"
    immutable = ("DnsConfig.RoutingPolicy", "HealthCheckCustomConfig", "NamespaceId")

    def __init__(self, module):
        super(Service, self).__init__(module)
        if not self.params.get("namespace_id"):
            self.params["namespace_id"] = self._namespace_id(self.params["namespace"])

    def _namespace_id(self, name):
        items = self.module.paginate("servicediscovery", "list_namespaces", "Namespaces",
                                     Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"}])
        for item in items:
            if item.get("Name") == name and item.get("Type") == "DNS_PRIVATE":
                return item["Id"]
        if self.params["state"] == "present":
            self.module.fail_json(msg="Cloud Map namespace %s does not exist. Fix: create it first "
                                      "(skyforge.prefect_platform.aws_service_discovery_namespace)." % name)
        return None

    def get(self):
        if not self.params["namespace_id"]:
            return None
        items = self.module.paginate("servicediscovery", "list_services", "Services", Filters=[
            {"Name": "NAMESPACE_ID", "Values": [self.params["namespace_id"]], "Condition": "EQ"}])
        for item in items:
            if item.get("Name") != self.name:
                continue
            found = self.module.call("servicediscovery", "get_service", Id=item["Id"], allow=("ServiceNotFound",))
            # Filters are advisory on some endpoints: only a service of this namespace is ours.
            if found and found["Service"].get("NamespaceId") == self.params["namespace_id"]:
                return found["Service"]
        return None

    def _records(self):
        return [{"Type": self.params["dns_record_type"], "TTL": self.params["dns_ttl"]}]

    def desired(self):
        out = {"Name": self.name, "NamespaceId": self.params["namespace_id"],
               "DnsConfig": {"RoutingPolicy": self.params["routing_policy"], "DnsRecords": self._records()}}
        if self.params["custom_health_check"]:
            out["HealthCheckCustomConfig"] = {"FailureThreshold": 1}
        if self.params.get("description") is not None:
            out["Description"] = self.params["description"]
        return out

    def changes(self, desired, current):
        out = super(Service, self).changes(desired, current)
        if not self.params["custom_health_check"] and current.get("HealthCheckCustomConfig"):
            out.append("HealthCheckCustomConfig")
        return out

    def create(self, desired):
        args = dict(Name=self.name, NamespaceId=self.params["namespace_id"], CreatorRequestId=str(uuid.uuid4()),
                    DnsConfig=desired["DnsConfig"])
        if "HealthCheckCustomConfig" in desired:
            args["HealthCheckCustomConfig"] = desired["HealthCheckCustomConfig"]
        if "Description" in desired:
            args["Description"] = desired["Description"]
        self.module.call("servicediscovery", "create_service", **args)

    def update(self, current, desired, changes):
        update = {"DnsConfig": {"DnsRecords": desired["DnsConfig"]["DnsRecords"]}}
        if "Description" in desired:
            update["Description"] = desired["Description"]
        op_id = self.module.call("servicediscovery", "update_service", Id=current["Id"], Service=update)["OperationId"]

        def read():
            return self.module.call("servicediscovery", "get_operation", OperationId=op_id)["Operation"]

        op = self.module.wait(read, lambda o: o["Status"] in ("SUCCESS", "FAIL"), self.params["wait_timeout"],
                              "Cloud Map operation %s on service %s" % (op_id, self.name))
        if op["Status"] == "FAIL":
            self.module.fail_json(msg="Cloud Map could not update service %s: %s (%s)" % (
                self.name, op.get("ErrorMessage"), op.get("ErrorCode")))

    def delete(self, current):
        self.module.call("servicediscovery", "delete_service", Id=current["Id"], allow=("ServiceNotFound",))

    def view(self, resource):
        if resource is None:
            return None
        keep = ("Id", "Arn", "Name", "NamespaceId", "Description", "DnsConfig", "HealthCheckCustomConfig")
        return dict((k, resource[k]) for k in keep if resource.get(k) is not None)


def main():
    module = AwsModule(argument_spec=dict(
        name=dict(type="str", required=True),
        namespace_id=dict(type="str"),
        namespace=dict(type="str"),
        description=dict(type="str"),
        dns_record_type=dict(type="str", choices=["A", "AAAA", "SRV"], default="A"),
        dns_ttl=dict(type="int", default=10),
        routing_policy=dict(type="str", choices=["MULTIVALUE", "WEIGHTED"], default="MULTIVALUE"),
        custom_health_check=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    ), required_one_of=[["namespace_id", "namespace"]], mutually_exclusive=[["namespace_id", "namespace"]])
    module.ensure(Service(module))


if __name__ == "__main__":
    one_exit(main)()
