# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What GCP, Cloud SQL, HCP Terraform and Cloudflare accept as names and values, for checks before any API call.

One place for the rules the roles' validations (plugins/filter/gcp.py, plugins/test/gcp.py) and the sandbox's tests
share, instead of a regular expression copied into every role. Each *_problem(s) function returns what is wrong as
text that names the variable and the fix, or nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import glob
import ipaddress
import os
import re

GCP_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
CUSTOM_ROLE_RE = re.compile(r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]|organizations/[0-9]+)/roles/[A-Za-z0-9_.]{3,64}$")
SERVICE_RE = re.compile(r"^[a-z][a-z0-9-]*\.googleapis\.com$")
# HCP Terraform's terraform-version: an exact release (1.9.8, 1.10.0-rc1), a constraint (~> 1.9) or latest.
TF_VERSION_RE = re.compile(r"^(latest|\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?|(~>|>=|<=|>|<|=|!=)\s*\d+(\.\d+){0,2}(-[0-9A-Za-z.]+)?)$")
# Cloudflare Access durations, Go's time.ParseDuration units as the API description lists them: 300ms, 2h45m.
CF_DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h))+$")
CF_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)")

# Basic roles, and the predefined roles of the services this platform and its Terraform components use
# (https://cloud.google.com/iam/docs/roles-permissions/<service>). The sandbox's least-privilege table
# (sandbox/gcp/iam_enforce.py ROLE_PERMISSIONS) must name only roles listed here (tests/unit/plugins/filter).
PREDEFINED_ROLES = frozenset("roles/" + r for r in """
owner editor viewer browser
artifactregistry.admin artifactregistry.createOnPushRepoAdmin artifactregistry.createOnPushWriter
artifactregistry.reader artifactregistry.repoAdmin artifactregistry.writer
bigquery.admin bigquery.connectionAdmin bigquery.connectionUser bigquery.dataEditor bigquery.dataOwner
bigquery.dataViewer bigquery.filteredDataViewer bigquery.jobUser bigquery.metadataViewer bigquery.readSessionUser
bigquery.resourceAdmin bigquery.resourceEditor bigquery.resourceViewer bigquery.user
cloudbuild.builds.builder cloudbuild.builds.editor cloudbuild.builds.viewer cloudbuild.builds.approver
cloudbuild.workerPoolOwner cloudbuild.workerPoolUser cloudbuild.workerPoolViewer
cloudfunctions.admin cloudfunctions.developer cloudfunctions.invoker cloudfunctions.viewer
cloudkms.admin cloudkms.cryptoKeyDecrypter cloudkms.cryptoKeyEncrypter cloudkms.cryptoKeyEncrypterDecrypter
cloudkms.signer cloudkms.signerVerifier cloudkms.viewer
cloudscheduler.admin cloudscheduler.jobRunner cloudscheduler.viewer
cloudsql.admin cloudsql.client cloudsql.editor cloudsql.instanceUser cloudsql.studioUser cloudsql.viewer
cloudtasks.admin cloudtasks.enqueuer cloudtasks.queueAdmin cloudtasks.taskDeleter cloudtasks.taskRunner
cloudtasks.viewer
cloudtrace.admin cloudtrace.agent cloudtrace.user
compute.admin compute.instanceAdmin compute.instanceAdmin.v1 compute.loadBalancerAdmin compute.networkAdmin
compute.networkUser compute.networkViewer compute.osAdminLogin compute.osLogin compute.publicIpAdmin
compute.securityAdmin compute.storageAdmin compute.viewer compute.xpnAdmin
container.admin container.clusterAdmin container.clusterViewer container.developer container.viewer
container.defaultNodeServiceAccount
datastore.indexAdmin datastore.owner datastore.user datastore.viewer
dns.admin dns.peer dns.reader
iam.roleAdmin iam.roleViewer iam.securityAdmin iam.securityReviewer iam.serviceAccountAdmin
iam.serviceAccountCreator iam.serviceAccountKeyAdmin iam.serviceAccountTokenCreator iam.serviceAccountUser
iam.workloadIdentityUser iam.workloadIdentityPoolAdmin iam.workloadIdentityPoolViewer
logging.admin logging.bucketWriter logging.configWriter logging.logWriter logging.privateLogViewer logging.viewer
logging.viewAccessor
monitoring.admin monitoring.editor monitoring.metricWriter monitoring.viewer
pubsub.admin pubsub.editor pubsub.publisher pubsub.subscriber pubsub.viewer
redis.admin redis.editor redis.viewer
resourcemanager.folderAdmin resourcemanager.folderViewer resourcemanager.organizationViewer
resourcemanager.projectCreator resourcemanager.projectDeleter resourcemanager.projectIamAdmin
run.admin run.developer run.invoker run.serviceAgent run.sourceDeveloper run.viewer
secretmanager.admin secretmanager.secretAccessor secretmanager.secretVersionAdder secretmanager.secretVersionManager
secretmanager.viewer
servicenetworking.networksAdmin servicenetworking.serviceAgent
serviceusage.apiKeysAdmin serviceusage.apiKeysViewer serviceusage.serviceUsageAdmin serviceusage.serviceUsageConsumer
serviceusage.serviceUsageViewer
storage.admin storage.bucketViewer storage.folderAdmin storage.hmacKeyAdmin storage.legacyBucketOwner
storage.legacyBucketReader storage.legacyBucketWriter storage.legacyObjectOwner storage.legacyObjectReader
storage.objectAdmin storage.objectCreator storage.objectUser storage.objectViewer
vpcaccess.admin vpcaccess.user vpcaccess.viewer
""".split())

# Services enabled through Service Usage that publish no discovery document.
SERVICES_WITHOUT_DISCOVERY = frozenset([
    "bigquerystorage.googleapis.com", "cloudapis.googleapis.com", "containerregistry.googleapis.com",
    "storage-api.googleapis.com", "storage-component.googleapis.com", "sql-component.googleapis.com",
])

# Cloud SQL for PostgreSQL flags (https://cloud.google.com/sql/docs/postgres/flags): name -> the value's kind.
# bool flags take on/off; int ones a whole number; others a string the API checks.
SQL_FLAGS = {
    "autovacuum": "bool", "autovacuum_analyze_scale_factor": "float", "autovacuum_analyze_threshold": "int",
    "autovacuum_freeze_max_age": "int", "autovacuum_max_workers": "int", "autovacuum_naptime": "int",
    "autovacuum_vacuum_cost_delay": "int", "autovacuum_vacuum_cost_limit": "int",
    "autovacuum_vacuum_scale_factor": "float", "autovacuum_vacuum_threshold": "int",
    "autovacuum_work_mem": "int", "checkpoint_completion_target": "float", "checkpoint_timeout": "int",
    "cloudsql.enable_pg_cron": "bool", "cloudsql.enable_pgaudit": "bool", "cloudsql.iam_authentication": "bool",
    "cloudsql.logical_decoding": "bool", "cloudsql.enable_pg_squeeze": "bool", "cloudsql.enable_pglogical": "bool",
    "deadlock_timeout": "int", "default_statistics_target": "int", "effective_cache_size": "int",
    "effective_io_concurrency": "int", "random_page_cost": "float", "idle_in_transaction_session_timeout": "int",
    "lock_timeout": "int", "log_autovacuum_min_duration": "int", "log_checkpoints": "bool",
    "log_connections": "bool", "log_disconnections": "bool", "log_duration": "bool", "log_error_verbosity": "str",
    "log_hostname": "bool", "log_lock_waits": "bool", "log_min_duration_statement": "int",
    "log_min_error_statement": "str", "log_min_messages": "str", "log_statement": "str", "log_temp_files": "int",
    "maintenance_work_mem": "int", "max_connections": "int", "max_locks_per_transaction": "int",
    "max_parallel_maintenance_workers": "int", "max_parallel_workers": "int",
    "max_parallel_workers_per_gather": "int", "max_prepared_transactions": "int", "max_wal_size": "int",
    "max_worker_processes": "int", "min_wal_size": "int", "pg_stat_statements.max": "int",
    "pg_stat_statements.track": "str", "pgaudit.log": "str", "shared_buffers": "int",
    "statement_timeout": "int", "temp_file_limit": "int", "track_activity_query_size": "int",
    "track_io_timing": "bool", "work_mem": "int", "password_encryption": "str", "timezone": "str",
}
SQL_FLAG_CHOICES = {
    "log_statement": ("none", "ddl", "mod", "all"),
    "log_error_verbosity": ("terse", "default", "verbose"),
    "pg_stat_statements.track": ("none", "top", "all"),
    "password_encryption": ("md5", "scram-sha-256"),
    "log_min_messages": ("debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error",
                         "log", "fatal", "panic"),
    "log_min_error_statement": ("debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning",
                                "error", "log", "fatal", "panic"),
}


def _suggest(value, known):
    close = difflib.get_close_matches(str(value), sorted(known), n=1, cutoff=0.6)
    return " (did you mean %s?)" % close[0] if close else ""


def is_gcp_name(value, max_len=63, min_len=1):
    """A GCP resource name: lowercase letters, digits, hyphens; starts with a letter, ends with a letter or digit.

    The lengths differ by kind: 63 for most Compute resources, 98 for a Cloud SQL instance, 6-30 for a
    service-account ID, 40 for a GKE cluster.
    """
    return (isinstance(value, str) and max(int(min_len), 1) <= len(value) <= int(max_len)
            and bool(GCP_NAME_RE.match(value)))


def not_strings(named):
    """{'var': value} -> the variables whose value is not a string (YAML's `no` is a boolean, 1e3 a float...)."""
    return ["%s=%r is a %s, not a name%s: quote the name in the inventory, for example %s: \"%s\""
            % (k, v, type(v).__name__, " (YAML reads yes/no/true/false/on/off as booleans)"
               if isinstance(v, bool) else "", k, v if not isinstance(v, bool) else "name")
            for k, v in sorted((named or {}).items()) if not isinstance(v, str)]


def label_problems(labels, var):
    """GCP label rules (https://cloud.google.com/compute/docs/labeling-resources#requirements)."""
    if not isinstance(labels, dict):
        return ["%s must be a mapping of label keys to values, such as {team: platform}" % var]
    out = []
    if len(labels) > 64:
        out.append("%s has %d labels; GCP allows at most 64" % (var, len(labels)))
    for key, value in sorted(labels.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            out.append("%s key %r: label keys are 1-63 lowercase letters, digits, _ and -, starting with a letter"
                       % (var, key))
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            out.append("%s.%s=%r: label values are at most 63 lowercase letters, digits, _ and - (quote them: "
                       "a YAML number or boolean is not a string)" % (var, key, value))
    return out


def iam_role_problems(roles, var, extra_roles=None):
    """Each role must be a predefined role (or basic role), or a custom role's full name."""
    if not isinstance(roles, (list, tuple)):
        return ["%s must be a list of role names such as [roles/storage.admin]" % var]
    known = PREDEFINED_ROLES | frozenset(extra_roles or [])
    out = []
    for role in roles:
        if not isinstance(role, str):
            out.append("%s: %r is not a role name such as roles/storage.admin" % (var, role))
        elif role.startswith(("projects/", "organizations/")):
            if not CUSTOM_ROLE_RE.match(role):
                out.append("%s: %s is not a custom role name (projects/<project>/roles/<id> or "
                           "organizations/<number>/roles/<id>)" % (var, role))
        elif role not in known:
            out.append("%s: %s is not a predefined role name such as roles/storage.admin%s; a custom role is "
                       "written projects/<project>/roles/<id>, and a predefined role newer than this collection's "
                       "list can be added to skyforge_extra_predefined_roles" % (var, role, _suggest(role, known)))
    return out


def _discovery_services():
    try:
        import googleapiclient
    except ImportError:
        return None
    docs = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")
    names = {os.path.basename(p).split(".", 1)[0] for p in glob.glob(os.path.join(docs, "*.json"))}
    return {n + ".googleapis.com" for n in names} or None


def service_problems(services, var):
    """Service names Service Usage knows: those with a discovery document (google-api-python-client's cache)."""
    if not isinstance(services, (list, tuple)):
        return ["%s must be a list of API service names such as [compute.googleapis.com]" % var]
    known = _discovery_services()
    out = []
    for svc in services:
        if not isinstance(svc, str) or not SERVICE_RE.match(svc):
            out.append("%s: %r is not an API service name such as compute.googleapis.com" % (var, svc))
        elif known is not None and svc not in known and svc not in SERVICES_WITHOUT_DISCOVERY:
            out.append("%s: %s is not a Google API service%s" % (var, svc, _suggest(svc, known)))
    return out


def sql_tier_problem(tier, var="cloudsql_tier", edition="ENTERPRISE"):
    """Cloud SQL for PostgreSQL machine shapes (https://cloud.google.com/sql/docs/postgres/create-instance)."""
    if not isinstance(tier, str):
        return "%s=%r must be a tier name such as db-custom-1-3840" % (var, tier)
    if tier in ("db-f1-micro", "db-g1-small"):
        return ""
    m = re.match(r"^db-perf-optimized-N-(\d+)$", tier)
    if m:
        return "" if m.group(1) in ("2", "4", "8", "16", "32", "48", "64", "80", "96", "128") else (
            "%s=%s: db-perf-optimized-N- takes 2, 4, 8, 16, 32, 48, 64, 80, 96 or 128 vCPUs" % (var, tier))
    m = re.match(r"^db-custom-(\d+)-(\d+)$", tier)
    if not m:
        return ("%s=%s is not a Cloud SQL tier: use db-custom-<vCPUs>-<MiB> (such as db-custom-1-3840), db-f1-micro, "
                "db-g1-small or db-perf-optimized-N-<vCPUs>" % (var, tier))
    cpus, mib = int(m.group(1)), int(m.group(2))
    if cpus != 1 and (cpus % 2 or cpus > 96):
        return "%s=%s: the vCPU count must be 1 or an even number up to 96" % (var, tier)
    if mib % 256:
        return "%s=%s: memory must be a multiple of 256 MiB" % (var, tier)
    if mib < 3840 or mib < 922 * cpus or mib > 6656 * cpus:
        return ("%s=%s: memory must be 0.9 to 6.5 GiB per vCPU and at least 3840 MiB (for %d vCPU: %d-%d MiB)"
                % (var, tier, cpus, max(3840, -(-922 * cpus // 256) * 256), 6656 * cpus))
    return ""


# Cloud SQL for PostgreSQL's default max_connections by the instance's memory
# (https://cloud.google.com/sql/docs/postgres/flags#postgres-m): (memory below, in MiB, default); the last applies
# above.
SQL_MAX_CONNECTIONS = ((3840, 50), (6144, 100), (7680, 200), (15360, 400), (30720, 500), (61440, 600),
                       (122880, 800), (None, 1000))
SQL_SHARED_CORE_MEMORY = {"db-f1-micro": 614, "db-g1-small": 1741}
# db-perf-optimized-N-<vCPUs> (Enterprise Plus) has 8 GiB per vCPU.
SQL_PERF_OPTIMIZED_MIB_PER_CPU = 8192


def sql_tier_memory_mib(tier):
    """The memory of a Cloud SQL tier in MiB, or None for a tier sql_tier_problem refuses."""
    if tier in SQL_SHARED_CORE_MEMORY:
        return SQL_SHARED_CORE_MEMORY[tier]
    m = re.match(r"^db-perf-optimized-N-(\d+)$", tier or "")
    if m:
        return int(m.group(1)) * SQL_PERF_OPTIMIZED_MIB_PER_CPU
    m = re.match(r"^db-custom-(\d+)-(\d+)$", tier or "")
    return int(m.group(2)) if m else None


def sql_max_connections(tier, flags=None):
    """max_connections of an instance of `tier`: the max_connections flag when set, else Cloud SQL's default."""
    flag = (flags or {}).get("max_connections")
    if flag not in (None, ""):
        return int(flag)
    if not isinstance(tier, str) or sql_tier_problem(tier):
        raise ValueError("%r is not a Cloud SQL tier: %s" % (tier, sql_tier_problem(tier)))
    mib = sql_tier_memory_mib(tier)
    if mib < 1024:
        return 25
    for below, default in SQL_MAX_CONNECTIONS:
        if below is None or mib < below:
            return default
    return SQL_MAX_CONNECTIONS[-1][1]


def sql_flag_problems(flags, var="cloudsql_flags"):
    if not isinstance(flags, dict):
        return ["%s must be a mapping of flag names to values, such as {max_connections: \"200\"}" % var]
    out = []
    for name, value in sorted(flags.items(), key=lambda kv: str(kv[0])):
        kind = SQL_FLAGS.get(name)
        where = "%s.%s=%r" % (var, name, value)
        if kind is None:
            out.append("%s: %s is not a Cloud SQL for PostgreSQL flag%s" % (var, name, _suggest(name, SQL_FLAGS)))
        elif kind == "bool":
            if str(value) not in ("on", "off"):
                out.append("%s: a boolean flag takes on or off, quoted (\"on\"): YAML reads on/true as a boolean"
                           % where)
        elif isinstance(value, bool):
            out.append("%s: %s takes a %s, not a boolean" % (where, name, "number" if kind != "str" else "word"))
        elif kind == "int" and not re.match(r"^-?\d+$", str(value)):
            out.append("%s: %s takes a whole number" % (where, name))
        elif kind == "float" and not re.match(r"^-?\d+(\.\d+)?$", str(value)):
            out.append("%s: %s takes a number" % (where, name))
        elif name in SQL_FLAG_CHOICES and str(value) not in SQL_FLAG_CHOICES[name]:
            out.append("%s: %s takes one of %s" % (where, name, ", ".join(SQL_FLAG_CHOICES[name])))
    return out


def tf_version_valid(value):
    return isinstance(value, str) and bool(TF_VERSION_RE.match(value.strip()))


def cf_duration_seconds(value):
    """Seconds in a Cloudflare duration such as 2h45m; None when it is not one."""
    if not isinstance(value, str) or not CF_DURATION_RE.match(value):
        return None
    scale = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in CF_DURATION_PART_RE.findall(value))


def power_of_two(value):
    try:
        n = int(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool) and n > 0 and n & (n - 1) == 0


def cidr_problems(named, public_ok=()):
    """{'var': cidr} -> what is wrong: not a CIDR, host bits, public, overlaps (every pair, across roles)."""
    nets, out = [], []
    for var, cidr in sorted(named.items()):
        try:
            if not isinstance(cidr, str) or "/" not in cidr:
                raise ValueError(cidr)
            net = ipaddress.IPv4Network(cidr)
        except ValueError:
            out.append("%s=%s is not a valid IPv4 CIDR range such as 10.10.0.0/20 (no host bits set)" % (var, cidr))
            continue
        if var not in public_ok and not any(net.subnet_of(ipaddress.IPv4Network(p)) for p in
                                            ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")):
            out.append("%s=%s must be a private range (10/8, 172.16/12, 192.168/16 or 100.64/10)" % (var, cidr))
        nets.append((var, net))
    for i, (va, a) in enumerate(nets):
        for vb, b in nets[i + 1:]:
            if a.overlaps(b):
                out.append("%s (%s) overlaps %s (%s): pick ranges that do not overlap" % (va, a, vb, b))
    return out


def address_problem(value, var, subnet=None):
    """An internal IPv4 address GCP can reserve in the subnet (not its first two or last two addresses)."""
    try:
        addr = ipaddress.IPv4Address(value if isinstance(value, str) else "x")
    except ValueError:
        return "%s=%s is not an IPv4 address such as 10.10.0.10" % (var, value)
    if subnet:
        try:
            net = ipaddress.IPv4Network(subnet)
        except ValueError:
            return ""
        if addr not in net:
            return "%s=%s is not in the subnet %s: pick an address in it, or leave it empty" % (var, value, net)
        reserved = (net.network_address, net.network_address + 1, net.broadcast_address - 1, net.broadcast_address)
        if addr in reserved:
            return ("%s=%s is reserved by GCP in %s (the first two and last two addresses): pick another"
                    % (var, value, net))
    return ""


# Resource paths, the names the GCP APIs take ("projects/P/..."), built here rather than in each module.

def project_path(project):
    return "projects/%s" % project


def _under(project, collection, name):
    """projects/P/<collection>/<name>; a name that already is such a path is kept."""
    return name if name.startswith("projects/") else "projects/%s/%s/%s" % (project, collection, name)


def secret_path(project, secret):
    """A Secret Manager secret, by its ID in `project` or by its path."""
    return _under(project, "secrets", secret)


def secret_version_path(project, secret, version="latest"):
    return "%s/versions/%s" % (secret_path(project, secret), version)


def service_account_path(project, email):
    return _under(project, "serviceAccounts", email)


def service_path(project, service):
    """An API of a project as Service Usage names it (projects/P/services/compute.googleapis.com)."""
    return "projects/%s/services/%s" % (project, service)


def network_path(project, network):
    """A VPC network as Service Networking and Cloud SQL name it; a URL or name is reduced to its name."""
    return "projects/%s/global/networks/%s" % (project, network.rstrip("/").rsplit("/", 1)[-1])


def location_path(project, location="-"):
    """A region or zone of a project as the one-platform APIs name it ("-" is every location)."""
    return "projects/%s/locations/%s" % (project, location)


def key_ring_path(project, location, key_ring):
    """A Cloud KMS key ring, by its ID or its path."""
    return _under(project, "locations/%s/keyRings" % location, key_ring)


def crypto_key_path(project, location, key_ring, key):
    """A Cloud KMS key, by its ID in the key ring or by its path."""
    return key if key.startswith("projects/") else "%s/cryptoKeys/%s" % (
        key_ring_path(project, location, key_ring), key)


BUCKET_COMPONENT_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")


def bucket_name_problem(name, var="name"):
    """Cloud Storage's bucket naming rules (https://cloud.google.com/storage/docs/buckets#naming), or None."""
    if not isinstance(name, str):
        return "%s must be a string" % var
    dotted = "." in name
    if not 3 <= len(name) <= (222 if dotted else 63):
        return "%s=%r must be 3 to 63 characters (222 when it contains dots)" % (var, name)
    parts = name.split(".")
    if any(not BUCKET_COMPONENT_RE.match(part) or len(part) > 63 for part in parts):
        return ("%s=%r may hold only lowercase letters, digits, '-', '_' and '.', each dot-separated part 1 to 63 "
                "characters starting and ending with a letter or digit" % (var, name))
    if re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return "%s=%r must not look like an IP address" % (var, name)
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "%s=%r must not start with 'goog' or contain 'google'" % (var, name)
    return None
