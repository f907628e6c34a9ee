"""Cloud Map namespace and service modules against the AWS stand-in (moto on loopback)."""

from tests.unit.idempotence import converge


def _vpc(aws_standin, cidr):
    return aws_standin.client("ec2").create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]


def _namespaces(aws_standin):
    return [n["Name"] for n in aws_standin.client("servicediscovery").list_namespaces()["Namespaces"]]


def test_namespace_converges_updates_and_deletes(module_runner, aws_standin, aws_args):
    vpc = _vpc(aws_standin, "10.61.0.0/16")
    args = dict(aws_args, name="sd-one.internal", vpc_id=vpc, description="first")
    check, real, _again = converge(module_runner, "aws_service_discovery_namespace", args)
    assert check["namespace"]["Name"] == "sd-one.internal" and "Id" not in check["namespace"]
    assert real["namespace"]["Id"].startswith("ns-") and real["namespace"]["Type"] == "DNS_PRIVATE"
    assert _namespaces(aws_standin).count("sd-one.internal") == 1

    changed = module_runner("aws_service_discovery_namespace", dict(args, description="second"))
    assert changed["changed"] is True and changed["changes"] == ["Description"]
    assert changed["namespace"]["Description"] == "second"
    assert changed["diff"]["before"]["Description"] == "first"

    gone_check = module_runner("aws_service_discovery_namespace", dict(args, state="absent"), check=True)
    assert gone_check["changed"] is True and "sd-one.internal" in _namespaces(aws_standin)
    gone = module_runner("aws_service_discovery_namespace", dict(args, state="absent"))
    assert gone["changed"] is True and "sd-one.internal" not in _namespaces(aws_standin)
    again = module_runner("aws_service_discovery_namespace", dict(args, state="absent"))
    assert again["changed"] is False


def test_namespace_without_vpc_fails_with_the_fix(module_runner, aws_args):
    out = module_runner("aws_service_discovery_namespace", dict(aws_args, name="sd-novpc.internal"), expect_fail=True)
    assert "set vpc_id" in out["msg"]


def test_service_converges_updates_ttl_and_refuses_an_immutable_change(module_runner, aws_standin, aws_args):
    vpc = _vpc(aws_standin, "10.62.0.0/16")
    ns = module_runner("aws_service_discovery_namespace", dict(aws_args, name="sd-two.internal", vpc_id=vpc))
    ns_id = ns["namespace"]["Id"]
    args = dict(aws_args, name="worker", namespace_id=ns_id)
    _check, real, again = converge(module_runner, "aws_service_discovery_service", args)
    assert real["service"]["Arn"].startswith("arn:aws:servicediscovery:")
    assert real["service"]["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 10}]
    assert again["service"]["Id"] == real["service"]["Id"]

    ttl = module_runner("aws_service_discovery_service", dict(args, dns_ttl=30))
    assert ttl["changed"] is True and ttl["service"]["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 30}]

    refused = module_runner("aws_service_discovery_service", dict(args, dns_ttl=30, routing_policy="WEIGHTED"),
                            expect_fail=True)
    assert "DnsConfig.RoutingPolicy cannot be changed in place" in refused["msg"]

    # The same name in another namespace is another service.
    other_vpc = _vpc(aws_standin, "10.63.0.0/16")
    other = module_runner("aws_service_discovery_namespace", dict(aws_args, name="sd-three.internal",
                                                                  vpc_id=other_vpc))
    twin = module_runner("aws_service_discovery_service", dict(args, namespace_id=other["namespace"]["Id"]),
                         check=True)
    assert twin["changed"] is True

    by_name = dict(aws_args, name="worker", namespace="sd-two.internal")
    assert module_runner("aws_service_discovery_service", dict(by_name, dns_ttl=30))["changed"] is False
    gone = module_runner("aws_service_discovery_service", dict(by_name, state="absent"))
    assert gone["changed"] is True
    assert module_runner("aws_service_discovery_service", dict(args, state="absent"))["changed"] is False
    missing = dict(aws_args, name="worker", namespace="sd-missing.internal")
    assert module_runner("aws_service_discovery_service", dict(missing, state="absent"))["changed"] is False
    refused = module_runner("aws_service_discovery_service", missing, expect_fail=True)
    assert "sd-missing.internal does not exist" in refused["msg"]
    for name in ("sd-two.internal", "sd-three.internal"):
        module_runner("aws_service_discovery_namespace", dict(aws_args, name=name, state="absent"))


def test_secret_key_never_appears_in_output(module_runner, aws_args):
    out = module_runner("aws_service_discovery_namespace", dict(aws_args, name="sd-absent.internal", state="absent"))
    assert aws_args["secret_key"] not in out["_stdout"]
