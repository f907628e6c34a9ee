"""Shared pieces of the HCP Terraform module tests: arguments that point a module at the sandbox."""

import uuid


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


def converge(module_runner, name, args):
    """check -> real -> again: check predicts a change, real makes it, the second run is a no-op."""
    check = module_runner(name, args, check=True)
    real = module_runner(name, args)
    again = module_runner(name, args)
    assert check["changed"] is True and real["changed"] is True, "a new or changed resource reports changed"
    assert again["changed"] is False, "the second run must change nothing: %r" % again.get("changes")
    return check, real, again


def writes(sandbox, since):
    """Requests that changed something on the tfc port after log position `since`."""
    return [e for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and not e["path"].startswith("/_sandbox")]
