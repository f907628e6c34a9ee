"""Benchmarks 1 and 2: full converge against the critical path, and the cost of a no-op re-run.

    .venv/bin/python bench/converge.py --scale 0.05 [--inventory inventories/sandbox] [--smoke]

Starts a fresh sandbox with the given time scale, runs site.yml, and reports:
  - wall time / critical path (goal <= 1.15) and the operations that waited in series;
  - a second run: changed count, wall time, API requests per managed resource (goal <= 1 read, 0 writes).
`--smoke` runs only the arithmetic on the sandbox's own timeline of a tiny converge, so CI can keep it from rotting.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import critical_path as cp  # noqa: E402
from benchenv import ansible_env, in_venv  # noqa: E402

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Google's read methods that travel as POST (custom verbs on a resource).
READ_VERBS = (":getIamPolicy", ":testIamPermissions")


def is_write(req):
    path = req["path"].split("?", 1)[0]
    return req["method"] in WRITE_METHODS and not path.endswith(READ_VERBS)


def shape(req):
    """A request's path with its names folded, so the breakdown groups one kind of call."""
    path = req["path"].split("?", 1)[0]
    path = re.sub(r"/[0-9a-f]{32}(?=/|$)", "/{id}", path)
    path = re.sub(r"/(ws|var|run|apool|sv|agent)-[A-Za-z0-9]+", r"/\1-{id}", path)
    return "%s %s %s" % (req["family"], req["method"], path)


def sandbox(cmd, env):
    subprocess.run([env.get("VIRTUAL_ENV", sys.prefix) + "/bin/python", "-m", "sandbox"] + cmd, cwd=ROOT, env=env, check=True)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def with_profile_tasks(env, cwd):
    """`env` adding profile_tasks to the callbacks the run's own ansible.cfg enables (its change_ledger among them):
    the environment variable replaces that list, it does not extend it."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(env.get("ANSIBLE_CONFIG") or os.path.join(cwd, "ansible.cfg"))
    enabled = [c.strip() for c in config.get("defaults", "callbacks_enabled", fallback="").split(",") if c.strip()]
    return dict(env, ANSIBLE_CALLBACKS_ENABLED=",".join(enabled + ["ansible.posix.profile_tasks"]))


def playbook(args, env, playbook="site.yml", log_name=None, cwd=ROOT):
    if args.log_dir:
        env = with_profile_tasks(env, cwd)
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", playbook, "-i", args.inventory] + args.extra, cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if args.log_dir and log_name:
        os.makedirs(args.log_dir, exist_ok=True)
        with open(os.path.join(args.log_dir, log_name), "w") as fh:
            fh.write(proc.stdout)
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", proc.stdout)
    if proc.returncode or not recap:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("ansible-playbook failed (rc=%d)" % proc.returncode)
    return wall, int(recap.group(2))


def noop(args, env, ep, log_name, cwd=ROOT):
    """A second run of the converged site: its wall time, changed count, API requests, writes, resources."""
    before = len(get(ep["gcp_url"] + "/_sandbox/requests"))
    wall2, changed2 = playbook(args, env, args.playbook, log_name, cwd=cwd)
    requests = get(ep["gcp_url"] + "/_sandbox/requests")[before:]
    # The token exchange is auth, and CONNECT opens the bastion tunnel the kube requests then travel in.
    api = [r for r in requests
           if not r["path"].startswith("/_sandbox") and r["path"] != "/token" and r["method"] != "CONNECT"]
    writes = [r for r in api if is_write(r)]
    resources = sum(len(v) for v in get(ep["gcp_url"] + "/_sandbox/inventory").values())
    print("no-op re-run: wall %.1fs, changed=%d, %d API requests for %d resources (%.2f per resource), %d writes" % (
        wall2, changed2, len(api), resources, len(api) / max(1, resources), len(writes)))
    counts = {}
    for r in api:
        counts[shape(r)] = counts.get(shape(r), 0) + 1
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print("  %3d  %s%s" % (n, key, "  (write)" if any(is_write(r) and shape(r) == key for r in api) else ""))
    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump({"requests": api, "inventory": get(ep["gcp_url"] + "/_sandbox/inventory")}, fh, indent=1)
    if args.log_dir:
        print(task_breakdown(os.path.join(args.log_dir, log_name)))
    return wall2, changed2, api, writes, resources


def baseline_tree(ref):
    """`git archive REF` unpacked under .cache/ (git-ignored), with the collection link Ansible finds it by: the code
    to compare against, run on the same sandbox as this tree. No worktree, so the main repo's metadata is untouched."""
    tree = os.path.join(ROOT, ".cache", "baseline-" + re.sub(r"[^A-Za-z0-9_.-]", "_", ref))
    if os.path.isdir(tree):
        subprocess.run(["rm", "-rf", tree], check=True)
    os.makedirs(tree)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True).stdout
    print("baseline: %s at %s, unpacked in %s" % (ref, commit.strip(), tree))
    return tree


def tree_env(env, tree):
    """`env` with Ansible finding the collection, its roles and its ansible.cfg in `tree` instead of this repo."""
    link_dir = os.path.join(tree, ".cache", "collections", "ansible_collections", "skyforge")
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "prefect_platform")
    if not os.path.islink(link):
        os.symlink(os.path.abspath(tree), link)
    paths = env["ANSIBLE_COLLECTIONS_PATH"].split(":")
    return dict(env, ANSIBLE_COLLECTIONS_PATH=":".join([os.path.join(tree, ".cache", "collections")] + paths[1:]),
                ANSIBLE_ROLES_PATH=os.path.join(tree, "roles"), ANSIBLE_CONFIG=os.path.join(tree, "ansible.cfg"))


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def task_durations(text):
    """[(task name, seconds)] from a profile_tasks log: each TASK header's "(H:MM:SS.fff)" is the task before it."""
    blocks = re.findall(r"^TASK \[(.*?)\] \*+\n[^\n]*?\((\d+):(\d+):(\d+\.\d+)\)", text, re.M)
    recap = re.search(r"^TASKS RECAP \*+\n[^\n]*?\((\d+):(\d+):(\d+\.\d+)\)", text, re.M)
    stamps = [(h, m, sec) for _name, h, m, sec in blocks[1:]] + ([recap.groups()] if recap else [])
    return [(blocks[i][0], int(h) * 3600 + int(m) * 60 + float(sec)) for i, (h, m, sec) in enumerate(stamps)]


def task_breakdown(log_path, module_floor=1.0):
    """Where a run's time went: the long tasks (at least `module_floor` s: waits, the smoke run, kubernetes.core's
    module processes) versus the rest (our modules run in a fork of the worker, asserts, set_fact, skipped), and the
    roles that cost most."""
    with open(log_path) as fh:
        rows = task_durations(fh.read())
    slow = [d for _n, d in rows if d >= module_floor]
    lines = ["  tasks: %d in %.1fs; %d of them >= %.1fs took %.1fs, the %d shorter ones %.1fs" % (
        len(rows), sum(d for _n, d in rows), len(slow), module_floor, sum(slow), len(rows) - len(slow),
        sum(d for _n, d in rows) - sum(slow))]
    roles = {}
    for name, seconds in rows:
        role = name.split(" : ")[0] if " : " in name else "(play tasks)"
        count, total = roles.get(role, (0, 0.0))
        roles[role] = (count + 1, total + seconds)
    for role, (count, total) in sorted(roles.items(), key=lambda kv: -kv[1][1]):
        lines.append("    %-55s %3d tasks %7.1fs" % (role, count, total))
    return "\n".join(lines)


def main():
    in_venv()
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--inventory", default="inventories/sandbox")
    parser.add_argument("--playbook", default="site.yml")
    parser.add_argument("--log-dir", help="keep both runs' output here, with each task's start time and duration "
                                          "(profile_tasks), to see which tasks sat between two operations of the path")
    parser.add_argument("--dump", help="write the no-op run's requests and the sandbox inventory to this JSON file")
    parser.add_argument("--baseline-config", help="first run the no-op with ANSIBLE_CONFIG set to this file (an empty "
                                                  "file: Ansible's defaults) and print both runs side by side")
    parser.add_argument("--baseline-ref", help="also run the no-op with the code of this git ref (e.g. main), unpacked "
                                               "with `git archive`, on the same converged sandbox, alternating with "
                                               "this tree's (baseline first), and print both side by side")
    parser.add_argument("--baseline-tree", help="like --baseline-ref, with a checkout already on disk")
    parser.add_argument("--rounds", type=int, default=1, help="no-op runs per side (alternating); medians are printed")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    env = ansible_env(SKYFORGE_SANDBOX_TIME_SCALE=args.scale)
    sandbox(["down"], env)
    sandbox(["up", "--fresh"], env)
    try:
        state_dir = env.get("SKYFORGE_SANDBOX_DIR", os.path.join(ROOT, ".sandbox"))
        with open(os.path.join(state_dir, "endpoints.json")) as fh:
            ep = json.load(fh)
        started = time.time()
        wall, changed = playbook(args, env, args.playbook, "converge.log")
        ended = time.time()
        timeline = get(ep["gcp_url"] + "/_sandbox/timeline")
        seconds, chain = cp.critical_path(timeline)
        print("converge: wall %.1fs, changed=%d, critical path %.1fs, ratio %.2f (goal <= 1.15)" % (
            wall, changed, seconds, wall / seconds if seconds else float("nan")))
        for op in chain:
            print("  critical: %-30s %6.1fs %s" % (op["kind"], op["end"] - op["start"], op.get("resource", "")))
        spent = cp.overhead(chain, started, ended)
        print("  off the path: %.1fs before its first operation (validation, APIs read), %.1fs between its operations, "
              "%.1fs after its last one (verification, smoke flow run)" % (
                  spent["before"], sum(gap[2] for gap in spent["gaps"]), spent["after"]))
        for before, after, gap in spent["gaps"]:
            if gap >= 1.0:
                print("    %5.1fs from %s ending to %s starting" % (gap, before, after))
        for op in cp.serial_waits(timeline, chain):
            print("  serial wait off the critical path: %-30s %6.1fs" % (op["kind"], op["end"] - op["start"]))
        runs = []
        if args.baseline_config:
            # The same no-op with another ansible.cfg first (an empty file: Ansible's defaults), for a side by side.
            runs.append(("baseline (%s)" % args.baseline_config, dict(env, ANSIBLE_CONFIG=args.baseline_config),
                         "noop-baseline", ROOT))
        tree = args.baseline_tree or (baseline_tree(args.baseline_ref) if args.baseline_ref else None)
        if tree:
            runs.append(("baseline (%s)" % (args.baseline_ref or tree), tree_env(env, tree), "noop-baseline",
                         os.path.abspath(tree)))
        runs.append(("this repo (%s)" % (env.get("ANSIBLE_CONFIG") or "ansible.cfg"), env, "noop", ROOT))
        results = []
        for round_no in range(1, args.rounds + 1):
            for label, run_env, log_stem, cwd in runs:
                load = os.getloadavg()[0]
                log_name = "%s%s.log" % (log_stem, "-%d" % round_no if args.rounds > 1 else "")
                print("%s, round %d (load %.1f before):" % (label, round_no, load))
                outcome = noop(args, run_env, ep, log_name, cwd=cwd)
                results.append((label, load, os.getloadavg()[0]) + outcome)
        if len(runs) > 1 or args.rounds > 1:
            print("no-op side by side (same sandbox, same converged site, alternating, %d round(s)):" % args.rounds)
            for label, load0, load1, wall2, changed2, api, writes, resources in results:
                print("  %-40s wall %6.1fs, changed=%d, %d requests (%.2f per resource), %d writes, load %.1f-%.1f" % (
                    label, wall2, changed2, len(api), len(api) / max(1, resources), len(writes), load0, load1))
            for label, _env, _log, _cwd in runs:
                mine = [r for r in results if r[0] == label]
                print("  median %-33s wall %6.1fs over %d run(s), loads %s" % (
                    label, median([r[3] for r in mine]), len(mine),
                    ", ".join("%.1f-%.1f" % (r[1], r[2]) for r in mine)))
    finally:
        sandbox(["down"], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
