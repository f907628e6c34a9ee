# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every API family shares: jittered backoff, deadlines, diffs that hide secrets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import random
import time

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import (
    InputError,
    SkyforgeError,
    WaitTimeout,
    fail,
    register,
)

REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
RETRYABLE_STATUS = frozenset([429, 500, 502, 503, 504])


class RetryPolicy:
    """Full-jitter exponential backoff that honours a server's Retry-After."""

    def __init__(self, retries=6, base_delay=0.5, max_delay=30.0, sleep=time.sleep, rand=random.random):
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rand = rand
        self.attempts = 0

    def delay(self, attempt, retry_after=None):
        if retry_after is not None:
            try:
                # Servers ask for at least this long; a little jitter avoids a thundering herd.
                return min(float(retry_after), self.max_delay * 4) + self._rand() * self.base_delay
            except (TypeError, ValueError):
                pass
        cap = min(self.max_delay, self.base_delay * (2 ** attempt))
        return self._rand() * cap

    def call(self, fn, classify):
        """Run fn(); classify(exc) returns (retryable, retry_after_seconds)."""
        attempt = 0
        while True:
            self.attempts += 1
            try:
                return fn()
            except Exception as exc:  # pylint: disable=broad-except
                retryable, retry_after = classify(exc)
                if not retryable or attempt >= self.retries:
                    raise
                self._sleep(self.delay(attempt, retry_after))
                attempt += 1


class Deadline:
    def __init__(self, timeout, clock=time.monotonic):
        self._clock = clock
        self.timeout = timeout
        self.start = clock()

    @property
    def elapsed(self):
        return self._clock() - self.start

    @property
    def expired(self):
        return self.elapsed >= self.timeout

    def remaining(self):
        return max(0.0, self.timeout - self.elapsed)


def poll_after(elapsed, first=0.5, maximum=10.0, share=0.1):
    """Seconds to the next poll of a wait that has run `elapsed` seconds: a growing interval that stays a small share of
    the time waited, so the end of an operation is noticed at most ~10% (and `maximum` seconds) late. An operation on
    the platform's critical path (VPC, peering, Cloud SQL) costs its duration, not its duration plus a long last poll."""
    return min(maximum, max(first, share * elapsed))


_UNREAD = object()


def wait_for(read, done, timeout, what, option="timeout", hint=None, first=0.5, maximum=10.0, initial=_UNREAD,
             clock=time.monotonic, sleep=time.sleep):
    """Call read() until done(value) is true and return that value; the one wait loop of every family.

    Polls are poll_after() apart and never sleep past the deadline. `initial` is a value the caller already read (the
    response that started the wait), so the first poll is not a repeat of it. After `timeout` seconds (None: no limit)
    raises WaitTimeout naming `what` (a string, or a function of the last value) and the option to raise, then `hint`.
    """
    deadline = Deadline(timeout if timeout is not None else float("inf"), clock)
    value = read() if initial is _UNREAD else initial
    while not done(value):
        if deadline.expired:
            label = what(value) if callable(what) else what
            raise WaitTimeout("timed out after %ds waiting for %s" % (timeout, label),
                              "raise %s%s" % (option, "; %s" % hint.rstrip(".") if hint else ""), last=value,
                              timeout=timeout)
        sleep(min(poll_after(deadline.elapsed, first, maximum), max(0.05, deadline.remaining())))
        value = read()
    return value


class Waiter:
    """How one family waits: the timeout and its option's name, and the poll intervals. Every wait of the family
    (an operation, a run, a settling resource) goes through until(), i.e. wait_for()."""

    def __init__(self, timeout, option="timeout", first=0.5, maximum=10.0, clock=time.monotonic, sleep=time.sleep):
        self.timeout = timeout
        self.option = option
        self.first = first
        self.maximum = maximum
        self._clock = clock
        self._sleep = sleep

    def until(self, read, done, what, hint=None, initial=_UNREAD, timeout=None):
        """read() until done(value); WaitTimeout (naming `what` and the option to raise) after the timeout."""
        return wait_for(read, done, self.timeout if timeout is None else timeout, what, option=self.option,
                        hint=hint, first=self.first, maximum=self.maximum, initial=initial, clock=self._clock,
                        sleep=self._sleep)

    def settle(self, read, settling):
        """read() until settling(value) is false or the value is gone (None); the last read, which is still
        settling when the wait timed out (the caller says what that means)."""
        try:
            return self.until(read, lambda value: value is None or not settling(value), "a settling resource")
        except WaitTimeout as exc:
            return exc.last


def strip_none(value):
    if isinstance(value, dict):
        return dict((k, strip_none(v)) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def differs(desired, current, path="", unordered=()):
    """Return the dotted paths where `desired` is not contained in `current`.

    Only keys present in `desired` are compared: fields the server assigns, and fields the user
    did not ask about, never cause a change.  Lists compare in order unless their path is in
    `unordered`.
    """
    changes = []
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return [path or "."]
        for key, value in desired.items():
            sub = "%s.%s" % (path, key) if path else key
            changes.extend(differs(value, current.get(key), sub, unordered))
        return changes
    if isinstance(desired, list):
        if not isinstance(current, list) or len(desired) != len(current):
            return [path or "."]
        if path in unordered:
            remaining = list(current)
            for item in desired:
                match = None
                for idx, cand in enumerate(remaining):
                    if not differs(item, cand, "", ()):
                        match = idx
                        break
                if match is None:
                    return [path]
                remaining.pop(match)
            return changes
        for idx, (d, c) in enumerate(zip(desired, current)):
            changes.extend(differs(d, c, "%s[%d]" % (path, idx), unordered))
        return changes
    if desired != current:
        return [path or "."]
    return changes


def merge(base, overlay):
    """Deep-merge overlay onto a copy of base (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base) if base is not None else {}
    for key, value in (overlay or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def redact(value, secret_keys):
    """Copy of value with every key in secret_keys replaced, at any depth."""
    if isinstance(value, dict):
        return dict(
            (k, REDACTED if k in secret_keys and v is not None else redact(v, secret_keys))
            for k, v in value.items()
        )
    if isinstance(value, list):
        return [redact(v, secret_keys) for v in value]
    return value


def diff_dict(before, after, secret_keys=()):
    return {
        "before": redact(before, secret_keys) if before is not None else {},
        "after": redact(after, secret_keys) if after is not None else {},
    }


def _blocked(changes, immutable):
    return [c for c in changes if any(c == f or c.startswith(f + ".") or c.startswith(f + "[") for f in immutable)]


def _values(resource, paths):
    out = {}
    for path in paths:
        value = resource
        for part in path.replace("[", ".[").split("."):
            if part.startswith("["):
                index = int(part[1:-1])
                value = value[index] if isinstance(value, list) and len(value) > index else None
            else:
                value = value.get(part) if isinstance(value, dict) else None
        out[path] = value
    return out


class EnsureMixin(object):
    """Drives a Resource to its state with check mode and diff; every family's module base mixes this in."""

    # Whether a duplicate counts as ours only when what exists matches what we asked for (otherwise it is adopted
    # and brought to it): a family whose "already exists" cannot tell our first attempt from another writer sets it.
    duplicate_must_match = False

    # The options every module of the family takes (its base sets them); a module adds its own.
    common_args = {}

    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(self.common_args)
        spec.update(argument_spec or {})
        kwargs.setdefault("supports_check_mode", True)
        super(EnsureMixin, self).__init__(argument_spec=spec, **kwargs)
        # The one exit (errors.one_exit) fails through the module of this run.
        register(self)

    def is_own_duplicate(self, exc):
        """True when a create was refused as a duplicate after our own earlier attempt of it may have got through."""
        return False

    def create_failed(self, resource, exc):
        """Turn a failed create into the family's one-line error; re-raised when this returns."""

    def adopt_duplicate(self, exc, read, matches):
        """The one "my retried create already succeeded" rule: what a create refused by is_own_duplicate(exc) finds
        (read()) is ours when matches(it) says it is what we asked for (or the family trusts its duplicate answer).
        Returns it; None when it is not ours, and the caller reports the refusal."""
        if not self.is_own_duplicate(exc):
            return None
        current = read()
        if current is None or (self.duplicate_must_match and not matches(current)):
            return None
        return current

    def ensure(self, resource, state=None, extra=None):
        """Converge and exit with the result: the whole module for a plain declaration, and its one exit."""
        try:
            result = self.converge(resource, state, extra)
        except SkyforgeError as err:
            fail(self, err)
        self.exit_json(**result)

    def converge(self, resource, state=None, extra=None):
        """Drive a Resource or Member to its state and return the module result; a module with a step after the
        resource (e.g. storing what it generated) runs that on the result, then exits once."""
        state = state or self.params.get("state", "present")
        if isinstance(resource, Member):
            return self._converge_member(resource, state, extra)
        result, after = self.reconcile(resource, state)
        return _with_extra(result, extra, after)

    def reconcile(self, resource, state="present"):
        """One Resource to its state without exiting, for a module that drives several: (result, view after)."""
        current = self.settled(resource, resource.get())
        label = "%s %s" % (resource.kind, resource.name)
        # Some families compare and predict on the module's view of a resource, others on the API's shape.
        on_view = resource.compare_on_view
        result = dict(changed=False)
        if state == "absent":
            if current is not None:
                result["changed"] = True
                if not self.check_mode:
                    resource.delete(current)
            before, after = resource.view(current), None
        else:
            desired = resource.desired()
            before = None
            if current is None:
                result["changed"] = True
                if self.check_mode:
                    after = resource.predict(None, desired)
                    after = after if on_view else resource.view(after)
                else:
                    after = self._create(resource, desired)
            else:
                before = resource.view(current)
                changes = resource.changes(desired, before if on_view else current)
                blocked = _blocked(changes, resource.immutable)
                if blocked:
                    raise InputError(
                        "%s: %s cannot be changed in place (current %s)"
                        % (label, ", ".join(blocked), json.dumps(_values(before if on_view else current, blocked),
                                                                 sort_keys=True, default=str)),
                        "keep the current value, or delete the resource (state=absent) and create it again")
                after = before
                if changes:
                    result["changed"] = True
                    result["changes"] = changes
                    if self.check_mode:
                        after = resource.predict(before, desired) if on_view else \
                            resource.view(resource.predict(current, desired))
                    else:
                        updated = self._update(resource, current, desired)
                        after = resource.view(updated if resource.returns_resource and updated is not None
                                              else resource.get())
        result["diff"] = diff_dict(resource.diff_view(before), resource.diff_view(after), resource.secret_keys)
        result[resource.kind] = redact(after, resource.secret_keys) if after else {}
        return result, after

    def settled(self, resource, current):
        """The one settle step: a resource still being created or changed by an earlier call (one made with
        wait=false, or a concurrent run) is waited for before it is compared, when the module waits at all."""
        if resource.is_settling(current) and self.params.get("wait", True) and not self.check_mode:
            return resource.settle(current)
        return current

    def settle_only(self, resource, extra=None):
        """Change nothing: wait for the resource to settle and exit with it (a role's finish step)."""
        try:
            current = self.settled(resource, resource.get())
        except SkyforgeError as err:
            fail(self, err)
        result = {"changed": False, resource.kind: redact(resource.view(current), resource.secret_keys) if current
                  else {}}
        self.exit_json(**_with_extra(result, extra, current))

    def attempt(self, action, still_needed):
        """Run action(); a family whose operations can fail without effect overrides this to try again."""
        return action()

    def _compare(self, resource, obj):
        return resource.view(obj) if resource.compare_on_view else obj

    def _update(self, resource, current, desired):
        state = {"current": current}

        def update():
            cur = state["current"]
            return resource.update(cur, desired, resource.changes(desired, self._compare(resource, cur)))

        def still_needed():
            state["current"] = resource.get()
            cur = state["current"]
            return cur is not None and bool(resource.changes(desired, self._compare(resource, cur)))

        return self.attempt(update, still_needed)

    def _create(self, resource, desired):
        try:
            created = self.attempt(lambda: resource.create(desired), lambda: resource.get() is None)
        except Exception as exc:  # pylint: disable=broad-except
            if self.adopt_duplicate(exc, resource.get,
                                    lambda cur: resource.matches(desired, self._compare(resource, cur))) is None:
                self.create_failed(resource, exc)
                raise
            created = None
        if resource.returns_resource and created is not None:
            return resource.view(created)
        # Read back; after a retried create whose first attempt got through, bring it to what was asked.
        after = resource.get()
        if after is not None:
            changes = resource.changes(desired, self._compare(resource, after))
            if changes:
                resource.update(after, desired, changes)
                after = resource.get()
        return resource.view(after)

    def _converge_member(self, member, state, extra):
        def once():
            parent = member.read()
            before = member.find(parent)
            after = member.target(before, state)
            changes = member.changes(before, after)
            if not changes:
                after = before
            elif not self.check_mode:
                written = member.write(parent, before, after)
                if written is not None:
                    parent, after = written, member.find(written)
            return parent, before, after, changes

        policy = member.conflict_retry()
        try:
            parent, before, after, changes = policy.call(once, lambda exc: (member.is_conflict(exc), None))
        except Exception as exc:  # pylint: disable=broad-except
            if not member.is_conflict(exc):
                raise
            raise SkyforgeError("%s kept changing under us (%d conflicting writes)" % (member.parent_label(),
                                                                                       policy.attempts),
                                "run again when other changes to it have settled")
        result = dict(changed=bool(changes), diff=member.diff(before, after))
        if changes and member.report_changes:
            result["changes"] = changes
        result.update(member.result(parent, before, after, changes))
        return _with_extra(result, extra, after)


def _with_extra(result, extra, after):
    """A module's fields derived from the resource after the run (extra(after)) or given (a dict)."""
    if callable(extra):
        extra = extra(after)
    if extra:
        result.update(extra)
    return result


class Declaration(object):
    """What Resource and Member share: the module, its parameters, and the name and secrets the result shows."""

    kind = "resource"
    secret_keys = ()
    unordered = ()

    def __init__(self, module):
        self.module = module
        self.params = module.params

    @property
    def name(self):
        return self.params.get("name")


class Member(Declaration):
    """An entry inside a parent object: a NAT in a router, role members in an IAM policy, the enabled services of a
    project, a user of a Cloud SQL instance. ensure() writes it by read-modify-write of the parent.

    read() returns the parent (None when it does not exist yet), find(parent) the entry as the module shows it (None
    when absent) and target(current, state) what it should become (None: absent), without any call: check mode and
    the real run predict alike. write(parent, current, target) makes the change and returns the parent as it is now
    (or None to show the target). When the parent changed between the read and the write (an etag or fingerprint
    mismatch, 409/412), is_conflict(exc) says so and the whole read-modify-write runs again, a bounded number of
    times with jittered backoff, so another writer's change is kept.
    """

    kind = "member"
    conflict_attempts = 5
    # Whether the result names what differed (as `changes`), like an updated Resource.
    report_changes = False

    def parent_label(self):
        return "the parent of %s %s" % (self.kind, self.name)

    def read(self):
        raise NotImplementedError

    def find(self, parent):
        raise NotImplementedError

    def desired(self):
        raise NotImplementedError

    def write(self, parent, current, target):
        raise NotImplementedError

    def target(self, current, state):
        return None if state == "absent" else merge(current or {}, self.desired())

    def changes(self, current, target):
        if current is None or target is None:
            return [self.kind] if current != target else []
        return differs(target, current, unordered=self.unordered)

    def is_conflict(self, exc):
        return False

    def conflict_retry(self):
        return RetryPolicy(retries=self.conflict_attempts - 1, base_delay=0.2, max_delay=5.0)

    def diff(self, before, after):
        return diff_dict(before, after, self.secret_keys)

    def result(self, parent, before, after, changes):
        """The module's fields besides changed, diff and changes."""
        return {self.kind: redact(after, self.secret_keys) if after else {}}


class Resource(Declaration):
    """One resource kind on any API family's base. Subclasses implement get/create/update/delete and desired().

    The family bases (GcpResource, CloudflareResource, TfcResource) add how they reach their API; each base's
    ensure() drives a Resource to its state with check mode and diff.
    """

    # Fields that cannot change in place: a difference there fails with a clear message.
    immutable = ()
    # Whether create()/update() return the resource itself (otherwise it is read back).
    returns_resource = False
    # Whether changes() and predict() work on view() of the API resource.
    compare_on_view = False

    def get(self):
        raise NotImplementedError

    def desired(self):
        raise NotImplementedError

    def create(self, desired):
        raise NotImplementedError

    def update(self, current, desired, changes):
        raise NotImplementedError

    def delete(self, current):
        raise NotImplementedError

    def changes(self, desired, current):
        return differs(desired, current, unordered=self.unordered)

    def matches(self, desired, current):
        """Whether an object found by a refused create is the one the create asked for."""
        return not self.changes(desired, current)

    def predict(self, current, desired):
        return merge(current or {}, desired)

    def view(self, resource):
        """What the module returns and diffs; defaults to the API resource."""
        return resource

    def diff_view(self, view):
        """What the diff shows of a view (None for no resource); defaults to the whole view."""
        return view

    def is_settling(self, current):
        """Whether a read shows the resource still being created or changed (ensure() then waits: settle())."""
        return False

    def settle(self, current):
        """Wait until is_settling() is false; return the last read."""
        return current
