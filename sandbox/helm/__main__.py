"""The sandbox's `helm`: a thin command-line front over real Helm (v4, the Go library through helm-sdkpy).

`kubernetes.core.helm` calls this as it calls the helm CLI. Rendering, the values schema check, dependencies, hooks,
release Secrets and history are Helm's own; this front only parses the CLI's arguments, serves the two Prefect charts
of the pinned repository and version from their published sources (`../shared/charts`, or `SKYFORGE_CHARTS_DIR`)
instead of downloading them, and refuses a kubeconfig that is not a sandbox cluster, so nothing but loopback is dialled.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import shutil
import sys
import tempfile

import yaml

REPO_URL = "https://prefecthq.github.io/prefect-helm"
CHART_VERSION = "2026.8.18172642"  # the prefect-helm tag ../shared/charts was taken from
APP_VERSION = "3.8.8"  # the Prefect version that tag's release pipeline writes into Chart.yaml
CHARTS = ("prefect-server", "prefect-worker")
HELM_VERSION = "v4.3.0"  # the helm.sh/helm/v4 module helm-sdkpy 0.1.32's library is built from


class HelmError(Exception):
    pass


def _root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def specs_dir():
    return os.environ.get("SKYFORGE_SPECS_DIR") or os.path.join(_root(), "..", "shared", "specs")


def charts_dir():
    return os.environ.get("SKYFORGE_CHARTS_DIR") or os.path.join(os.path.dirname(os.path.abspath(specs_dir())),
                                                                 "charts")


# ---- arguments ------------------------------------------------------------------------------
BOOL_FLAGS = {"-i", "--install", "--reset-values", "--reuse-values", "--reset-then-reuse-values", "--wait", "--atomic",
              "--force", "--replace", "--no-hooks", "--create-namespace", "--skip-crds", "--keep-history", "-a",
              "--all", "--insecure-skip-tls-verify", "--plain-http", "--skip-schema-validation", "--take-ownership",
              "--short", "--dependency-update", "--wait-for-jobs", "--cleanup-on-fail", "--rollback-on-failure",
              "--server-side", "--force-conflicts", "--dry-run"}


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
    for number, unit in re.findall(r"([\d.]+)(h|ms|m|s)", text or "5m0s"):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return max(1, int(round(total))) if total else 300


def merge(base, override):
    """helm's merge of several -f files: maps merge, anything else replaces."""
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---- the cluster ----------------------------------------------------------------------------
def kubeconfig(flags):
    """The kubeconfig path and context, after checking it reaches a sandbox cluster (through the loopback bastion)."""
    path = flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh) or {}
    except OSError as err:
        raise HelmError("Kubernetes cluster unreachable: %s" % err)
    context = flags.get("kube-context") or os.environ.get("HELM_KUBECONTEXT") or config.get("current-context")
    ctx = _named(config, "contexts", context, "context")
    cluster = _named(config, "clusters", ctx.get("cluster"), "cluster")
    proxy = cluster.get("proxy-url") or ""
    if not re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost)(:\d+)?/?$", proxy) and \
            not re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost)(:\d+)?/?$", cluster.get("server", "")):
        # Only loopback may be dialled here: a cluster endpoint is reached through the sandbox's bastion.
        raise HelmError("Kubernetes cluster unreachable: %s is not a sandbox cluster (its kubeconfig has no "
                        "sandbox proxy-url); write the kubeconfig with gcp_gke_kubeconfig" % cluster.get("server"))
    namespace = flags.get("namespace") or flags.get("n") or os.environ.get("HELM_NAMESPACE") or \
        ctx.get("namespace") or "default"
    return os.path.abspath(path), context, namespace


def _named(config, section, name, key):
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry.get(key) or {}
    raise HelmError("Kubernetes cluster unreachable: context/cluster/user %r not found in kubeconfig" % name)


def helm_config(flags):
    import helm_sdkpy

    path, context, namespace = kubeconfig(flags)
    try:
        return helm_sdkpy.Configuration(namespace=namespace, kubeconfig=path, kubecontext=context), namespace
    except helm_sdkpy.HelmError as err:
        raise HelmError("Kubernetes cluster unreachable: %s" % err)


def run(coro):
    return asyncio.run(coro)


# ---- charts ---------------------------------------------------------------------------------
def chart_name(flags, ref):
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
    version = (flags.get("version") or "").lstrip("v")
    if version and version != CHART_VERSION:
        raise HelmError("chart \"%s\" version \"%s\" not found in %s repository" % (name, flags["version"], REPO_URL))
    return name


def fetch_chart(name, workdir):
    """The chart as the repository serves it: the published sources with the version the release pipeline stamps."""
    source = os.path.join(charts_dir(), name)
    if not os.path.isfile(os.path.join(source, "Chart.yaml")):
        raise HelmError("chart %s: its sources are not at %s; set SKYFORGE_CHARTS_DIR (default: beside "
                        "SKYFORGE_SPECS_DIR)" % (name, source))
    target = os.path.join(workdir, name)
    shutil.copytree(source, target)
    with open(os.path.join(target, "Chart.yaml")) as fh:
        meta = yaml.safe_load(fh)
    meta["version"], meta["appVersion"] = CHART_VERSION, APP_VERSION
    with open(os.path.join(target, "Chart.yaml"), "w") as fh:
        yaml.safe_dump(meta, fh, sort_keys=False)
    return target


def stamp(value):
    if not value:
        return ""
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S.%f %z UTC").replace("+0000", "+0000")


def _info(rel):
    return rel.get("info") or {}


def _chart_meta(rel):
    chart = rel.get("chart") or {}
    return chart.get("metadata") or chart


def row(rel):
    meta = _chart_meta(rel)
    chart = "%s-%s" % (meta.get("name", ""), meta.get("version", "")) if meta.get("name") else rel.get("chart", "")
    return {"name": rel.get("name"), "namespace": rel.get("namespace"),
            "revision": str(rel.get("version", rel.get("revision", ""))),
            "updated": stamp(_info(rel).get("last_deployed") or rel.get("updated")),
            "status": _info(rel).get("status") or rel.get("status"), "chart": chart,
            "app_version": meta.get("appVersion", rel.get("app_version", ""))}


# ---- commands -------------------------------------------------------------------------------
def cmd_version(flags, args):
    version = HELM_VERSION
    if flags.get("short"):
        print(version)
    else:
        print('version.BuildInfo{Version:"%s", GitCommit:"", GitTreeState:"", GoVersion:"", KubeClientVersion:""}'
              % version)


def cmd_plugin(flags, args):
    if args[:1] == ["list"]:
        print("NAME\tVERSION\tTYPE\tAPIVERSION\tPROVENANCE\tSOURCE")
        return
    raise HelmError("plugins cannot be installed in the sandbox (nothing but loopback is reachable)")


def cmd_show(flags, args):
    if len(args) < 2 or args[0] not in ("chart", "values"):
        raise HelmError("the sandbox's helm front implements 'show chart|values CHART'")
    name = chart_name(flags, args[1])
    with tempfile.TemporaryDirectory() as tmp:
        path = fetch_chart(name, tmp)
        with open(os.path.join(path, "Chart.yaml" if args[0] == "chart" else "values.yaml")) as fh:
            print(fh.read(), end="")


def cmd_list(flags, args):
    import helm_sdkpy

    config, namespace = helm_config(flags)
    releases = run(helm_sdkpy.List(config).run(all=bool(flags.get("all") or flags.get("a")))) or []
    pattern = re.compile(flags["filter"]) if flags.get("filter") else None
    rows = [row(r) for r in releases if not pattern or pattern.search(r.get("name", ""))]
    rows = [r for r in rows if r["namespace"] == namespace or flags.get("all-namespaces") or flags.get("A")]
    if flags.get("output") in ("yaml", "json"):
        print(yaml.safe_dump(rows) if flags["output"] == "yaml" else json.dumps(rows), end="")
        return
    print("NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION")
    for r in rows:
        print("\t".join(str(r[k]) for k in ("name", "namespace", "revision", "updated", "status", "chart",
                                             "app_version")))


def cmd_get(flags, args):
    import helm_sdkpy

    if len(args) < 2 or args[0] not in ("values", "manifest", "notes", "hooks", "all"):
        raise HelmError("the sandbox's helm front implements 'get values|manifest|notes|hooks|all NAME'")
    config, _ns = helm_config(flags)
    if args[0] == "values":
        values = run(helm_sdkpy.GetValues(config).run(args[1], all=bool(flags.get("all") or flags.get("a"))))
        values = values or None
        print(yaml.safe_dump(values) if flags.get("output") == "yaml" else json.dumps(values), end="")
        return
    status = run(helm_sdkpy.Status(config).run(args[1]))
    if args[0] == "manifest":
        print(status.get("manifest", ""), end="")
    elif args[0] == "notes":
        print(_info(status).get("notes", ""), end="")
    elif args[0] == "hooks":
        for hook in status.get("hooks") or []:
            print("---\n# Source: %s\n%s" % (hook.get("path"), hook.get("manifest")))
    else:
        print(json.dumps(status, indent=2, default=str))


def cmd_status(flags, args):
    import helm_sdkpy

    if len(args) != 1:
        raise HelmError("\"helm status\" requires 1 argument: RELEASE_NAME")
    config, _ns = helm_config(flags)
    status = run(helm_sdkpy.Status(config).run(args[0]))
    if flags.get("output") in ("json", "yaml"):
        print(json.dumps(status, default=str) if flags["output"] == "json" else yaml.safe_dump(status), end="")
        return
    r = row(status)
    print("NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: %s\nREVISION: %s\nDESCRIPTION: %s"
          % (r["name"], r["updated"], r["namespace"], r["status"], r["revision"], _info(status).get("description")))


def cmd_history(flags, args):
    import helm_sdkpy

    if len(args) != 1:
        raise HelmError("\"helm history\" requires 1 argument: RELEASE_NAME")
    config, _ns = helm_config(flags)
    revisions = run(helm_sdkpy.History(config).run(args[0])) or []
    rows = []
    for rel in sorted(revisions, key=lambda r: r.get("version", r.get("revision", 0))):
        r = row(rel)
        rows.append({"revision": int(r["revision"]), "updated": r["updated"], "status": r["status"],
                     "chart": r["chart"], "app_version": r["app_version"],
                     "description": _info(rel).get("description", rel.get("description", ""))})
    if flags.get("max"):
        rows = rows[-int(flags["max"]):]
    if flags.get("output") in ("yaml", "json"):
        print(yaml.safe_dump(rows) if flags["output"] == "yaml" else json.dumps(rows), end="")
        return
    print("REVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION\tDESCRIPTION")
    for r in rows:
        print("\t".join(str(r[k]) for k in ("revision", "updated", "status", "chart", "app_version", "description")))


def read_values(flags):
    values = {}
    for path in flags.get("values", []):
        with open(path) as fh:
            values = merge(values, yaml.safe_load(fh) or {})
    if flags.get("set") or flags.get("set-string") or flags.get("set-json") or flags.get("set-file"):
        # Values reach the chart as data: --set is text that helm re-types (a tag 3.10 would become a number).
        raise HelmError("the sandbox's helm front takes values as files (-f) only; pass release_values instead")
    return values


def cmd_upgrade(flags, args, install_only=False):
    import helm_sdkpy

    if len(args) != 2:
        raise HelmError("\"helm %s\" requires 2 arguments: RELEASE CHART" % ("install" if install_only else "upgrade"))
    name, ref = args
    chart = chart_name(flags, ref)
    config, namespace = helm_config(flags)
    values = read_values(flags)
    wait = bool(flags.get("wait") or flags.get("atomic") or flags.get("rollback-on-failure"))
    common = {"wait": wait, "timeout": duration(flags.get("timeout")),
              "wait_for_jobs": bool(flags.get("wait-for-jobs")), "create_namespace": bool(flags.get("create-namespace")),
              "skip_schema_validation": bool(flags.get("skip-schema-validation")),
              "rollback_on_failure": bool(flags.get("atomic") or flags.get("rollback-on-failure")),
              "take_ownership": bool(flags.get("take-ownership")), "force_conflicts": bool(flags.get("force-conflicts"))}
    if flags.get("server-side") is not None:
        common["server_side_apply"] = bool(flags["server-side"])
    with tempfile.TemporaryDirectory() as tmp:
        path = fetch_chart(chart, tmp)
        if install_only:
            verb = "INSTALLATION"
            try:
                result = run(helm_sdkpy.Install(config).run(name, path, values=values, version=CHART_VERSION,
                                                            **common))
            except helm_sdkpy.HelmError as err:
                raise HelmError("INSTALLATION FAILED: %s" % _strip(err))
        else:
            verb = "UPGRADE"
            opts = dict(common, install=bool(flags.get("install") or flags.get("i")),
                        reset_values=bool(flags.get("reset-values")), reuse_values=bool(flags.get("reuse-values")),
                        cleanup_on_fail=bool(flags.get("cleanup-on-fail")))
            if flags.get("history-max"):
                opts["max_history"] = int(flags["history-max"])
            try:
                result = run(helm_sdkpy.Upgrade(config).run(name, path, values=values, version=CHART_VERSION, **opts))
            except helm_sdkpy.ReleaseNotFoundError:
                raise HelmError("UPGRADE FAILED: \"%s\" has no deployed releases" % name)
            except helm_sdkpy.HelmError as err:
                if str(err).startswith("install failed"):
                    verb = "INSTALLATION"
                raise HelmError("%s FAILED: %s" % (verb, _strip(err)))
    r = row(result or {})
    if r["revision"] in ("1", "") or verb == "INSTALLATION":
        print("NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: %s\nREVISION: %s"
              % (name, r["updated"], namespace, r["status"] or "deployed", r["revision"] or "1"))
    else:
        print("Release \"%s\" has been upgraded. Happy Helming!\nNAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\n"
              "STATUS: %s\nREVISION: %s" % (name, name, r["updated"], namespace, r["status"], r["revision"]))


def _strip(err):
    """helm-sdkpy says 'install failed: ...'/'upgrade failed: ...' where the CLI says INSTALLATION/UPGRADE FAILED."""
    message = str(err)
    for prefix in ("upgrade failed: ", "install failed: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def cmd_uninstall(flags, args):
    import helm_sdkpy

    config, _ns = helm_config(flags)
    if flags.get("keep-history"):
        raise HelmError("the sandbox's helm front cannot keep history on uninstall (helm-sdkpy purges)")
    for name in args:
        try:
            run(helm_sdkpy.Uninstall(config).run(name, wait=bool(flags.get("wait")),
                                                 timeout=duration(flags.get("timeout"))))
        except helm_sdkpy.ReleaseNotFoundError:
            if flags.get("ignore-not-found"):
                continue
            raise HelmError("uninstall: Release not loaded: %s: release: not found" % name)
        except helm_sdkpy.HelmError as err:
            raise HelmError("uninstallation completed with 1 error(s): %s" % err)
        print("release \"%s\" uninstalled" % name)


def cmd_rollback(flags, args):
    import helm_sdkpy

    if not args:
        raise HelmError("\"helm rollback\" requires at least 1 argument: RELEASE [REVISION]")
    config, _ns = helm_config(flags)
    try:
        run(helm_sdkpy.Rollback(config).run(args[0], int(args[1]) if len(args) > 1 else 0))
    except helm_sdkpy.HelmError as err:
        raise HelmError(str(err))
    print("Rollback was a success! Happy Helming!")


def cmd_repo(flags, args):
    # The pinned repository is served from the chart sources; nothing is downloaded.
    if args[:1] in (["add"], ["update"], ["list"]):
        if args[:1] == ["add"] and len(args) >= 3 and args[2].rstrip("/") != REPO_URL:
            raise HelmError("looks like \"%s\" is not a valid chart repository or cannot be reached" % args[2])
        print("...Successfully got an update from the \"prefect\" chart repository" if args[0] != "list"
              else "NAME\tURL\nprefect\t%s" % REPO_URL)
        return
    raise HelmError("the sandbox's helm front implements 'repo add|update|list' only")


def cmd_dependency(flags, args):
    # The charts' dependencies are vendored in their sources; Helm's loader checks them on install.
    print("Hang tight while we grab the latest from your chart repositories...\nUpdate Complete.")


COMMANDS = {"version": cmd_version, "plugin": cmd_plugin, "show": cmd_show, "inspect": cmd_show, "list": cmd_list,
            "ls": cmd_list, "get": cmd_get, "status": cmd_status, "history": cmd_history, "hist": cmd_history,
            "upgrade": cmd_upgrade, "install": lambda f, a: cmd_upgrade(f, a, True), "uninstall": cmd_uninstall,
            "delete": cmd_uninstall, "rollback": cmd_rollback, "repo": cmd_repo, "dependency": cmd_dependency,
            "dep": cmd_dependency}


def watch_the_run(levels=4):
    """End with the run that called us: kubernetes.core.helm's module, its shell, the worker and ansible-playbook.

    A SIGKILLed ansible-playbook runs no cleanup, and `upgrade --wait` would otherwise go on for its whole timeout
    with the helm module waiting on it. The watch is the collection's own (`die_with_parent`), loaded from its file
    because the sandbox does not import the collection as a package.
    """
    import importlib.util

    path = os.path.join(_root(), "plugins", "module_utils", "process.py")
    spec = importlib.util.spec_from_file_location("_skyforge_process", path)
    process = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(process)
    return process.die_with_parent(levels=levels)


def main(argv):
    flags, positional = parse(argv)
    watch_the_run()
    if not positional:
        print("usage: helm COMMAND (the sandbox's front over Helm: %s)" % ", ".join(sorted(COMMANDS)), file=sys.stderr)
        return 1
    command = COMMANDS.get(positional[0])
    if command is None:
        print("Error: unknown command \"%s\" for \"helm\" (the sandbox's front implements %s)"
              % (positional[0], ", ".join(sorted(COMMANDS))), file=sys.stderr)
        return 1
    try:
        command(flags, positional[1:])
    except HelmError as err:
        print("Error: %s" % err, file=sys.stderr)
        return 1
    except ImportError as err:
        print("Error: helm-sdkpy is not installed (%s); run scripts/bootstrap.sh" % err, file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - helm-sdkpy's errors for actions this front does not wrap
        print("Error: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
