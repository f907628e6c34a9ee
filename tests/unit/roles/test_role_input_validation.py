"""Broken inventories fail in the roles' validation, before the site's first API call, naming the variable.

Each case runs the whole site.yml through the sandbox inventory with the case's extra vars; playbooks/validate.yml
checks every role's inputs first, so nothing may reach an API (the sandbox request log must not grow, apart from
its own /_sandbox/ admin endpoints, which the inventory reads).
"""

import subprocess
import time

import pytest

from tests.unit.reliability.site_runner import REPO, site_command

# (case, role, extra vars, text the one-line failure must contain: the variable, and the value or the fix)
CASES = [
    # gcp_foundation
    ("invalid CIDR", "gcp_foundation", {"gcp_foundation_subnet_cidr": "10.10.0.0/33"},
     "gcp_foundation_subnet_cidr is not a valid IPv4 CIDR range such as 10.10.0.0/20"),
    ("not a CIDR", "gcp_foundation", {"gcp_foundation_pods_cidr": "pods"}, "gcp_foundation_pods_cidr is not a valid IPv4 CIDR"),
    ("host bits set", "gcp_foundation", {"gcp_foundation_services_cidr": "10.30.0.1/20"},
     "gcp_foundation_services_cidr is not a valid IPv4 CIDR"),
    ("public range", "gcp_foundation", {"gcp_foundation_subnet_cidr": "8.8.8.0/24"},
     "gcp_foundation_subnet_cidr must be a private range"),
    ("overlapping ranges", "gcp_foundation", {"gcp_foundation_pods_cidr": "10.10.0.0/16"},
     "gcp_foundation_pods_cidr (10.10.0.0/16) overlaps gcp_foundation_subnet_cidr"),
    ("PSA overlaps services", "gcp_foundation", {"gcp_foundation_psa_cidr": "10.30.0.0/16"}, "overlaps"),
    ("unknown region", "gcp_foundation", {"gcp_foundation_region": "europe-west99"},
     "gcp_foundation_region=europe-west99 is not a GCP region; use one such as europe-west1"),
    ("bad network name", "gcp_foundation", {"gcp_foundation_network_name": "Prefect_VPC"},
     "gcp_foundation_network_name is not a valid GCP name"),
    ("MTU out of range", "gcp_foundation", {"gcp_foundation_mtu": 9000}, "gcp_foundation_mtu must be 1300-8896"),
    ("PSA too small", "gcp_foundation", {"gcp_foundation_psa_cidr": "10.100.0.0/28"},
     "gcp_foundation_psa_cidr=10.100.0.0/28 must be a /16 to /24 range"),
    ("flow logs not a boolean", "gcp_foundation", {"gcp_foundation_flow_logs": "sometimes"},
     "argument 'gcp_foundation_flow_logs' is of type str and we were unable to convert to bool"),
    ("bad routing mode", "gcp_foundation", {"gcp_foundation_routing_mode": "WORLDWIDE"}, "gcp_foundation_routing_mode"),
    # cloudrun_nat
    ("NAT without IPs", "cloudrun_nat", {"cloudrun_nat_ip_names": []}, "cloudrun_nat_ip_names is empty"),
    ("bad NAT IP name", "cloudrun_nat", {"cloudrun_nat_ip_names": ["NAT IP"]}, "cloudrun_nat_ip_names"),
    ("NAT ports not a number", "cloudrun_nat", {"cloudrun_nat_min_ports_per_vm": "many"},
     "argument 'cloudrun_nat_min_ports_per_vm' is of type str and we were unable to convert to int"),
    ("NAT ports out of range", "cloudrun_nat", {"cloudrun_nat_min_ports_per_vm": 1},
     "cloudrun_nat_min_ports_per_vm=1 must be a power of two from 32 to 65536"),
    ("unknown NAT log filter", "cloudrun_nat", {"cloudrun_nat_log": "EVERYTHING"},
     "value of cloudrun_nat_log must be one of: none, ERRORS_ONLY, TRANSLATIONS_ONLY, ALL, got: EVERYTHING"),
    # cloudsql
    ("unknown Cloud SQL tier", "cloudsql", {"cloudsql_tier": "db-huge"}, "cloudsql_tier=db-huge is not a Cloud SQL tier"),
    ("Enterprise Plus on a custom tier", "cloudsql", {"cloudsql_edition": "ENTERPRISE_PLUS"},
     "ENTERPRISE_PLUS needs db-perf-optimized"),
    ("MySQL for Prefect", "cloudsql", {"cloudsql_database_version": "MYSQL_8_0"},
     "value of cloudsql_database_version must be one of: POSTGRES_13"),
    ("unknown availability type", "cloudsql", {"cloudsql_availability_type": "MULTI"},
     "value of cloudsql_availability_type must be one of: ZONAL, REGIONAL, got: MULTI"),
    ("superuser as the app user", "cloudsql", {"cloudsql_user": "postgres"}, "cloudsql_user (not postgres)"),
    ("maintenance day 8", "cloudsql", {"cloudsql_maintenance_window": {"day": 8, "hour": 3}},
     "cloudsql_maintenance_window day 1-7"),
    # gke_autopilot
    ("cluster name too long", "gke_autopilot", {"gke_autopilot_name": "a" * 41}, "gke_autopilot_name=" + "a" * 41),
    ("master range not a /28", "gke_autopilot", {"gke_autopilot_master_cidr": "172.16.0.0/24"},
     "gke_autopilot_master_cidr=172.16.0.0/24 must be a /28"),
    ("bad authorized network", "gke_autopilot", {"gke_autopilot_authorized_networks": ["10.0.0.0/33"]},
     "gke_autopilot_authorized_networks (CIDR ranges)"),
    ("maintenance at 25:00", "gke_autopilot", {"gke_autopilot_maintenance_start_time": "25:00"},
     "gke_autopilot_maintenance_start_time (HH:MM UTC)"),
    ("unknown release channel", "gke_autopilot", {"gke_autopilot_release_channel": "BETA"},
     "value of gke_autopilot_release_channel must be one of: RAPID, REGULAR, STABLE, EXTENDED, got: BETA"),
    ("private endpoint not a boolean", "gke_autopilot", {"gke_autopilot_private_endpoint": "maybe"},
     "argument 'gke_autopilot_private_endpoint' is of type str and we were unable to convert to bool"),
    # tfc_agent
    ("agent pool name with a space", "tfc_agent", {"tfc_agent_pool_name": "my agents"},
     "tfc_agent_pool_name=my agents is not a valid agent pool name"),
    ("agent zone in another region", "tfc_agent", {"tfc_agent_zone": "us-central1-a"},
     "tfc_agent_zone=us-central1-a must be a zone of tfc_agent_region=europe-west1"),
    ("agent disk too small", "tfc_agent", {"tfc_agent_disk_size_gb": 5}, "tfc_agent_disk_size_gb must be at least 10"),
    ("agent role without roles/", "tfc_agent", {"tfc_agent_project_roles": ["storage.admin"]},
     "must be role names such as roles/storage.admin"),
    ("agent service account too short", "tfc_agent", {"tfc_agent_service_account": "ab"},
     "tfc_agent_service_account=ab is not a service-account ID"),
    # tfc_workspace_runs
    ("component without a config_dir", "tfc_workspace_runs", {"tfc_workspace_runs_components": [{"name": "bucket"}]},
     "missing required arguments: config_dir found in tfc_workspace_runs_components"),
    ("dependency cycle", "tfc_workspace_runs", {"tfc_workspace_runs_components": [
        {"name": "a", "config_dir": "gcs_bucket", "depends_on": ["b"]},
        {"name": "b", "config_dir": "gcs_bucket", "depends_on": ["a"]}]}, "tfc_workspace_runs_components is invalid"),
    ("unknown execution mode", "tfc_workspace_runs", {"tfc_workspace_runs_execution_mode": "local"},
     "value of tfc_workspace_runs_execution_mode must be one of: agent, remote, got: local"),
    ("run timeout of zero", "tfc_workspace_runs", {"tfc_workspace_runs_timeout": 0},
     "tfc_workspace_runs_timeout must be positive"),
    ("uppercase workspace tag", "tfc_workspace_runs", {"tfc_workspace_runs_tags": ["Skyforge"]},
     "tfc_workspace_runs_tags must be lowercase"),
    # cloudflare_zero_trust
    ("Prefect hostname outside the zone", "cloudflare_zero_trust", {"prefect_server_hostname": "prefect.example.org"},
     "cloudflare_zero_trust_hostname=prefect.example.org is not in the zone"),
    ("allow-list that locks out the NAT", "cloudflare_zero_trust",
     {"cloudflare_zero_trust_allowed_cidrs": ["198.51.100.0/24"]},
     "cloudflare_zero_trust_allowed_cidrs does not contain the Cloud NAT egress IPs"),
    ("operator range 0.0.0.0/0", "cloudflare_zero_trust", {"cloudflare_zero_trust_operator_cidrs": ["0.0.0.0/0"]},
     "cloudflare_zero_trust_allowed_cidrs: 0.0.0.0/0 is wider than /8"),
    ("operator CIDR with host bits", "cloudflare_zero_trust", {"cloudflare_zero_trust_operator_cidrs": ["203.0.113.7/24"]},
     "cloudflare_zero_trust_allowed_cidrs: 203.0.113.7/24 is not an IPv4 CIDR"),
    ("worker egress IPs as a string", "cloudflare_zero_trust", {"cloudflare_zero_trust_worker_egress_ips": "198.51.100.23"},
     "cloudflare_zero_trust_worker_egress_ips=198.51.100.23 must be a list of addresses, for example [198.51.100.23]"),
    ("allow-list that locks out a worker", "cloudflare_zero_trust",
     {"cloudflare_zero_trust_worker_egress_ips": ["198.51.100.23"], "cloudflare_zero_trust_allowed_cidrs": ["34.0.0.0/8"]},
     "does not contain the Cloud NAT egress IPs and worker egress IPs (192.0.2.1, 198.51.100.23"),
    ("session duration in days", "cloudflare_zero_trust", {"cloudflare_zero_trust_session_duration": "1 day"},
     "cloudflare_zero_trust_session_duration=1 day is not a duration such as 24h"),
    ("no Cloudflare zone", "cloudflare_zero_trust", {"cloudflare_zone": ""}, "cloudflare_zero_trust_zone is empty"),
    # prefect_server
    ("namespace with capitals", "prefect_server", {"prefect_server_namespace": "Prefect"},
     "prefect_server_namespace=Prefect must be a DNS label"),
    ("Origin CA without a certificate", "prefect_server", {"prefect_server_origin_tls": "origin_ca"},
     "origin_ca needs prefect_server_origin_cert and prefect_server_origin_key"),
    ("basic-auth user with a colon", "prefect_server", {"prefect_server_auth_user": "ad:min"},
     "prefect_server_auth_user must have no colon"),
    ("origin allow-list as a string", "prefect_server", {"prefect_server_origin_allowed_cidrs": "173.245.48.0/20"},
     "prefect_server_origin_allowed_cidrs a list of CIDR ranges"),
    # prefect_worker
    ("pool concurrency below zero", "prefect_worker", {"prefect_worker_pool_concurrency": -1},
     "prefect_worker_pool_concurrency=-1 must be a whole number"),
    ("pool name with a space", "prefect_worker", {"prefect_worker_pool_name": "cloud run"},
     "pool names are letters, digits"),
    ("worker service account too short", "prefect_worker", {"prefect_worker_gsa": "w"},
     "prefect_worker_gsa / prefect_worker_runtime_gsa must be service-account IDs"),
    ("unknown worker type", "prefect_worker", {"prefect_worker_release_pool_type": "lambda"},
     "prefect_worker_release_pool_type=lambda is not a Prefect worker type"),
    # platform_verify
    ("verify timeout of zero", "platform_verify", {"platform_verify_timeout": 0},
     "platform_verify_timeout=0 must be a positive"),
    ("verify timeout not a number", "platform_verify", {"platform_verify_timeout": "soon"},
     "argument 'platform_verify_timeout' is of type str and we were unable to convert to int"),
]

# Issue 18 item 4: inputs that used to converge (rc=0) or fail only after writes; each must now fail in validation.
# "site" means the validate play's own check of skyforge_name, which every default name derives from.
ISSUE18_CASES = [
    # cross-role CIDR overlaps and the master range
    ("master range inside the subnet", "gke_autopilot", {"gke_autopilot_master_cidr": "10.10.0.0/28"},
     "gcp_foundation_subnet_cidr (10.10.0.0/20) overlaps gke_autopilot_master_cidr (10.10.0.0/28)"),
    ("master range inside the pods range", "gke_autopilot", {"gke_autopilot_master_cidr": "10.20.5.0/28"},
     "gcp_foundation_pods_cidr (10.20.0.0/16) overlaps gke_autopilot_master_cidr (10.20.5.0/28)"),
    ("master range inside the services range", "gke_autopilot", {"gke_autopilot_master_cidr": "10.30.0.16/28"},
     "gcp_foundation_services_cidr (10.30.0.0/20) overlaps gke_autopilot_master_cidr"),
    ("master range inside the PSA range", "gke_autopilot", {"gke_autopilot_master_cidr": "10.100.0.0/28"},
     "gcp_foundation_psa_cidr (10.100.0.0/16) overlaps gke_autopilot_master_cidr"),
    ("subnet over the master range", "gke_autopilot", {"gcp_foundation_subnet_cidr": "172.16.0.0/20"},
     "gcp_foundation_subnet_cidr (172.16.0.0/20) overlaps gke_autopilot_master_cidr (172.16.0.0/28)"),
    ("master range a /29", "gke_autopilot", {"gke_autopilot_master_cidr": "172.16.0.0/29"},
     "gke_autopilot_master_cidr=172.16.0.0/29 must be a /28"),
    ("public master range", "gke_autopilot", {"gke_autopilot_master_cidr": "8.8.8.0/28"},
     "gke_autopilot_master_cidr=8.8.8.0/28 must be a private range"),
    # regions that disagree across roles
    ("GKE in another region than the subnet", "gke_autopilot", {"gke_autopilot_region": "us-central1"},
     "gke_autopilot_region=us-central1 differs from the subnet region gcp_foundation_region=europe-west1"),
    ("Cloud Run pool in another region", "prefect_worker", {"prefect_worker_region": "us-east1"},
     "prefect_worker_region=us-east1 differs from the subnet region gcp_foundation_region=europe-west1"),
    ("NAT in another region", "cloudrun_nat", {"cloudrun_nat_region": "us-east1"},
     "cloudrun_nat_region=us-east1 differs from the subnet's gcp_foundation_region=europe-west1"),
    ("agent in another region", "tfc_agent", {"tfc_agent_region": "us-east1", "tfc_agent_zone": "us-east1-b"},
     "tfc_agent_region=us-east1 differs from the subnet region gcp_foundation_region=europe-west1"),
    # Cloud SQL tier and flags
    ("tier memory not a multiple of 256", "cloudsql", {"cloudsql_tier": "db-custom-1-384"},
     "cloudsql_tier=db-custom-1-384: memory must be a multiple of 256 MiB"),
    ("tier with 3 vCPUs", "cloudsql", {"cloudsql_tier": "db-custom-3-7680"},
     "cloudsql_tier=db-custom-3-7680: the vCPU count must be 1 or an even number"),
    ("tier with 16 GiB on one vCPU", "cloudsql", {"cloudsql_tier": "db-custom-1-16384"},
     "cloudsql_tier=db-custom-1-16384: memory must be 0.9 to 6.5 GiB per vCPU"),
    ("perf-optimized tier with 3 vCPUs", "cloudsql",
     {"cloudsql_tier": "db-perf-optimized-N-3", "cloudsql_edition": "ENTERPRISE_PLUS"},
     "cloudsql_tier=db-perf-optimized-N-3: db-perf-optimized-N- takes 2, 4, 8"),
    ("misspelt database flag", "cloudsql", {"cloudsql_flags": {"max_conections": "200"}},
     "cloudsql_flags: max_conections is not a Cloud SQL for PostgreSQL flag (did you mean max_connections?)"),
    ("database flag not a number", "cloudsql", {"cloudsql_flags": {"max_connections": "lots"}},
     "cloudsql_flags.max_connections='lots': max_connections takes a whole number"),
    ("boolean flag as a YAML boolean", "cloudsql", {"cloudsql_flags": {"log_connections": True}},
     "cloudsql_flags.log_connections=True: a boolean flag takes on or off"),
    # labels, IAM roles, APIs
    ("label key with a capital", "tfc_agent", {"tfc_agent_labels": {"Team": "platform"}},
     "tfc_agent_labels key 'Team': label keys are 1-63 lowercase letters"),
    ("label value with a space", "tfc_agent", {"tfc_agent_labels": {"team": "Platform Team"}},
     "tfc_agent_labels.team='Platform Team': label values are at most 63 lowercase letters"),
    ("misspelt IAM role", "tfc_agent", {"tfc_agent_project_roles": ["roles/storage.admn"]},
     "roles/storage.admn is not a predefined role name such as roles/storage.admin (did you mean roles/storage.admin?)"),
    ("custom role with a bad project", "tfc_agent", {"tfc_agent_project_roles": ["projects/My Project/roles/x"]},
     "projects/My Project/roles/x is not a custom role name"),
    ("misspelt API", "gcp_foundation", {"gcp_foundation_services": ["compute.googleapis.com", "computer.googleapis.com"]},
     "gcp_foundation_services: computer.googleapis.com is not a Google API service (did you mean compute.googleapis.com?)"),
    ("API without googleapis.com", "gcp_foundation", {"gcp_foundation_services": ["sqladmin"]},
     "gcp_foundation_services: 'sqladmin' is not an API service name such as compute.googleapis.com"),
    # Terraform versions
    ("Terraform version with a v", "tfc_workspace_runs", {"tfc_workspace_runs_terraform_version": "v1.9.8"},
     "tfc_workspace_runs_terraform_version=v1.9.8: HCP Terraform takes a released version such as 1.9.8"),
    ("component's Terraform version 1.9", "tfc_workspace_runs", {"tfc_workspace_runs_components": [
        {"name": "bucket", "config_dir": "gcs_bucket", "terraform_version": "1.9"}]},
     "tfc_workspace_runs_components: bucket has a terraform_version HCP Terraform does not accept"),
    # Access durations
    ("session of 0h", "cloudflare_zero_trust", {"cloudflare_zero_trust_session_duration": "0h"},
     "cloudflare_zero_trust_session_duration=0h is not a duration such as 24h (more than zero"),
    ("session in days", "cloudflare_zero_trust", {"cloudflare_zero_trust_session_duration": "2d"},
     "cloudflare_zero_trust_session_duration=2d is not a duration such as 24h"),
    ("service token valid for a year as 1y", "cloudflare_zero_trust", {"cloudflare_zero_trust_token_duration": "1y"},
     "cloudflare_zero_trust_token_duration=1y is not a duration such as 8760h"),
    # authorized networks, NAT ports
    ("control plane open to 0.0.0.0/0", "gke_autopilot", {"gke_autopilot_authorized_networks": ["0.0.0.0/0"]},
     "gke_autopilot_authorized_networks contains 0.0.0.0/0"),
    ("NAT ports not a power of two", "cloudrun_nat", {"cloudrun_nat_min_ports_per_vm": 100},
     "cloudrun_nat_min_ports_per_vm=100 must be a power of two from 32 to 65536"),
    ("NAT ports below 32", "cloudrun_nat", {"cloudrun_nat_min_ports_per_vm": 16},
     "cloudrun_nat_min_ports_per_vm=16 must be a power of two from 32 to 65536"),
    # YAML booleans where a name is expected
    ("cloudsql_user: no", "cloudsql", {"cloudsql_user": False}, "cloudsql_user=False is a bool, not a name"),
    ("cloudsql_database: yes", "cloudsql", {"cloudsql_database": True}, "cloudsql_database=True is a bool, not a name"),
    ("network name: off", "gcp_foundation", {"gcp_foundation_network_name": False},
     "gcp_foundation_network_name=False is a bool, not a name"),
    # addresses
    ("agent address 999.1.1.1", "tfc_agent", {"tfc_agent_address": "999.1.1.1"},
     "tfc_agent_address=999.1.1.1 is not an IPv4 address"),
    ("agent address outside the subnet", "tfc_agent", {"tfc_agent_address": "10.20.0.5"},
     "tfc_agent_address=10.20.0.5 is not in the subnet 10.10.0.0/20"),
    ("agent address GCP reserves", "tfc_agent", {"tfc_agent_address": "10.10.0.1"},
     "tfc_agent_address=10.10.0.1 is reserved by GCP in 10.10.0.0/20"),
    # lists and dicts of the wrong shape
    ("operator ranges as a string", "cloudflare_zero_trust", {"cloudflare_zero_trust_operator_cidrs": "203.0.113.0/24"},
     "cloudflare_zero_trust_operator_cidrs=203.0.113.0/24 must be a list of CIDR ranges"),
    ("allow rule without source ranges", "gcp_foundation", {"gcp_foundation_allow_rules": [{"name": "web", "ports": ["443"]}]},
     "missing required arguments: source_ranges found in gcp_foundation_allow_rules"),
    ("allow rule without a name", "gcp_foundation",
     {"gcp_foundation_allow_rules": [{"source_ranges": ["10.0.0.0/8"], "ports": ["443"]}]},
     "missing required arguments: name found in gcp_foundation_allow_rules"),
    ("allow rule with a capital in its name", "gcp_foundation",
     {"gcp_foundation_allow_rules": [{"name": "Web", "source_ranges": ["10.0.0.0/8"]}]},
     "gcp_foundation_allow_rules: name Web must be lowercase letters"),
    ("allow rule range with host bits", "gcp_foundation",
     {"gcp_foundation_allow_rules": [{"name": "web", "source_ranges": ["10.0.0.1/8"]}]},
     "gcp_foundation_allow_rules: source range 10.0.0.1/8 is not an IPv4 CIDR"),
    # a worker that cannot poll its pool
    ("process worker on the Cloud Run pool", "prefect_worker",
     {"prefect_worker_release_pool_name": "cloud-run", "prefect_worker_release_pool_type": "process"},
     "prefect_worker_release_pool_type=process cannot poll prefect_worker_release_pool_name=cloud-run"),
    # skyforge_name, reported under its own name
    ("skyforge_name with capitals", "site", {"skyforge_name": "My_Platform"},
     "skyforge_name=My_Platform must be 1-20 lowercase letters"),
    ("skyforge_name too long", "site", {"skyforge_name": "platform-production-eu"},
     "skyforge_name=platform-production-eu must be 1-20 lowercase letters"),
    ("skyforge_name: no", "site", {"skyforge_name": False}, "skyforge_name=False (a bool: quote it)"),
]

RESULTS = {}


def requests_made(sandbox, start):
    """API requests the playbook made since entry `start` (not the sandbox's admin endpoints, nor what the workloads
    of earlier tests' platforms do on their own meanwhile)."""
    return sandbox.log.by_deployer(start)


ISSUE18 = {c[0] for c in ISSUE18_CASES}


@pytest.mark.parametrize("case,role,extra,expected", CASES + ISSUE18_CASES, ids=[c[0] for c in CASES + ISSUE18_CASES])
def test_bad_input_fails_before_any_api_call(sandbox, tmp_path, case, role, extra, expected):
    argv, env = site_command(sandbox, "broken", tmp_path, **extra)
    before = sandbox.log.mark()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    flat = " ".join(out.split())
    calls = requests_made(sandbox, before)
    RESULTS[case] = proc.returncode != 0 and expected in flat and not calls
    assert proc.returncode != 0, "%s: the site should have failed:\n%s" % (case, out[-2000:])
    assert expected in flat, "%s: message should say %r:\n%s" % (case, expected, out[-3000:])
    # The role's own checks (tasks/validate.yml) or its argument spec (meta/argument_specs.yml) must be what failed.
    failed_task = out[:out.find("fatal: [localhost]")].rsplit("TASK [", 1)[-1].split("]", 1)[0]
    assert failed_task.startswith(("skyforge.prefect_platform.%s : Check" % role,
                                   "skyforge.prefect_platform.%s : Validating arguments" % role)
                                  if role != "site" else ("Check skyforge_name",)), \
        "%s: the %s role's validation should have failed, not %r" % (case, role, failed_task)
    assert not calls, "%s: API calls were made before validation failed: %r" % (case, calls[:5])


def test_every_role_has_broken_inventories():
    roles = {c[1] for c in CASES}
    assert len(CASES) >= 40 and len(roles) == 10, (len(CASES), sorted(roles))
    assert len(ISSUE18_CASES) >= 44 and not ISSUE18 & {c[0] for c in CASES}


def test_record_bad_input_figures():
    """Runs last in this file: records how many of the cases ran and were caught."""
    if not RESULTS:
        pytest.skip("no bad-input case ran in this session")
    from tests.unit.reliability.site_runner import record_figures

    issue18 = {k: v for k, v in RESULTS.items() if k in ISSUE18}
    record_figures("bad_input", {"date": time.strftime("%Y-%m-%d"), "cases": len(RESULTS),
                                 "caught_before_first_api_call": sum(RESULTS.values()),
                                 "roles": len({c[1] for c in CASES + ISSUE18_CASES if c[0] in RESULTS} - {"site"}),
                                 "issue18_cases": len(issue18),
                                 "issue18_caught_before_first_api_call": sum(issue18.values())})
