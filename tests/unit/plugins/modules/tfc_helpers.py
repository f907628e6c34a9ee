"""Shared pieces of the HCP Terraform module tests: arguments that point a module at the sandbox."""

import uuid


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


def writes(sandbox, since):
    """Requests that changed something on the tfc port after log position `since`."""
    return [e for e in sandbox.log.entries[since:] if e["family"] == "tfc" and e["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and not e["path"].startswith("/_sandbox")]
