"""The one place GCP names and values are checked (plugins/module_utils/gcp_names.py), as the roles' validations use it."""

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import gcp_names as g


def test_predefined_roles_are_the_one_list_the_sandbox_also_names():
    # The sandbox's least-privilege table names roles by hand; every one must be a role this list knows, so the two
    # cannot drift apart (one source: the collection's list).
    from sandbox.gcp.iam_enforce import ROLE_PERMISSIONS

    assert set(ROLE_PERMISSIONS) <= g.PREDEFINED_ROLES, sorted(set(ROLE_PERMISSIONS) - g.PREDEFINED_ROLES)


def test_iam_roles():
    assert g.iam_role_problems(["roles/storage.admin", "roles/owner", "projects/my-proj-1/roles/deployer",
                                "organizations/123/roles/auditor"], "v") == []
    (msg,) = g.iam_role_problems(["roles/storage.admn"], "tfc_agent_project_roles")
    assert msg.startswith("tfc_agent_project_roles: roles/storage.admn is not a predefined role")
    assert "did you mean roles/storage.admin?" in msg
    assert g.iam_role_problems(["roles/newservice.admin"], "v", ["roles/newservice.admin"]) == []
    assert g.iam_role_problems("roles/storage.admin", "v")[0].startswith("v must be a list")
    assert "not a custom role name" in g.iam_role_problems(["projects/x/roles/y"], "v")[0]


def test_services_come_from_the_discovery_documents():
    assert g.service_problems(["compute.googleapis.com", "sqladmin.googleapis.com", "run.googleapis.com",
                               "servicenetworking.googleapis.com", "storage-api.googleapis.com"], "s") == []
    (msg,) = g.service_problems(["computer.googleapis.com"], "s")
    assert "did you mean compute.googleapis.com?" in msg
    assert "is not an API service name" in g.service_problems(["compute"], "s")[0]


def test_sql_tiers():
    for ok in ("db-f1-micro", "db-g1-small", "db-custom-1-3840", "db-custom-2-7680", "db-custom-4-26624",
               "db-perf-optimized-N-8"):
        assert g.sql_tier_problem(ok) == "", ok
    assert "multiple of 256" in g.sql_tier_problem("db-custom-1-384")
    assert "1 or an even number" in g.sql_tier_problem("db-custom-3-7680")
    assert "0.9 to 6.5 GiB per vCPU" in g.sql_tier_problem("db-custom-1-16384")
    assert "0.9 to 6.5 GiB per vCPU" in g.sql_tier_problem("db-custom-8-3840")
    assert "is not a Cloud SQL tier" in g.sql_tier_problem("db-huge")
    assert "not a tier name" not in g.sql_tier_problem("db-custom-1-3840") and g.sql_tier_problem(True)


def test_sql_max_connections_follow_cloud_sqls_defaults_by_memory_unless_the_flag_sets_them():
    expected = {"db-f1-micro": 25, "db-g1-small": 50, "db-custom-1-3840": 100, "db-custom-1-6144": 200,
                "db-custom-2-7680": 400, "db-custom-4-15360": 500, "db-custom-8-30720": 600, "db-custom-16-61440": 800,
                "db-custom-32-122880": 1000, "db-perf-optimized-N-2": 500}
    assert {tier: g.sql_max_connections(tier) for tier in expected} == expected
    assert g.sql_max_connections("db-custom-1-3840", {"max_connections": "250"}) == 250
    with pytest.raises(ValueError, match="is not a Cloud SQL tier"):
        g.sql_max_connections("db-huge")


def test_sql_flags():
    assert g.sql_flag_problems({"max_connections": "200", "log_connections": "on", "random_page_cost": "1.1",
                                "log_statement": "ddl", "cloudsql.iam_authentication": "off"}) == []
    assert "did you mean max_connections?" in g.sql_flag_problems({"max_conections": "1"})[0]
    assert "takes a whole number" in g.sql_flag_problems({"max_connections": "many"})[0]
    assert "takes on or off" in g.sql_flag_problems({"log_connections": True})[0]
    assert "takes one of none, ddl, mod, all" in g.sql_flag_problems({"log_statement": "some"})[0]


def test_labels():
    assert g.label_problems({"team": "platform", "env": "", "cost_centre-1": "a-1"}, "l") == []
    assert "label keys" in g.label_problems({"Team": "x"}, "l")[0]
    assert "label keys" in g.label_problems({"1team": "x"}, "l")[0]
    assert "label values" in g.label_problems({"team": "A B"}, "l")[0]
    assert "label values" in g.label_problems({"replicas": 3}, "l")[0]
    assert "label values" in g.label_problems({"team": "x" * 64}, "l")[0]


def test_gcp_names_of_each_kind():
    """The one test the roles use instead of a regular expression per role (Compute, Cloud SQL, service accounts)."""
    assert g.is_gcp_name("prefect-vpc") and g.is_gcp_name("a") and g.is_gcp_name("a" * 63)
    for bad in ("", "a" * 64, "Prefect", "1ip", "p-", "-p", "a_b", "a b", None, False, 7):
        assert not g.is_gcp_name(bad), bad
    assert g.is_gcp_name("a" * 98, 98) and not g.is_gcp_name("a" * 99, 98), "a Cloud SQL instance: at most 98"
    assert g.is_gcp_name("prefect-worker", 30, min_len=6)
    assert g.is_gcp_name("abcdef", 30, min_len=6) and not g.is_gcp_name("abcde", 30, min_len=6)
    assert g.is_gcp_name("a" * 30, 30, min_len=6) and not g.is_gcp_name("a" * 31, 30, min_len=6)
    assert not g.is_gcp_name("worker-", 30, min_len=6), "a service-account ID ends with a letter or digit"


def test_not_strings_names_the_variable():
    (msg,) = g.not_strings({"cloudsql_user": False, "cloudsql_database": "prefect"})
    assert msg.startswith("cloudsql_user=False is a bool, not a name") and "quote" in msg


def test_durations_versions_ports_addresses():
    assert g.cf_duration_seconds("2h45m") == 9900 and g.cf_duration_seconds("300ms") == 0.3
    assert g.cf_duration_seconds("0h") == 0 and g.cf_duration_seconds("2d") is None
    for ok in ("1.9.8", "1.10.0-rc1", "~> 1.9", ">= 1.5.0", "latest"):
        assert g.tf_version_valid(ok), ok
    for bad in ("v1.9.8", "1.9", "one", ""):
        assert not g.tf_version_valid(bad), bad
    assert [n for n in (1, 2, 32, 64, 100, 65536, True, "64", "x") if g.power_of_two(n)] == [1, 2, 32, 64, 65536, "64"]
    assert g.address_problem("10.10.0.10", "a", "10.10.0.0/20") == ""
    assert "is not an IPv4 address" in g.address_problem("999.1.1.1", "a", "10.10.0.0/20")
    assert "is not in the subnet" in g.address_problem("10.20.0.1", "a", "10.10.0.0/20")
    assert "is reserved by GCP" in g.address_problem("10.10.15.254", "a", "10.10.0.0/20")


def test_cidr_problems_across_roles():
    out = g.cidr_problems({"gke_autopilot_master_cidr": "10.10.0.0/28", "gcp_foundation_subnet_cidr": "10.10.0.0/20",
                           "gcp_foundation_psa_cidr": "10.100.0.0/16"})
    assert out == ["gcp_foundation_subnet_cidr (10.10.0.0/20) overlaps gke_autopilot_master_cidr (10.10.0.0/28): "
                   "pick ranges that do not overlap"]
    assert "must be a private range" in g.cidr_problems({"m": "8.8.8.0/28"})[0]
    assert "is not a valid IPv4 CIDR" in g.cidr_problems({"m": "10.0.0.1/28"})[0]
