# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge Platform Team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: change_ledger
type: aggregate
version_added: 0.1.0
author: Skyforge platform team (@skyforge)
short_description: Counts the task results of this run that changed something
description:
  - Counts every task result that reports C(changed), on any host, from the start of the C(ansible-playbook) run.
    It prints nothing. The P(skyforge.prefect_platform.change_ledger#lookup) lookup reads the count.
  - The C(platform_verify) role uses it to start the site's smoke flow run at the start of a run and to trust that
    run at the end only when no task changed anything after it started.
  - Enable it with C(callbacks_enabled = skyforge.prefect_platform.change_ledger) in C(ansible.cfg) (this
    repository's does) or C(ANSIBLE_CALLBACKS_ENABLED). Without it the lookup returns C(none) and the role starts
    its smoke run at the end, as it always did.
requirements:
  - Enabled in the configuration (see above).
"""

from ansible.plugins.callback import CallbackBase

# The count lives in this module: a task's worker is a fork of the controller taken after every earlier task's
# result reached the callbacks, so the lookup (which imports this module in the worker) reads it as it stands.
LEDGER = {"enabled": False, "changes": 0}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "skyforge.prefect_platform.change_ledger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        LEDGER["enabled"] = True
        LEDGER["changes"] = 0

    def _count(self, result):
        if result._result.get("changed", False):
            LEDGER["changes"] += 1

    def v2_runner_on_ok(self, result):
        self._count(result)

    # A task whose failure is ignored (or expected) may still have changed something.
    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_runner_on_async_ok(self, result):
        self._count(result)
