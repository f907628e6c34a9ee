"""The sandbox's `helm`: the subset of the helm 3 CLI that kubernetes.core.helm calls, against a sandbox cluster.

It is a stand-in, not helm: it knows only the Prefect charts (their values.yaml and values.schema.json from the
shared specs), and stores releases the way helm 3 does (a `helm.sh/release.v1` Secret per revision) in the cluster
the kubeconfig points at, reached through the kubeconfig's proxy-url. Until real Helm lands, a temporary bridge
(bridge.py) writes the objects the two charts render; the cluster's workload runner runs what they say.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import os
import re
import sys
import tempfile
import time

import jsonschema
import requests
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from sandbox.helm import bridge  # noqa: E402  TEMPORARY: deleted when real Helm renders the charts
from sandbox.kube.releases import coalesce, decode_release, deployment_ready, encode_release  # noqa: E402

VERSION = "v3.17.3"
REPO_URL = "https://prefecthq.github.io/prefect-helm"
CHART_VERSION = "2026.8.18172642"  # the prefect-helm tag the shared specs were taken from
APP_VERSION = "3.8.8"
CHARTS = ("prefect-server", "prefect-worker")


class HelmError(Exception):
    pass


def specs_dir():
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get("SKYFORGE_SPECS_DIR") or os.path.join(here, "..", "shared", "specs")


# ---- arguments ------------------------------------------------------------------------------
BOOL_FLAGS = {"-i", "--install", "--reset-values", "--reuse-values", "--reset-then-reuse-values", "--wait", "--atomic",
              "--force", "--replace", "--no-hooks", "--create-namespace", "--skip-crds", "--keep-history", "-a",
              "--all", "--insecure-skip-tls-verify", "--plain-http", "--skip-schema-validation", "--take-ownership",
              "--short", "--dependency-update"}


def parse(argv):
    flags, positional, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if name in ("-f", "--values"):
                flags.setdefault("values", []).append(value if eq else argv[i + 1])
                i += 1 if eq else 2
                continue
            if name in BOOL_FLAGS:
                flags[name.lstrip("-")] = value.lower() != "false" if eq else True
            elif eq:
                flags[name.lstrip("-")] = value
            else:
                flags[name.lstrip("-")] = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
        else:
            positional.append(arg)
        i += 1
    return flags, positional


def duration(text):
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)([hms])", text or "5m0s"):
        total += float(number) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total or 300.0


# ---- the cluster ----------------------------------------------------------------------------
class Cluster:
    def __init__(self, flags):
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            with open(path) as fh:
                config = yaml.safe_load(fh)
        except OSError as err:
            raise HelmError("Kubernetes cluster unreachable: %s" % err)
        ctx_name = flags.get("kube-context") or os.environ.get("HELM_KUBECONTEXT") or config.get("current-context")
        ctx = _named(config, "contexts", ctx_name, "context")
        cluster = _named(config, "clusters", ctx.get("cluster"), "cluster")
        user = _named(config, "users", ctx.get("user"), "user")
        self.server = cluster.get("server", "")
        self.session = requests.Session()
        self.session.trust_env = False
        if cluster.get("proxy-url"):
            self.session.proxies = {"https": cluster["proxy-url"], "http": cluster["proxy-url"]}
        if not self.session.proxies or not self.session.proxies["https"].startswith("http://127.0.0.1:"):
            # Only loopback may be dialled here: a cluster endpoint is reached through the sandbox's bastion.
            raise HelmError("Kubernetes cluster unreachable: %s is not a sandbox cluster (its kubeconfig has no "
                            "sandbox proxy-url); write the kubeconfig with gcp_gke_kubeconfig" % self.server)
        ca = cluster.get("certificate-authority-data")
        if ca:
            fd, self.ca_file = tempfile.mkstemp(suffix=".crt")
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64decode(ca))
            self.session.verify = self.ca_file
        token = os.environ.get("HELM_KUBETOKEN") or user.get("token")
        if token:
            self.session.headers["Authorization"] = "Bearer " + token
        self.namespace = flags.get("namespace") or flags.get("n") or os.environ.get("HELM_NAMESPACE") or \
            ctx.get("namespace") or "default"
        try:
            self.request("GET", "/version")
        except requests.RequestException as err:
            raise HelmError("Kubernetes cluster unreachable: Get \"%s/version\": %s" % (self.server, _short(err)))

    def request(self, method, path, body=None, ok=(200, 201)):
        resp = self.session.request(method, self.server + path, json=body, timeout=30)
        if resp.status_code == 404 and 404 not in ok:
            return None
        if resp.status_code not in ok:
            try:
                message = resp.json().get("message")
            except ValueError:
                message = resp.text
            raise HelmError("%s %s: %s" % (method, path, message))
        return resp.json() if resp.content else {}

    def releases(self, name=None, namespace=None):
        sel = "owner=helm" + (",name=%s" % name if name else "")
        ns = namespace or self.namespace
        out = self.request("GET", "/api/v1/namespaces/%s/secrets?labelSelector=%s" % (ns, sel))
        items = (out or {}).get("items", [])
        return sorted((decode_release(s) for s in items), key=lambda r: (r["name"], r["version"]))

    def latest(self, name):
        revs = self.releases(name)
        return revs[-1] if revs else None

    def save(self, release, create):
        name = "sh.helm.release.v1.%s.v%d" % (release["name"], release["version"])
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                  "metadata": {"name": name, "labels": {"owner": "helm", "name": release["name"],
                                                        "status": release["info"]["status"],
                                                        "version": str(release["version"])}},
                  "data": {"release": encode_release(release)}}
        base = "/api/v1/namespaces/%s/secrets" % release["namespace"]
        if create:
            self.request("POST", base, secret)
        else:
            self.request("PUT", base + "/" + name, secret)

    def delete_release(self, release):
        name = "sh.helm.release.v1.%s.v%d" % (release["name"], release["version"])
        self.request("DELETE", "/api/v1/namespaces/%s/secrets/%s" % (release["namespace"], name))


def _named(config, section, name, key):
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry.get(key) or {}
    raise HelmError("Kubernetes cluster unreachable: context/cluster/user %r not found in kubeconfig" % name)


def _short(err):
    return str(err).split(": ", 1)[-1][:300]


# ---- charts ---------------------------------------------------------------------------------
def load_chart(flags, ref):
    repo = flags.get("repo")
    name = ref.strip("'\"")
    if "/" in name and not repo:
        alias, _, name = name.partition("/")
        if alias != "prefect":
            raise HelmError("repo %s not found" % alias)
    elif repo and repo.rstrip("/") != REPO_URL:
        raise HelmError("looks like \"%s\" is not a valid chart repository or cannot be reached" % repo)
    if name not in CHARTS:
        raise HelmError("chart \"%s\" not found in %s repository" % (name, REPO_URL))
    version = flags.get("version")
    if version and version not in (CHART_VERSION, "v" + CHART_VERSION):
        raise HelmError("chart \"%s\" version \"%s\" not found in %s repository (the sandbox has %s)"
                        % (name, version, REPO_URL, CHART_VERSION))
    base = os.path.join(specs_dir(), "prefect-helm", name)
    try:
        with open(os.path.join(base, "values.yaml")) as fh:
            defaults = yaml.safe_load(fh) or {}
        with open(os.path.join(base, "values.schema.json")) as fh:
            schema = json.load(fh)
    except OSError as err:
        raise HelmError("chart %s: cannot read its values from the shared specs (%s); set SKYFORGE_SPECS_DIR"
                        % (name, err))
    return {"metadata": {"apiVersion": "v2", "name": name, "version": CHART_VERSION, "appVersion": APP_VERSION,
                         "type": "application", "description": "Prefect %s (sandbox stand-in)" % name},
            "values": defaults, "schema": schema}


def validate(chart, values):
    """helm validates the coalesced values against the chart's values.schema.json before anything is stored."""
    merged = coalesce(chart["values"], values)
    validator = jsonschema.Draft7Validator(chart["schema"])
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        lines = ["- at '/%s': %s" % ("/".join(str(p) for p in e.absolute_path), e.message) for e in errors]
        raise HelmError("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s"
                        % (chart["metadata"]["name"], "\n".join(lines)))


def stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")


# ---- commands -------------------------------------------------------------------------------
def cmd_version(flags, args):
    if flags.get("short"):
        print(VERSION + "+gsandbox")
    else:
        print('version.BuildInfo{Version:"%s", GitCommit:"sandbox", GitTreeState:"clean", GoVersion:"go1.23.8"}'
              % VERSION)


def cmd_plugin(flags, args):
    if args[:1] == ["list"]:
        print("NAME\tVERSION\tDESCRIPTION")
        return
    raise HelmError("the sandbox helm installs no plugins")


def cmd_show(flags, args):
    if args[:1] != ["chart"] or len(args) < 2:
        raise HelmError("the sandbox helm implements 'show chart' only")
    print(yaml.safe_dump(load_chart(flags, args[1])["metadata"], sort_keys=True), end="")


def cmd_list(flags, args):
    cluster = Cluster(flags)
    pattern = re.compile(flags["filter"]) if flags.get("filter") else None
    latest = {}
    for rel in cluster.releases():
        latest[rel["name"]] = rel
    rows = []
    for rel in latest.values():
        if pattern and not pattern.search(rel["name"]):
            continue
        if not flags.get("all") and rel["info"]["status"] != "deployed":
            continue
        meta = rel["chart"]["metadata"]
        rows.append({"name": rel["name"], "namespace": rel["namespace"], "revision": str(rel["version"]),
                     "updated": rel["info"]["last_deployed"], "status": rel["info"]["status"],
                     "chart": "%s-%s" % (meta["name"], meta["version"]), "app_version": meta.get("appVersion", "")})
    if flags.get("output") in ("yaml", "json"):
        print(yaml.safe_dump(rows) if flags["output"] == "yaml" else json.dumps(rows), end="")
    else:
        print("NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION")
        for r in rows:
            print("\t".join([r["name"], r["namespace"], r["revision"], r["updated"], r["status"], r["chart"],
                             r["app_version"]]))


def cmd_get(flags, args):
    if len(args) < 2 or args[0] not in ("values", "manifest", "notes", "hooks"):
        raise HelmError("the sandbox helm implements 'get values|manifest|notes|hooks NAME'")
    cluster = Cluster(flags)
    rel = cluster.latest(args[1])
    if rel is None:
        raise HelmError("release: not found")
    if args[0] == "manifest":
        print(rel.get("manifest") or "")
        return
    if args[0] != "values":
        print("")
        return
    values = coalesce(rel["chart"]["values"], rel.get("config") or {}) if flags.get("all") or flags.get("a") \
        else (rel.get("config") or None)
    print(yaml.safe_dump(values) if flags.get("output") == "yaml" else json.dumps(values), end="")


def read_values(flags):
    values = {}
    for path in flags.get("values", []):
        with open(path) as fh:
            values = coalesce(values, yaml.safe_load(fh) or {})
    if flags.get("set") or flags.get("set-string") or flags.get("set-json"):
        raise HelmError("the sandbox helm does not implement --set; pass release_values instead")
    return values


def cmd_upgrade(flags, args, install_only=False):
    if len(args) != 2:
        raise HelmError("\"helm upgrade\" requires 2 arguments: RELEASE CHART")
    name, ref = args
    verb = "INSTALLATION" if install_only else "UPGRADE"
    chart = load_chart(flags, ref)
    cluster = Cluster(flags)
    values = read_values(flags)
    latest = cluster.latest(name)
    if latest is None and not (install_only or flags.get("install") or flags.get("i")):
        raise HelmError("UPGRADE FAILED: \"%s\" has no deployed releases" % name)
    if latest is not None and install_only:
        raise HelmError("INSTALLATION FAILED: cannot re-use a name that is still in use")
    if latest is not None and flags.get("reuse-values"):
        values = coalesce(latest.get("config") or {}, values)
    if not flags.get("skip-schema-validation"):
        try:
            validate(chart, values)
        except HelmError as err:
            raise HelmError("%s FAILED: %s" % (verb if latest else "INSTALLATION", err))
    ns = cluster.namespace
    if cluster.request("GET", "/api/v1/namespaces/%s" % ns) is None:
        if not flags.get("create-namespace"):
            raise HelmError("%s FAILED: create: failed to create: namespaces \"%s\" not found"
                            % ("INSTALLATION" if latest is None else verb, ns))
        cluster.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": ns}})
    now = stamp()
    release = {"name": name, "namespace": ns, "version": (latest["version"] + 1) if latest else 1,
               "info": {"status": "deployed", "first_deployed": latest["info"]["first_deployed"] if latest else now,
                        "last_deployed": now, "description": "Upgrade complete" if latest else "Install complete"},
               "chart": {"metadata": chart["metadata"], "values": chart["values"]},
               "config": values, "manifest": ""}
    if latest is not None and latest["info"]["status"] == "deployed":
        old = copy.deepcopy(latest)
        old["info"]["status"] = "superseded"
        cluster.save(old, create=False)
    cluster.save(release, create=True)
    # TEMPORARY bridge: the chart's objects, as the templates render them (deleted when real Helm lands).
    objects = bridge.render(chart["metadata"], name, ns, coalesce(chart["values"], values))
    previous = bridge.render(latest["chart"]["metadata"], name, ns, coalesce(latest["chart"]["values"],
                                                                           latest.get("config") or {})) \
        if latest is not None else ()
    bridge.apply(cluster, ns, objects, previous)
    release["manifest"] = yaml.safe_dump_all([obj for _resource, obj in objects], sort_keys=True)
    cluster.save(release, create=False)
    if flags.get("wait") or flags.get("atomic"):
        err = wait_ready(cluster, name, duration(flags.get("timeout")))
        if err:
            release["info"]["status"] = "failed"
            release["info"]["description"] = "Release \"%s\" failed: %s" % (name, err)
            cluster.save(release, create=False)
            raise HelmError("%s FAILED: context deadline exceeded (%s)"
                            % ("INSTALLATION" if latest is None else verb, err))
    if latest is None:
        print("NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: deployed\nREVISION: 1" % (name, now, ns))
    else:
        print("Release \"%s\" has been upgraded. Happy Helming!\nNAME: %s\nNAMESPACE: %s\nSTATUS: deployed\n"
              "REVISION: %d" % (name, name, ns, release["version"]))


def wait_ready(cluster, name, timeout):
    deadline = time.monotonic() + timeout
    reason = "no workload reported ready"
    while time.monotonic() < deadline:
        out = cluster.request("GET", "/apis/apps/v1/namespaces/%s/deployments?labelSelector="
                                     "app.kubernetes.io/instance=%s" % (cluster.namespace, name))
        items = (out or {}).get("items", [])
        if items and all(deployment_ready(d) for d in items):
            return None
        for d in items:
            for cond in (d.get("status") or {}).get("conditions", []):
                if cond.get("status") != "True":
                    reason = "deployment %s: %s" % (d["metadata"]["name"], cond.get("message"))
        time.sleep(0.5)
    return reason


def cmd_uninstall(flags, args):
    cluster = Cluster(flags)
    for name in args:
        revs = cluster.releases(name)
        if not revs:
            raise HelmError("uninstall: Release not loaded: %s: release: not found" % name)
        newest = revs[-1]
        # TEMPORARY bridge: the release's objects go with it (deleted when real Helm lands).
        bridge.delete(cluster, newest["namespace"], bridge.render(
            newest["chart"]["metadata"], name, newest["namespace"],
            coalesce(newest["chart"]["values"], newest.get("config") or {})))
        for rel in revs:
            if flags.get("keep-history"):
                rel["info"]["status"] = "uninstalled"
                cluster.save(rel, create=False)
            else:
                cluster.delete_release(rel)
        print("release \"%s\" uninstalled" % name)


def cmd_repo(flags, args):
    if args[:1] in (["add"], ["update"], ["list"]):
        if args[:1] == ["add"] and len(args) >= 3 and args[2].rstrip("/") != REPO_URL:
            raise HelmError("looks like \"%s\" is not a valid chart repository or cannot be reached" % args[2])
        print("...Successfully got an update from the \"prefect\" chart repository" if args[0] != "list"
              else "NAME\tURL\nprefect\t%s" % REPO_URL)
        return
    raise HelmError("the sandbox helm implements 'repo add|update|list' only")


COMMANDS = {"version": cmd_version, "plugin": cmd_plugin, "show": cmd_show, "inspect": cmd_show, "list": cmd_list,
            "ls": cmd_list, "get": cmd_get, "upgrade": cmd_upgrade, "install": lambda f, a: cmd_upgrade(f, a, True),
            "uninstall": cmd_uninstall, "delete": cmd_uninstall, "repo": cmd_repo}


def main(argv):
    flags, positional = parse(argv)
    if not positional:
        print("usage: helm COMMAND (sandbox stand-in: %s)" % ", ".join(sorted(COMMANDS)), file=sys.stderr)
        return 1
    command = COMMANDS.get(positional[0])
    if command is None:
        print("Error: unknown command \"%s\" for \"helm\" (the sandbox's helm implements %s)"
              % (positional[0], ", ".join(sorted(COMMANDS))), file=sys.stderr)
        return 1
    try:
        command(flags, positional[1:])
    except HelmError as err:
        print("Error: %s" % err, file=sys.stderr)
        return 1
    except requests.RequestException as err:
        print("Error: Kubernetes cluster unreachable: %s" % _short(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
