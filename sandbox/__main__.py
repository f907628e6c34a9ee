"""python -m sandbox up|down|status|serve|endpoints|summary|env|logs [execution]"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from .core import Config, Sandbox


def _pid_file(cfg):
    return os.path.join(cfg.state_dir, "sandbox.pid")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _read_pid(cfg):
    try:
        with open(_pid_file(cfg)) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _healthy(cfg):
    try:
        with open(os.path.join(cfg.state_dir, "endpoints.json")) as fh:
            url = json.load(fh)["gcp_url"]
        with urllib.request.urlopen(url + "/_sandbox/health", timeout=2) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001
        return False


def _private_log(path):
    """Open (append) a log only its owner can read: the sandbox's children write whatever they print there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


SECRET_KEY_PARTS = ("token", "secret", "password", "key")


def scrubbed(endpoints):
    """The endpoints with every credential replaced: what a log may show."""
    return {k: ("<redacted: see endpoints.json>" if any(p in k.lower() for p in SECRET_KEY_PARTS) and v else v)
            for k, v in endpoints.items()}


def up(cfg, args):
    pid = _read_pid(cfg)
    if pid and _alive(pid) and _healthy(cfg):
        print("sandbox already up (pid %d); endpoints: %s" % (pid, os.path.join(cfg.state_dir, "endpoints.json")))
        return 0
    _reap(cfg)  # leftovers of a sandbox that was killed hold ports and data dirs
    if args.fresh and os.path.isdir(cfg.state_dir):
        import shutil

        # A fresh sandbox forgets everything, PostgreSQL data included.
        pg_dirs = [os.path.join(cfg.state_dir, "pg")]
        if os.geteuid() == 0:
            from .postgres import Postgres

            pg_dirs.append(os.path.dirname(Postgres(cfg.state_dir, 0).data_dir))
        for path in pg_dirs + [cfg.state_dir]:
            shutil.rmtree(path, ignore_errors=True)
    os.makedirs(cfg.state_dir, exist_ok=True)
    try:
        os.unlink(os.path.join(cfg.state_dir, "endpoints.json"))
    except OSError:
        pass
    log = _private_log(os.path.join(cfg.state_dir, "sandbox.log"))
    env = dict(os.environ, SKYFORGE_SANDBOX_DIR=cfg.state_dir, SKYFORGE_SANDBOX_PORT_BASE=str(cfg.port_base),
               SKYFORGE_SANDBOX_TIME_SCALE=str(cfg.time_scale), SKYFORGE_SPECS_DIR=cfg.specs_dir)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve"], cwd=cfg.repo_root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    while time.monotonic() - started < args.timeout:
        if proc.poll() is not None:
            print("sandbox failed to start; see %s" % os.path.join(cfg.state_dir, "sandbox.log"), file=sys.stderr)
            return 1
        if _healthy(cfg):
            print("sandbox up in %.1fs (pid %d); endpoints: %s" % (
                time.monotonic() - started, proc.pid, os.path.join(cfg.state_dir, "endpoints.json")))
            return 0
        time.sleep(0.2)
    print("sandbox did not become healthy within %ds; see sandbox.log" % args.timeout, file=sys.stderr)
    os.killpg(proc.pid, signal.SIGTERM)
    return 1


def _reap(cfg):
    """Stop what a sandbox left recorded (pods, PostgreSQL): all of it after a SIGKILL, stragglers otherwise."""
    from . import procs

    left = procs.reap(cfg.state_dir)
    if left:
        print("stopped %d process(es) the sandbox had started: %s" % (
            len(left), ", ".join(sorted(set(e["what"].split(" ")[0] for e in left)))))


def down(cfg, args):
    pid = _read_pid(cfg)
    if not pid or not _alive(pid):
        _reap(cfg)
        print("sandbox is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        # Everything the sandbox started runs in its session: leave nothing behind.
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    _reap(cfg)
    try:
        os.unlink(_pid_file(cfg))
    except OSError:
        pass
    print("sandbox down")
    return 0


def serve(cfg, args):
    sandbox = Sandbox(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sandbox.start()
    with open(_pid_file(cfg), "w") as fh:
        fh.write(str(os.getpid()))
    print("sandbox serving: %s" % json.dumps(scrubbed(sandbox.endpoints())), flush=True)
    stop.wait()
    sandbox.stop()
    return 0


def status(cfg, args):
    pid = _read_pid(cfg)
    ok = bool(pid and _alive(pid) and _healthy(cfg))
    print("up" if ok else "down")
    return 0 if ok else 3


def summary(cfg, args):
    """What the site created, as the sandbox's control planes see it."""
    with open(os.path.join(cfg.state_dir, "endpoints.json")) as fh:
        ep = json.load(fh)
    with urllib.request.urlopen(ep["gcp_url"] + "/_sandbox/inventory", timeout=5) as resp:
        inventory = json.load(resp)
    summary_url = ep["gcp_url"] + "/_sandbox/summary"
    try:
        with urllib.request.urlopen(summary_url, timeout=5) as resp:
            extra = json.load(resp)
    except Exception:  # noqa: BLE001 - older sandboxes have no summary endpoint
        extra = {}
    for key, value in sorted(extra.items()):
        print("%-22s %s" % (key + ":", value))
    print("created resources:")
    for table, keys in sorted(inventory.items()):
        print("  %s (%d)" % (table, len(keys)))
        for key in keys:
            print("    - %s" % key)
    return 0


def env(cfg, args):
    """The exports that let a shell or process (gcloud, google-cloud-*, prefect-gcp) reach the sandbox's googleapis."""
    import shlex
    import urllib.parse

    with open(os.path.join(cfg.state_dir, "endpoints.json")) as fh:
        ep = json.load(fh)
    query = {k: v for k, v in (("namespace", args.namespace), ("service_account", args.service_account),
                               ("cluster", args.cluster)) if v}
    url = ep["gcp_url"] + "/_sandbox/env" + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=5) as resp:
        values = json.load(resp)
    for key, value in sorted(values.items()):
        print("export %s=%s" % (key, shlex.quote(value)))
    return 0


def logs(cfg, args):
    """Cloud Run executions' output: the list of executions, or one execution's log (by id, name or job id)."""
    from .gcp.run_executions import logs_dir

    folder = logs_dir(cfg.state_dir)
    files = sorted((f for f in os.listdir(folder) if f.endswith(".log")) if os.path.isdir(folder) else [],
                   key=lambda f: os.path.getmtime(os.path.join(folder, f)))
    if not args.execution:
        if not files:
            print("no Cloud Run executions have run in %s" % cfg.state_dir)
            return 0
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                last = ([line for line in fh if " execution | EXECUTION_" in line] or ["(running)"])[-1]
            print("%-40s %s" % (name[:-4], last.split(" | ", 1)[-1].strip()[:200]))
        return 0
    wanted = args.execution.rsplit("/", 1)[-1]
    matches = [f for f in files if f[:-4] == wanted] or [f for f in files if f[:-4].rsplit("-", 1)[0] == wanted]
    if not matches:
        print("no log for execution %r in %s; `python -m sandbox logs` lists them" % (args.execution, folder),
              file=sys.stderr)
        return 1
    with open(os.path.join(folder, matches[-1]), encoding="utf-8") as fh:
        sys.stdout.write(fh.read())
    return 0


def access_login(cfg, args):
    """An SSO login at the edge of a host, as a person of an IdP's groups: prints the Access JWT (CF_Authorization)."""
    with open(os.path.join(cfg.state_dir, "endpoints.json")) as fh:
        ep = json.load(fh)
    if not (args.execution and args.idp and args.email):
        print("usage: python -m sandbox access-login <host> --idp <provider> --email <address> [--group G ...]",
              file=sys.stderr)
        return 2
    base = ep["cloudflare_base_url"].rsplit("/client/v4", 1)[0]
    with urllib.request.urlopen(base + "/_sandbox/edge", timeout=5) as resp:
        edge = json.load(resp).get(args.execution.lower().rstrip("."))
    if not edge:
        print("no edge serves %s: it needs a proxied A record" % args.execution, file=sys.stderr)
        return 1
    body = {"identity_provider": args.idp, "email": args.email, "groups": args.group or [],
            "redirect_url": args.path or "/"}
    req = urllib.request.Request(edge + "/cdn-cgi/access/login", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            print(json.load(resp)["token"])
            return 0
    except urllib.error.HTTPError as err:
        print("login refused (%d): %s" % (err.code, json.load(err).get("reason")), file=sys.stderr)
        return 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "serve", "endpoints", "summary", "env", "logs",
                                            "access-login"])
    parser.add_argument("execution", nargs="?", help="with logs: an execution id or name, or a job id (its latest); "
                        "with access-login: the host")
    parser.add_argument("--idp", help="with access-login: the identity provider's name or id")
    parser.add_argument("--email", help="with access-login: the person's email")
    parser.add_argument("--group", action="append", help="with access-login: an IdP group of the person (repeat)")
    parser.add_argument("--path", help="with access-login: the path of the application (default /)")
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--fresh", action="store_true", help="with up: forget all state from an earlier run")
    parser.add_argument("--namespace", help="with env: a pod's namespace (Workload Identity through a metadata server)")
    parser.add_argument("--service-account", help="with env: the pod's Kubernetes service account")
    parser.add_argument("--cluster", help="with env: the container cluster key the pod runs in")
    args = parser.parse_args(argv)
    cfg = Config()
    if args.command == "endpoints":
        with open(os.path.join(cfg.state_dir, "endpoints.json")) as fh:
            print(fh.read())
        return 0
    return {"up": up, "down": down, "serve": serve, "status": status, "summary": summary,
            "env": env, "logs": logs, "access-login": access_login}[args.command](cfg, args)


if __name__ == "__main__":
    sys.exit(main())
