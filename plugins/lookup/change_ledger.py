# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge Platform Team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: change_ledger
version_added: 0.1.0
author: Skyforge platform team (@skyforge)
short_description: How many task results of this run changed something so far
description:
  - Returns the count the P(skyforge.prefect_platform.change_ledger#callback) callback keeps, the task results of this
    C(ansible-playbook) run before the current task that reported C(changed).
  - Returns C(none) when that callback is not enabled, so a caller can tell "nothing changed" from "nobody counted".
  - Two reads with the same count mean no task between them changed anything.
options: {}
"""

EXAMPLES = r"""
- name: Note where the run stands
  ansible.builtin.set_fact:
    changes_before: "{{ lookup('skyforge.prefect_platform.change_ledger') }}"

- name: Only when nothing changed since
  ansible.builtin.debug:
    msg: Nothing changed in between
  when:
    - changes_before is not none
    - lookup('skyforge.prefect_platform.change_ledger') == changes_before
"""

RETURN = r"""
_raw:
  description: The number of changed task results so far, or C(none) without the callback.
  type: list
  elements: int
"""

from ansible.plugins.lookup import LookupBase

try:
    from ansible_collections.skyforge.prefect_platform.plugins.callback.change_ledger import LEDGER
except ImportError:  # pragma: no cover - the callback ships beside this lookup
    LEDGER = {"enabled": False, "changes": 0}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [LEDGER["changes"] if LEDGER["enabled"] else None]
