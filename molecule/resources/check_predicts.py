"""Run a playbook in check mode, then for real, and fail unless check mode predicted exactly the tasks that changed.

    python check_predicts.py <playbook> <inventory> [ansible-playbook args...]

Both runs use the json callback; the comparison is on (play, task, item) of every changed result.
"""

import json
import os
import subprocess
import sys


def changed_tasks(args):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    proc = subprocess.run(["ansible-playbook"] + args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
        raise SystemExit("ansible-playbook %s failed (rc=%d)" % (" ".join(args), proc.returncode))
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    out = set()
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                items = res.get("results") if isinstance(res.get("results"), list) else [res]
                for item in items:
                    if item.get("changed"):
                        out.add((play["play"]["name"], task["task"]["name"], json.dumps(item.get("item"), sort_keys=True)))
    return out


def main(argv):
    playbook, inventory, extra = argv[0], argv[1], argv[2:]
    base = [playbook, "-i", inventory] + extra
    predicted = changed_tasks(base + ["--check", "--diff"])
    real = changed_tasks(base + ["--diff"])
    print("check mode predicted %d changed task results; the real run changed %d" % (len(predicted), len(real)))
    if predicted != real:
        for row in sorted(predicted - real):
            print("predicted but did not change: %s / %s %s" % row)
        for row in sorted(real - predicted):
            print("changed but not predicted: %s / %s %s" % row)
        return 1
    if not real:
        print("nothing changed: the side effect did not exercise anything")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
