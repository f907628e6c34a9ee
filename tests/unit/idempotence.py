"""Idempotence, checked one way everywhere: a module's check -> real -> again (GCP, Cloudflare, HCP Terraform module
tests), and a playbook's recap and changed tasks (the role and whole-site tests, whose second run must change nothing).
"""

import re

RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def converge(module_runner, name, args, sandbox=None, writes=None):
    """Run module `name` in check mode, for real, then again; return (check, real, again).

    Check mode predicts a change, the real run makes it, the second run changes nothing. With `sandbox` and
    `writes` (a function of the sandbox and a request-log position, returning the writes made since), check mode
    must also have written nothing.
    """
    mark = sandbox.log.mark() if sandbox is not None else None
    check = module_runner(name, args, check=True)
    assert check["changed"] is True, "check mode must predict the change: %r" % check.get("changes")
    if writes is not None:
        assert not writes(sandbox, mark), "check mode predicts and writes nothing"
    real = module_runner(name, args)
    again = module_runner(name, args)
    assert real["changed"] is True, "a new or changed resource reports changed"
    assert again["changed"] is False, "the second run must change nothing: %r" % again.get("changes")
    return check, real, again


def recap(output):
    """(ok, changed, failed) from an ansible-playbook run's recap, or None when the run never reached it."""
    m = RECAP.search(output)
    return (int(m.group(1)), int(m.group(2)), int(m.group(4))) if m else None


def changed_tasks(output):
    """The tasks that reported a change, with what they printed: what a failed idempotence check should show first."""
    out = []
    task = None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.rstrip("* ")
        elif line.startswith("changed:") and task:
            out.append("%s\n  %s" % (task, line[:300]))
    return "\n".join(out)
