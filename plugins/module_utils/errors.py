# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of every family, the fix table per family, and the one exit of a module.

Clients, runners and waiters raise a SkyforgeError; the module's main() (wrapped by `one_exit`) or the runner's
entry (EnsureMixin.ensure/settle_only) turns it into the module's single fail_json: "what failed: why. Fix: ...".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools


class SkyforgeError(Exception):
    """What failed (msg), what to do about it (fix) and the fields the failed result carries besides msg."""

    def __init__(self, msg, fix=None, **details):
        self.what = msg
        self.fix = fix
        self.details = details
        self.msg = "%s. Fix: %s." % (msg.rstrip("."), fix.rstrip(".")) if fix else msg
        super(SkyforgeError, self).__init__(self.msg)


class InputError(SkyforgeError):
    """The module's arguments (or what they point at) cannot work."""


class ApiError(SkyforgeError):
    """An API answered with an error (status None: it could not be reached). Raised for a status the caller allowed
    too, which it may handle (a 404 on delete, a conflict to read again) or let through to the one exit."""

    def __init__(self, msg, fix=None, family=None, status=None, action=None, resource=None, reason=None, detail=None,
                 attempts=1, **details):
        if status is not None:
            details.setdefault("status", status)
        super(ApiError, self).__init__(msg, fix, **details)
        self.family = family
        self.status = status
        self.action = action
        self.resource = resource
        self.reason = reason
        # What the API said, for a caller that decides on it (the message already holds it).
        self.detail = detail
        # How many times the request was sent: more than once, an earlier attempt may have got through.
        self.attempts = attempts


class ExpectedError(ApiError):
    """An ApiError whose status the caller said it handles (a client's allow=...): a 404 on delete, the 409 of a
    retried create, a stale etag to read again. What the caller does not handle goes on to the one exit."""


class OperationFailed(ApiError):
    """A long-running operation (or a run) that ended in error; `operation` is its last read."""

    def __init__(self, msg, fix=None, operation=None, **kwargs):
        super(OperationFailed, self).__init__(msg, fix, operation=operation, **kwargs)
        self.operation = operation


class WaitTimeout(SkyforgeError):
    """A wait that ran out of time. `last` is the last value read, for a caller that reports it."""

    def __init__(self, msg, fix=None, last=None, timeout=None, **details):
        super(WaitTimeout, self).__init__(msg, fix, **details)
        self.last = last
        self.timeout = timeout


# ---- the fix table: per family, a reason or status -> what to do ------------------------------------------------
# A reason (a string the family's client derives from the error body) wins over the status; "default" is the last
# resort. Texts are str.format templates over the context the client passes (missing names format as "").
FIXES = {
    "gcp": {
        "SERVICE_DISABLED": "enable {service}{where} (skyforge.prefect_platform.gcp_project_services), then retry",
        "PERMISSION_ROLE": "grant the deploying identity {role}{where}, which holds {permission}{inferred} "
                           "(docs/permissions.md lists the roles)",
        "PERMISSION": "grant the deploying identity a role with {permission}{where} (docs/permissions.md lists the "
                      "roles)",
        403: "grant the deploying identity the missing permission{where} (docs/permissions.md lists the roles)",
        401: "the credentials were rejected: check auth_kind, service_account_file or access_token",
        404: "check the name, project and location; create what it depends on first",
        # What the operator sees after a race with another run of the same site: not a naming mistake.
        409: "it already exists or an operation on it is still running, most likely because a concurrent run "
             "created it a moment ago: wait for the other run to finish, then run again (the re-run adopts it)",
        412: "the resource changed while we updated it (stale fingerprint/etag); run again",
        400: "the request was refused as invalid: fix the module arguments named in the message",
        429: "quota or rate limit exhausted after retries; raise the quota or run with fewer forks",
        "RESOURCE_IN_USE": "remove what still uses it (the resource named after 'being used by') first; teardown.yml "
                           "removes the platform's own users before the network, so anything else there was created "
                           "outside it. Then run again",
        "OPERATION": "an operation that fails is usually transient: run the playbook again, it resumes where it "
                     "stopped (if the same operation keeps failing, check the GCP status page and the project's "
                     "quotas)",
        "UNREACHABLE": "check network access to the API endpoint",
        "TOKEN_UNREACHABLE": "retry later; check the OAuth2 endpoint is reachable",
        "default": "retry later; if it persists, check the GCP status page",
    },
    "cloudflare": {
        "PERMISSION": "the API token lacks a permission: add '{permission}' to the token (docs/permissions.md lists "
                      "them all), and check account_id is the account the token belongs to",
        403: "the API token lacks a permission for this call (docs/permissions.md lists them)",
        401: "the API token was rejected: set api_token (or CLOUDFLARE_API_TOKEN) to a current 40-character token",
        404: "check the name or id and account_id; create what it depends on first",
        409: "a resource with the same identity already exists, most likely created a moment ago by a concurrent run "
             "of this site: let the other run finish, then run again (the re-run adopts it)",
        400: "the request was refused as invalid: fix the module arguments named in the message",
        429: "rate limited even after retries; run with fewer forks or retry later",
        "UNREACHABLE": "check network access to {base_url}",
        "default": "retry later; if it persists check https://www.cloudflarestatus.com",
    },
    "tfc": {
        401: "the token was rejected: set token (or TFE_TOKEN) to a valid user or team API token",
        403: "the token lacks permission for this; use a team or user token with access to the organization",
        404: "check the organization, names and IDs (HCP Terraform answers 404 for things the token cannot see)",
        409: "the resource is in a state that does not allow this (for example a run that is not awaiting "
             "confirmation); re-run to pick up the current state",
        422: "fix the module arguments the message names",
        429: "rate limit still exceeded after retries; run with fewer forks or raise retries",
        "UNREACHABLE": "check that {address} is reachable",
        "default": "retry later; if it persists check https://status.hashicorp.com",
    },
    "prefect": {
        401: "set auth_string to the server's server.basicAuth string (user:password)",
        403: "pass access_client_id/access_client_secret of a service token that an Access policy allows. If the "
             "token stored in Secret Manager no longer matches Cloudflare's (its secret was lost or replaced), run "
             "the cloudflare_zero_trust role again with cloudflare_zero_trust_rotate_token=true, which issues and "
             "stores a new one",
        404: "check the name or id; create what it depends on first",
        422: "fix the module arguments the message names",
        "UNREACHABLE": "check api_url and that the server is running",
        "default": "retry later; if it persists check the Prefect server's logs",
    },
}


class _Blank(dict):
    def __missing__(self, key):
        return ""


def fix_for(family, status=None, reason=None, **context):
    """The fix text of the family's table for a reason (first) or a status, filled in from context."""
    table = FIXES[family]
    text = table.get(reason) if reason is not None else None
    if text is None:
        text = table.get(status, table["default"])
    return text.format_map(_Blank(context))


# ---- the one exit -------------------------------------------------------------------------------------------------
class _Exit:
    # The module of this process (one AnsibleModule per module run); set by EnsureMixin when it is created.
    module = None


def register(module):
    _Exit.module = module


def fail(module, err):
    """The module's single fail_json for a SkyforgeError."""
    module.fail_json(msg=err.msg, **err.details)


def one_exit(main):
    """Wrap a module's main(): a SkyforgeError raised anywhere below it ends the module with one fail_json."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SkyforgeError as err:
            if _Exit.module is None:
                raise
            fail(_Exit.module, err)
        return None

    return run
