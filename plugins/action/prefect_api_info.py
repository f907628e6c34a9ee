# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prefect_api_info's action: Ansible's normal module run, in a fork of the worker where safe (plugin_utils/in_process.py)."""

from __future__ import annotations

from ansible_collections.skyforge.prefect_platform.plugins.plugin_utils.in_process import action_for

ActionModule = action_for("prefect")
