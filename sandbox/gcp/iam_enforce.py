"""Least-privilege enforcement for the deploying identity (off unless a role list is given).

Turn it on with env SKYFORGE_SANDBOX_DEPLOYER_ROLES="roles/a,roles/b" or POST /_sandbox/iam/deployer-roles
{"roles": [...]} ({"roles": null} turns it off again). Then every GCP API call made with the deployer's token must
hold, through one of the granted predefined roles, every IAM permission the real API checks for that method, or it
answers 403 in the shape that API uses. The Kubernetes API of a sandbox cluster checks the same list (GKE maps
Kubernetes RBAC onto IAM: roles/container.admin or roles/container.developer).

ROLE_PERMISSIONS is a SUBSET of each predefined role's documented contents
(https://cloud.google.com/iam/docs/roles-permissions/<service>, e.g. .../compute, .../container, .../cloudsql,
.../secretmanager, .../iam, .../resourcemanager, .../serviceusage, .../servicenetworking, .../redis): only the
permissions that METHOD_PERMISSIONS (and the CRUD rule) can ask for are listed. A permission a role really has but
the table lacks makes the sandbox stricter than GCP, never more forgiving.
"""

from __future__ import annotations

import os

from ..web import ApiError

ENV = "SKYFORGE_SANDBOX_DEPLOYER_ROLES"

# discovery method id -> the permissions the real API checks (from each method's REST reference "IAM permissions").
METHOD_PERMISSIONS = {
    # Cloud Resource Manager
    "cloudresourcemanager.projects.getIamPolicy": ("resourcemanager.projects.getIamPolicy",),
    "cloudresourcemanager.projects.setIamPolicy": ("resourcemanager.projects.setIamPolicy",),
    "cloudresourcemanager.projects.get": ("resourcemanager.projects.get",),
    # What gcloud calls: aggregated lists need the collection's list permission, Run v1 the jobs' permissions.
    "compute.addresses.aggregatedList": ("compute.addresses.list",),
    "compute.instances.aggregatedList": ("compute.instances.list",),
    "compute.routers.aggregatedList": ("compute.routers.list",),
    "compute.subnetworks.aggregatedList": ("compute.subnetworks.list",),
    "run.namespaces.jobs.get": ("run.jobs.get",),
    "run.namespaces.jobs.list": ("run.jobs.list",),
    # Service Usage
    "serviceusage.services.enable": ("serviceusage.services.enable",),
    "serviceusage.services.batchEnable": ("serviceusage.services.enable",),
    "serviceusage.services.disable": ("serviceusage.services.disable",),
    "serviceusage.services.get": ("serviceusage.services.get",),
    "serviceusage.services.batchGet": ("serviceusage.services.get",),
    "serviceusage.services.list": ("serviceusage.services.list",),
    "serviceusage.operations.get": ("serviceusage.operations.get",),
    # Service Networking
    "servicenetworking.services.connections.create": ("servicenetworking.services.addPeering",),
    "servicenetworking.services.connections.patch": ("servicenetworking.services.addPeering",),
    "servicenetworking.services.connections.list": ("servicenetworking.services.get",),
    "servicenetworking.services.connections.deleteConnection": ("servicenetworking.services.deleteConnection",),
    "servicenetworking.operations.get": ("servicenetworking.operations.get",),
    # Compute Engine: instances
    "compute.instances.insert": ("compute.instances.create", "compute.disks.create", "compute.subnetworks.use"),
    "compute.instances.get": ("compute.instances.get",),
    "compute.instances.list": ("compute.instances.list",),
    "compute.instances.delete": ("compute.instances.delete",),
    "compute.instances.setLabels": ("compute.instances.setLabels",),
    "compute.instances.setMetadata": ("compute.instances.setMetadata",),
    "compute.instances.setTags": ("compute.instances.setTags",),
    "compute.instances.start": ("compute.instances.start",),
    "compute.instances.stop": ("compute.instances.stop",),
    # Compute Engine: networking
    "compute.networks.insert": ("compute.networks.create",),
    "compute.subnetworks.insert": ("compute.subnetworks.create",),
    "compute.subnetworks.setPrivateIpGoogleAccess": ("compute.subnetworks.setPrivateIpGoogleAccess",),
    "compute.routers.getRouterStatus": ("compute.routers.get",),
    "compute.firewalls.insert": ("compute.firewalls.create", "compute.networks.updatePolicy"),
    "compute.firewalls.patch": ("compute.firewalls.update", "compute.networks.updatePolicy"),
    "compute.firewalls.update": ("compute.firewalls.update", "compute.networks.updatePolicy"),
    "compute.firewalls.delete": ("compute.firewalls.delete", "compute.networks.updatePolicy"),
    # Cloud Armor: rule edits are updates of the policy
    "compute.securityPolicies.addRule": ("compute.securityPolicies.update",),
    "compute.securityPolicies.patchRule": ("compute.securityPolicies.update",),
    "compute.securityPolicies.removeRule": ("compute.securityPolicies.update",),
    "compute.securityPolicies.getRule": ("compute.securityPolicies.get",),
    # operations: waiting on one needs get on the operation
    "compute.globalOperations.get": ("compute.globalOperations.get",),
    "compute.globalOperations.wait": ("compute.globalOperations.get",),
    "compute.regionOperations.get": ("compute.regionOperations.get",),
    "compute.regionOperations.wait": ("compute.regionOperations.get",),
    "compute.zoneOperations.get": ("compute.zoneOperations.get",),
    "compute.zoneOperations.wait": ("compute.zoneOperations.get",),
    # GKE
    "container.projects.locations.clusters.create": ("container.clusters.create",),
    "container.projects.locations.clusters.get": ("container.clusters.get",),
    "container.projects.locations.clusters.list": ("container.clusters.list",),
    "container.projects.locations.clusters.update": ("container.clusters.update",),
    "container.projects.locations.clusters.delete": ("container.clusters.delete",),
    "container.projects.locations.operations.get": ("container.operations.get",),
    # Cloud SQL (its operations are read with cloudsql.instances.get)
    "sql.operations.get": ("cloudsql.instances.get",),
    "sql.operations.list": ("cloudsql.instances.get",),
    # Secret Manager
    "secretmanager.projects.secrets.addVersion": ("secretmanager.versions.add",),
    # IAM
    "iam.projects.serviceAccounts.patch": ("iam.serviceAccounts.update",),
    # Cloud Run (jobs are the Prefect worker's business: runtime identity, roles/run.developer)
    "run.projects.locations.jobs.create": ("run.jobs.create",),
    "run.projects.locations.jobs.get": ("run.jobs.get",),
    "run.projects.locations.jobs.list": ("run.jobs.list",),
    "run.projects.locations.jobs.patch": ("run.jobs.update",),
    "run.projects.locations.jobs.delete": ("run.jobs.delete",),
    "run.projects.locations.jobs.run": ("run.jobs.run",),
    "run.projects.locations.jobs.executions.get": ("run.executions.get",),
    "run.projects.locations.jobs.executions.list": ("run.executions.list",),
    "run.projects.locations.jobs.executions.cancel": ("run.executions.cancel",),
    "run.projects.locations.jobs.executions.delete": ("run.executions.delete",),
    "run.projects.locations.jobs.executions.tasks.get": ("run.tasks.get",),
    "run.projects.locations.jobs.executions.tasks.list": ("run.tasks.list",),
    "run.projects.locations.operations.get": ("run.operations.get",),
    "run.projects.locations.operations.wait": ("run.operations.get",),
    "run.projects.locations.operations.list": ("run.operations.list",),
    "run.projects.locations.operations.delete": ("run.operations.delete",),
    # Cloud KMS (the ML artifact profile's CMEK keys)
    **{"cloudkms.projects.locations.keyRings.%s" % verb: ("cloudkms.keyRings.%s" % verb,)
       for verb in ("create", "get", "list", "delete")},
    **{"cloudkms.projects.locations.keyRings.cryptoKeys.%s" % verb: ("cloudkms.cryptoKeys.%s" % perm,)
       for verb, perm in (("create", "create"), ("get", "get"), ("list", "list"), ("patch", "update"),
                          ("delete", "delete"), ("updatePrimaryVersion", "update"))},
    **{"cloudkms.projects.locations.keyRings.cryptoKeys.cryptoKeyVersions.%s" % verb:
       ("cloudkms.cryptoKeyVersions.%s" % perm,)
       for verb, perm in (("create", "create"), ("get", "get"), ("list", "list"), ("patch", "update"),
                          ("destroy", "destroy"), ("restore", "restore"), ("delete", "delete"))},
    "cloudkms.projects.locations.operations.get": ("cloudkms.operations.get",),
    # Cloud Storage (buckets.insert/patch/update check storage.buckets.create/update)
    **{"storage.buckets.%s" % verb: ("storage.buckets.%s" % perm,)
       for verb, perm in (("insert", "create"), ("get", "get"), ("list", "list"), ("patch", "update"),
                          ("update", "update"), ("delete", "delete"), ("getIamPolicy", "getIamPolicy"),
                          ("setIamPolicy", "setIamPolicy"))},
    **{"storage.objects.%s" % verb: ("storage.objects.%s" % perm,)
       for verb, perm in (("insert", "create"), ("get", "get"), ("list", "list"), ("delete", "delete"))},
    # Artifact Registry (its operations are read with the repository's get)
    **{"artifactregistry.projects.locations.repositories.%s" % verb: ("artifactregistry.repositories.%s" % perm,)
       for verb, perm in (("create", "create"), ("get", "get"), ("list", "list"), ("patch", "update"),
                          ("delete", "delete"))},
    "artifactregistry.projects.locations.operations.get": ("artifactregistry.repositories.get",),
}

# Plain CRUD families the rule "<api>.<coll>.<verb>" -> "<prefix>.<coll>.<verb'>" covers.
_VERBS = {"insert": "create", "create": "create", "get": "get", "list": "list", "delete": "delete",
          "patch": "update", "update": "update", "getIamPolicy": "getIamPolicy", "setIamPolicy": "setIamPolicy",
          "access": "access", "destroy": "destroy", "disable": "disable", "enable": "enable",
          "getAuthString": "getAuthString", "upgrade": "upgrade"}
_FAMILIES = (
    ("compute.", "compute.", ("networks", "subnetworks", "addresses", "globalAddresses", "routers", "firewalls",
                              "securityPolicies")),
    ("sql.", "cloudsql.", ("instances", "databases", "users")),
    ("secretmanager.projects.", "secretmanager.", ("secrets", "secrets.versions")),
    ("iam.projects.", "iam.", ("serviceAccounts",)),
    # Memorystore for Redis: its operations have permissions of their own (redis.operations.get).
    ("redis.projects.locations.", "redis.", ("instances", "operations")),
)


def permissions_for(method_id):
    """The permissions a method id needs, or None when the sandbox has no mapping for it."""
    if method_id in METHOD_PERMISSIONS:
        return METHOD_PERMISSIONS[method_id]
    for api_prefix, perm_prefix, collections in _FAMILIES:
        if not method_id.startswith(api_prefix):
            continue
        coll, _, verb = method_id[len(api_prefix):].rpartition(".")
        if coll in collections and verb in _VERBS:
            coll = "versions" if coll == "secrets.versions" else coll
            return ("%s%s.%s" % (perm_prefix, coll, _VERBS[verb]),)
    return None


def extra_permissions(method_id, body):
    """Permissions that depend on the request body (attaching a service account needs actAs on it)."""
    body = body if isinstance(body, dict) else {}
    extra = []
    if method_id == "compute.instances.insert":
        if body.get("serviceAccounts"):
            extra += ["compute.instances.setServiceAccount", "iam.serviceAccounts.actAs"]
        if body.get("metadata", {}).get("items"):
            extra.append("compute.instances.setMetadata")
        if body.get("tags", {}).get("items"):
            extra.append("compute.instances.setTags")
        if body.get("labels"):
            extra.append("compute.instances.setLabels")
        if any(ni.get("accessConfigs") for ni in body.get("networkInterfaces") or []):
            extra.append("compute.subnetworks.useExternalIp")
    elif method_id in ("run.projects.locations.jobs.create", "run.projects.locations.jobs.patch"):
        if ((body.get("template") or {}).get("template") or {}).get("serviceAccount"):
            extra.append("iam.serviceAccounts.actAs")
    elif method_id == "run.projects.locations.jobs.run" and body.get("overrides"):
        extra.append("run.jobs.runWithOverrides")
    elif method_id == "container.projects.locations.clusters.create":
        # GKE creates nodes as the node service account (the Compute default one unless set): actAs on it.
        extra.append("iam.serviceAccounts.actAs")
    return tuple(extra)


_SUB = {"read": ("get", "list"), "crud": ("create", "delete", "get", "list", "update")}


def _expand(prefix, colls, verbs):
    return {"%s.%s.%s" % (prefix, c, v) for c in colls for v in verbs}


_CONTAINER_K8S = _expand("container", (
    "namespaces", "configMaps", "secrets", "serviceAccounts", "services", "deployments", "statefulSets",
    "daemonSets", "replicaSets", "pods", "jobs", "cronJobs", "ingresses", "networkPolicies",
    "persistentVolumeClaims", "horizontalPodAutoscalers", "podDisruptionBudgets", "customResourceDefinitions",
    "thirdPartyObjects", "backendConfigs", "frontendConfigs", "managedCertificates", "leases", "events",
    "endpoints", "limitRanges", "resourceQuotas"), ("create", "delete", "get", "list", "update"))

# A subset of each role's documented permissions (see the module docstring).
ROLE_PERMISSIONS = {
    "roles/serviceusage.serviceUsageAdmin": frozenset({
        "serviceusage.services.enable", "serviceusage.services.disable", "serviceusage.services.get",
        "serviceusage.services.list", "serviceusage.services.use", "serviceusage.operations.get",
        "serviceusage.operations.list"}),
    "roles/compute.networkAdmin": frozenset(
        _expand("compute", ("networks",), ("create", "delete", "get", "list", "update", "updatePolicy", "use",
                                           "addPeering", "removePeering", "updatePeering"))
        | _expand("compute", ("subnetworks",), ("create", "delete", "get", "list", "update", "use",
                                                "useExternalIp", "setPrivateIpGoogleAccess"))
        | _expand("compute", ("addresses", "globalAddresses"), ("create", "delete", "get", "list", "use"))
        | _expand("compute", ("routers",), ("create", "delete", "get", "list", "update", "use"))
        | _expand("compute", ("firewalls", "securityPolicies", "instances"), _SUB["read"])
        | _expand("compute", ("globalOperations", "regionOperations", "zoneOperations"), _SUB["read"])),
    "roles/compute.securityAdmin": frozenset(
        _expand("compute", ("firewalls",), ("create", "delete", "get", "list", "update"))
        | _expand("compute", ("securityPolicies",), ("create", "delete", "get", "list", "update", "use"))
        | {"compute.networks.updatePolicy", "compute.networks.get", "compute.networks.list"}
        | _expand("compute", ("globalOperations", "regionOperations", "zoneOperations"), _SUB["read"])),
    "roles/compute.instanceAdmin.v1": frozenset(
        _expand("compute", ("instances",), ("create", "delete", "get", "list", "update", "setLabels",
                                            "setMetadata", "setTags", "setServiceAccount", "start", "stop",
                                            "use"))
        | _expand("compute", ("disks",), ("create", "delete", "get", "list", "use"))
        | {"compute.subnetworks.use", "compute.subnetworks.useExternalIp", "compute.networks.use",
           "compute.addresses.use", "compute.subnetworks.get", "compute.subnetworks.list",
           "compute.networks.get", "compute.networks.list"}
        | _expand("compute", ("globalOperations", "regionOperations", "zoneOperations"), _SUB["read"])),
    "roles/servicenetworking.networksAdmin": frozenset({
        "servicenetworking.services.addPeering", "servicenetworking.services.deleteConnection",
        "servicenetworking.services.get", "servicenetworking.services.use", "servicenetworking.operations.get",
        "servicenetworking.operations.list"}),
    # Documented as container.*: every Kubernetes object type, custom resources included.
    "roles/container.admin": frozenset({"container.*"}),
    "roles/container.developer": frozenset(
        _expand("container", ("clusters",), ("get", "list")) | _CONTAINER_K8S
        | _expand("container", ("roles", "roleBindings", "clusterRoles", "clusterRoleBindings"), _SUB["read"])),
    "roles/cloudsql.admin": frozenset(
        _expand("cloudsql", ("instances",), ("create", "delete", "get", "list", "update"))
        | _expand("cloudsql", ("databases", "users"), ("create", "delete", "get", "list", "update"))),
    "roles/redis.admin": frozenset(
        _expand("redis", ("instances",), ("create", "delete", "get", "list", "update", "upgrade", "getAuthString"))
        | _expand("redis", ("operations",), ("get", "list", "delete", "cancel"))),
    "roles/secretmanager.admin": frozenset(
        _expand("secretmanager", ("secrets",), ("create", "delete", "get", "list", "update", "getIamPolicy",
                                                "setIamPolicy"))
        | _expand("secretmanager", ("versions",), ("add", "access", "destroy", "disable", "enable", "get",
                                                   "list"))),
    "roles/iam.serviceAccountAdmin": frozenset(
        _expand("iam", ("serviceAccounts",), ("create", "delete", "get", "list", "update", "getIamPolicy",
                                              "setIamPolicy", "disable", "enable", "undelete"))),
    "roles/run.developer": frozenset(
        _expand("run", ("jobs",), ("create", "delete", "get", "list", "update", "run", "runWithOverrides"))
        | _expand("run", ("executions",), ("get", "list", "delete", "cancel"))
        | _expand("run", ("tasks",), ("get", "list"))
        | _expand("run", ("operations",), ("get", "list", "delete"))),
    "roles/iam.serviceAccountUser": frozenset({
        "iam.serviceAccounts.actAs", "iam.serviceAccounts.get", "iam.serviceAccounts.list"}),
    "roles/cloudkms.admin": frozenset(
        _expand("cloudkms", ("keyRings",), ("create", "delete", "get", "list", "getIamPolicy", "setIamPolicy"))
        | _expand("cloudkms", ("cryptoKeys",), ("create", "delete", "get", "list", "update", "getIamPolicy",
                                                "setIamPolicy"))
        | _expand("cloudkms", ("cryptoKeyVersions",), ("create", "delete", "destroy", "get", "list", "restore",
                                                       "update"))
        | {"cloudkms.operations.get", "cloudkms.locations.get", "cloudkms.locations.list"}),
    "roles/storage.admin": frozenset(
        _expand("storage", ("buckets",), ("create", "delete", "get", "list", "update", "getIamPolicy",
                                          "setIamPolicy"))
        | _expand("storage", ("objects",), ("create", "delete", "get", "list", "update", "getIamPolicy",
                                            "setIamPolicy"))),
    "roles/artifactregistry.admin": frozenset(
        _expand("artifactregistry", ("repositories",), ("create", "delete", "get", "list", "update",
                                                        "getIamPolicy", "setIamPolicy", "uploadArtifacts",
                                                        "downloadArtifacts", "deleteArtifacts"))),
    "roles/resourcemanager.projectIamAdmin": frozenset({
        "resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy"}),
}

# Kubernetes RBAC on GKE: what a Kubernetes verb needs in IAM terms.
K8S_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


def grants(permissions, permission):
    """Whether a permission set (entries may be "service.*") includes a permission."""
    return permission in permissions or permission.split(".", 1)[0] + ".*" in permissions


def parse_roles(value):
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    roles = [r.strip() for r in value if r and r.strip()]
    return roles


class Enforcer:
    def __init__(self, deployer_email_fn):
        self._deployer = deployer_email_fn
        self.roles = parse_roles(os.environ.get(ENV)) if os.environ.get(ENV) else None
        unknown = [r for r in self.roles or [] if r not in ROLE_PERMISSIONS]
        if unknown:
            raise ValueError("%s names role(s) the sandbox has no table for: %s" % (ENV, unknown))
        self.denied = []  # (method id or kube verb, permission, resource), newest last
        self.checked = 0  # requests checked since the roles were last set
        self.checked_kube = 0  # of which Kubernetes API calls
        self.used = set()  # every permission a checked call needed

    @property
    def enabled(self):
        return self.roles is not None

    def set_roles(self, roles):
        unknown = [r for r in roles or [] if r not in ROLE_PERMISSIONS]
        if unknown:
            raise ApiError(400, "unknown role(s) %s; the sandbox knows %s" % (unknown, sorted(ROLE_PERMISSIONS)))
        self.roles = parse_roles(roles)
        self.denied = []
        self.checked = self.checked_kube = 0
        self.used = set()

    def granted(self):
        out = set()
        for role in self.roles or ():
            out |= ROLE_PERMISSIONS.get(role, frozenset())
        return out

    def applies_to(self, principal):
        return self.enabled and principal == self._deployer()

    def missing(self, permissions):
        granted = self.granted()
        return [p for p in permissions if not grants(granted, p)]

    # ---- GCP APIs ------------------------------------------------------------------------
    def check(self, req, api, method, params, principal):
        if not self.applies_to(principal):
            return
        self.checked += 1
        method_id = method["id"]
        needed = permissions_for(method_id)
        if needed is None:
            # Fail closed: a method nobody mapped cannot be granted.
            needed = ("%s (unmapped in sandbox/gcp/iam_enforce.py)" % method_id,)
        body = req.json if req.method in ("POST", "PUT", "PATCH") and req.body else None
        needed = tuple(needed) + extra_permissions(method_id, body)
        self.used.update(needed)
        missing = self.missing(needed)
        if not missing:
            return
        resource = resource_name(api, req, params, body)
        self.denied.append((method_id, missing[0], resource))
        raise denial(api, method_id, missing[0], resource, body)

    def describe(self):
        denied = [{"method": m, "permission": p, "resource": r} for m, p, r in self.denied]
        return {"enabled": self.enabled, "roles": self.roles, "checked": self.checked,
                "checked_kube": self.checked_kube, "denied": denied}

    # ---- the Kubernetes API of a sandbox cluster -------------------------------------------
    def check_kube(self, principal, http_method, resource, namespace, name):
        if not self.applies_to(principal):
            return
        self.checked += 1
        self.checked_kube += 1
        verb = K8S_VERBS.get(http_method, "get")
        if verb == "get" and not name:
            verb = "list"
        permission = "container.%s.%s" % (_camel(resource), verb) if resource else None
        # Reaching the cluster at all takes container.clusters.get; discovery (/api, /version) needs nothing more.
        needed = ("container.clusters.get",) + ((permission,) if permission else ())
        self.used.update(needed)
        missing = self.missing(needed)
        if not missing:
            return
        self.denied.append(("kube %s %s" % (http_method, resource), missing[0], namespace or ""))
        scope = 'in the namespace "%s"' % namespace if namespace else "at the cluster scope"
        noun = '%s "%s"' % (resource, name) if name else resource
        raise ApiError(403, '%s is forbidden: User "%s" cannot %s resource "%s" in API group "" %s: requires one of '
                            '["%s"] permission(s).' % (noun, principal, verb, resource, scope, missing[0]),
                       reason="Forbidden", details={"name": name or "", "kind": resource})


def _camel(resource):
    # Kubernetes plural resource names map to IAM's camelCase collection ids (configmaps -> configMaps).
    known = {"configmaps": "configMaps", "serviceaccounts": "serviceAccounts", "statefulsets": "statefulSets",
             "daemonsets": "daemonSets", "replicasets": "replicaSets", "cronjobs": "cronJobs",
             "networkpolicies": "networkPolicies", "persistentvolumeclaims": "persistentVolumeClaims",
             "horizontalpodautoscalers": "horizontalPodAutoscalers", "poddisruptionbudgets": "podDisruptionBudgets",
             "customresourcedefinitions": "customResourceDefinitions", "rolebindings": "roleBindings",
             "clusterroles": "clusterRoles", "clusterrolebindings": "clusterRoleBindings",
             "backendconfigs": "backendConfigs", "frontendconfigs": "frontendConfigs",
             "managedcertificates": "managedCertificates", "limitranges": "limitRanges",
             "resourcequotas": "resourceQuotas"}
    return known.get(resource, resource)


def resource_name(api, req, params, body):
    """The resource the permission is checked on, as the API names it in its error."""
    path = req.path.split("?")[0]
    rest = path[path.index("projects/"):] if "projects/" in path else path.lstrip("/")  # drop the service path
    if api == "compute":
        if req.method == "POST" and isinstance(body, dict) and body.get("name") and not rest.rsplit("/", 1)[-1] \
                in ("addRule", "patchRule", "removeRule", "setLabels", "setMetadata", "setTags", "start", "stop",
                    "setPrivateIpGoogleAccess"):
            return "%s/%s" % (rest, body["name"])
        return rest
    for key in ("name", "resource", "parent"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return rest


def denial(api, method_id, permission, resource, body=None):
    """A 403 shaped as the API that was called shapes it."""
    project = resource.split("/")[1] if resource.startswith("projects/") else ""
    if api == "compute":
        return ApiError(403, "Required '%s' permission for '%s'" % (permission, resource), reason="forbidden")
    if api == "sqladmin":
        # Cloud SQL Admin never names the permission.
        return ApiError(403, "The client is not authorized to make this request.", reason="notAuthorized")
    if api == "container":
        return ApiError(403, 'Required "%s" permission(s) for "%s".' % (permission, resource), reason="forbidden")
    if api == "cloudresourcemanager":
        message = "Policy update access denied." if method_id.endswith("setIamPolicy") \
            else "The caller does not have permission"
        return ApiError(403, message, reason="forbidden")
    if api == "serviceusage" and method_id.endswith(("enable", "batchEnable")):
        services = ", ".join((body or {}).get("serviceIds") or []) or resource.rsplit("/", 1)[-1]
        message = "Permission denied to enable service [%s]" % services
        return ApiError(403, message, reason="forbidden", details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "AUTH_PERMISSION_DENIED",
            "domain": "serviceusage.googleapis.com", "metadata": {"permission": permission}}])
    service = "%s.googleapis.com" % api
    return ApiError(403, "Permission '%s' denied on resource '%s' (or it may not exist)." % (permission, resource),
                    reason="forbidden", details=[{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                        "domain": "iam.googleapis.com",
                        "metadata": {"permission": permission, "resource": resource, "service": service,
                                     "project": project}}])
