# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tfc_workspace_runs role's component graph: checks (before any API call) and the run order.

Kept in Python rather than Jinja because a cycle check and a stable topological sort are unreadable as templates,
and because the messages must name the component and the field to fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.dependency_graph import dependency_cycles

VAR = "tfc_workspace_runs_components"
WORKSPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TF_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COMPONENT_KEYS = frozenset(["name", "config_dir", "variables", "execution_mode", "depends_on", "auto_apply",
                            "terraform_version", "working_directory", "description", "tags"])
VARIABLE_KEYS = frozenset(["key", "value", "value_from", "category", "hcl", "sensitive", "description"])
MODES = ("remote", "agent")


def _is_str(value):
    return isinstance(value, str)


def _names(components):
    return [c.get("name") for c in components if isinstance(c, dict) and _is_str(c.get("name"))]


def _deps(component):
    deps = component.get("depends_on") or []
    return [deps] if _is_str(deps) else list(deps) if isinstance(deps, (list, tuple)) else deps


def resolve_dir(config_dir, components_dir=None, base_dir=None):
    """An absolute path stays; a relative one is an example under components_dir, else relative to base_dir."""
    if os.path.isabs(config_dir):
        return os.path.normpath(config_dir)
    if components_dir and os.path.isdir(os.path.join(components_dir, config_dir)):
        return os.path.normpath(os.path.join(components_dir, config_dir))
    return os.path.normpath(os.path.join(base_dir or os.getcwd(), config_dir))


def _variable_problems(where, index, var, deps, names):
    out = []
    vwhere = "%s.variables[%d]" % (where, index)
    if not isinstance(var, dict):
        return ["%s must be a dict with key, value (or value_from), category" % vwhere]
    unknown = sorted(set(var) - VARIABLE_KEYS)
    if unknown:
        out.append("%s has unknown field(s) %s (allowed: %s)" % (vwhere, ", ".join(unknown),
                                                                 ", ".join(sorted(VARIABLE_KEYS))))
    category = var.get("category", "terraform")
    if category not in ("terraform", "env"):
        out.append("%s.category=%r must be terraform or env" % (vwhere, category))
    key = var.get("key")
    key_re = ENV_KEY_RE if category == "env" else TF_KEY_RE
    if not _is_str(key) or not key_re.match(key):
        out.append("%s.key=%r is not a valid %s variable name (letters, digits, underscores%s; not starting with "
                   "a digit)" % (vwhere, key, "environment" if category == "env" else "Terraform",
                                 "" if category == "env" else ", hyphens"))
    if ("value" in var) == ("value_from" in var):
        out.append("%s needs exactly one of value and value_from" % vwhere)
    elif "value" in var and var["value"] is None:
        out.append("%s.value is null: give a value, or drop the variable" % vwhere)
    if "value_from" in var:
        ref = var["value_from"]
        parts = ref.split(".", 1) if _is_str(ref) else []
        if len(parts) != 2 or not all(parts):
            out.append("%s.value_from=%r must be COMPONENT.OUTPUT" % (vwhere, ref))
        elif parts[0] not in names:
            out.append("%s.value_from names unknown component %r" % (vwhere, parts[0]))
        elif parts[0] not in deps:
            out.append("%s.value_from reads component %r, which is not in depends_on: add it so that it runs first"
                       % (vwhere, parts[0]))
    for flag in ("hcl", "sensitive"):
        if flag in var and not isinstance(var[flag], bool):
            out.append("%s.%s must be true or false" % (vwhere, flag))
    return out


def tfc_component_problems(components, components_dir=None, base_dir=None, prefix=""):
    """Everything wrong with the component list, each naming the component and field, or []."""
    if components is None:
        return []
    if not isinstance(components, (list, tuple)):
        return ["%s must be a list of dicts (name, config_dir, variables, depends_on, ...)" % VAR]
    out = []
    names = _names(components)
    seen = set()
    graph, order = {}, []
    for index, comp in enumerate(components):
        where = "%s[%d]" % (VAR, index)
        if not isinstance(comp, dict):
            out.append("%s must be a dict with name and config_dir" % where)
            continue
        name = comp.get("name")
        if _is_str(name):
            where = "%s[%d] (%s)" % (VAR, index, name)
        unknown = sorted(set(comp) - COMPONENT_KEYS)
        if unknown:
            out.append("%s has unknown field(s) %s (allowed: %s)" % (where, ", ".join(unknown),
                                                                     ", ".join(sorted(COMPONENT_KEYS))))
        if not _is_str(name) or not WORKSPACE_RE.match((prefix or "") + name):
            out.append("%s: name=%r is not a valid workspace name: %s+name must be 1 to 90 letters, digits, - and _"
                       % (where, name, "tfc_workspace_runs_workspace_prefix" if prefix else "the name"))
        elif name in seen:
            out.append("%s: name %r is listed twice; component names must be unique" % (where, name))
        if _is_str(name):
            seen.add(name)
        config_dir = comp.get("config_dir")
        if not _is_str(config_dir) or not config_dir:
            out.append("%s: config_dir is required (an example name under files/components, or a path)" % where)
        else:
            path = resolve_dir(config_dir, components_dir, base_dir)
            if not os.path.isdir(path):
                out.append("%s: config_dir %r is not a directory (looked for %s)" % (where, config_dir, path))
        mode = comp.get("execution_mode")
        if mode is not None and mode not in MODES:
            out.append("%s: execution_mode=%r must be agent or remote (local runs cannot be queued)" % (where, mode))
        deps = _deps(comp)
        if not isinstance(deps, list) or not all(_is_str(d) for d in deps):
            out.append("%s: depends_on must be a list of component names" % where)
            deps = []
        for dep in deps:
            if dep == name:
                out.append("%s: depends_on names the component itself" % where)
            elif dep not in names:
                out.append("%s: depends_on names unknown component %r (known: %s)" % (where, dep,
                                                                                      ", ".join(names) or "none"))
        variables = comp.get("variables") or []
        if not isinstance(variables, list):
            out.append("%s: variables must be a list of {key, value, category, hcl, sensitive}" % where)
            variables = []
        keys = set()
        for vindex, var in enumerate(variables):
            out.extend(_variable_problems(where, vindex, var, deps, names))
            if isinstance(var, dict):
                ident = (var.get("key"), var.get("category", "terraform"))
                if ident in keys:
                    out.append("%s.variables[%d]: %s variable %r is set twice" % (where, vindex, ident[1], ident[0]))
                keys.add(ident)
        if "auto_apply" in comp and not isinstance(comp["auto_apply"], bool):
            out.append("%s: auto_apply must be true or false" % where)
        if _is_str(name) and name not in graph:
            graph[name] = [d for d in deps if d != name]
            order.append(name)
    for cycle in dependency_cycles(graph, order):
        out.append("%s: dependency cycle %s; remove one of these depends_on entries" % (VAR, " -> ".join(cycle)))
    return out


def _variable(var):
    value = var.get("value")
    hcl = var.get("hcl")
    if value is not None and not _is_str(value):
        if hcl is False and isinstance(value, bool):
            value = "true" if value else "false"
        elif hcl is False and isinstance(value, (int, float)):
            value = str(value)
        else:
            # JSON is valid HCL for numbers, booleans, lists and maps.
            value = json.dumps(value, sort_keys=True)
            hcl = True
    return {"key": var["key"], "value": value, "value_from": var.get("value_from"),
            "category": var.get("category", "terraform"), "hcl": bool(hcl), "sensitive": bool(var.get("sensitive")),
            "description": var.get("description")}


def tfc_component_order(components, components_dir=None, base_dir=None, prefix="", execution_mode="agent",
                        terraform_version=None):
    """The components, normalised, dependencies first (stable: otherwise in listed order)."""
    problems = tfc_component_problems(components, components_dir, base_dir, prefix)
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    pending = list(components or [])
    done, out = set(), []
    while pending:
        ready = next(c for c in pending if all(d in done for d in _deps(c)))
        pending.remove(ready)
        done.add(ready["name"])
        out.append({
            "name": ready["name"],
            "workspace": (prefix or "") + ready["name"],
            "config_path": resolve_dir(ready["config_dir"], components_dir, base_dir),
            "execution_mode": ready.get("execution_mode") or execution_mode,
            "depends_on": _deps(ready),
            "auto_apply": bool(ready.get("auto_apply", False)),
            "terraform_version": ready.get("terraform_version") or terraform_version,
            "working_directory": ready.get("working_directory"),
            "description": ready.get("description") or "Component %s (skyforge.prefect_platform)" % ready["name"],
            "tags": list(ready.get("tags") or []),
            "variables": [_variable(v) for v in ready.get("variables") or []],
        })
    return out


def tfc_component_missing_outputs(component, outputs):
    """The value_from references (COMPONENT.OUTPUT) of a normalised component that `outputs` lacks."""
    missing = []
    for var in component.get("variables") or []:
        ref = var.get("value_from")
        if ref:
            name, _sep, output = ref.partition(".")
            if output not in ((outputs or {}).get(name) or {}):
                missing.append(ref)
    return missing


def tfc_component_variables(component, outputs):
    """The variables of a normalised component as tfc_workspace_variables takes them, value_from resolved.

    An output not produced yet (check mode before the first apply) stands in as a placeholder. A value that
    is not a string (an output that is a list or map) is sent as JSON, which is valid HCL.
    """
    out = []
    for var in component.get("variables") or []:
        value = var.get("value")
        if var.get("value_from"):
            name, _sep, output = var["value_from"].partition(".")
            value = ((outputs or {}).get(name) or {}).get(output, "(output %s after apply)" % var["value_from"])
        hcl = bool(var.get("hcl")) or not _is_str(value)
        item = {"key": var["key"], "value": value if _is_str(value) else json.dumps(value),
                "category": var.get("category", "terraform"), "hcl": hcl, "sensitive": bool(var.get("sensitive"))}
        if var.get("description"):
            item["description"] = var["description"]
        out.append(item)
    return out


def _workspace_settings(comp, agent_pool, tags):
    """What the role's workspace of a normalised component should be, as tfc_component_runs takes it."""
    mode = comp.get("execution_mode")
    settings = {"description": comp.get("description"), "execution_mode": mode,
                "agent_pool": agent_pool if mode == "agent" else None,
                "terraform_version": comp.get("terraform_version") or None,
                "working_directory": comp.get("working_directory") or "", "auto_apply": bool(comp.get("auto_apply")),
                "tags": list(dict.fromkeys(list(tags or []) + list(comp.get("tags") or [])))}
    return dict((k, v) for k, v in settings.items() if v is not None)


def tfc_component_run_specs(components, workspace_ids=None, manage_workspaces=False, agent_pool=None, tags=None):
    """The normalised components as tfc_component_runs takes them: with the workspace IDs tfc_workspace returned,
    or (manage_workspaces) with the settings tfc_component_runs creates each workspace with."""
    ids = workspace_ids or {}
    out = []
    for comp in components or []:
        variables = []
        for var in comp.get("variables") or []:
            item = dict((k, v) for k, v in var.items() if v is not None)
            if item.get("value_from"):
                item.pop("value", None)
            variables.append(item)
        spec = {"name": comp["name"], "workspace": comp["workspace"], "workspace_id": ids.get(comp["name"]) or None,
                "config_dir": comp["config_path"], "depends_on": list(comp.get("depends_on") or []),
                "variables": variables}
        if manage_workspaces:
            spec["workspace_settings"] = _workspace_settings(comp, agent_pool, tags)
        out.append(spec)
    return out


class FilterModule(object):
    def filters(self):
        return {
            "tfc_component_problems": tfc_component_problems,
            "tfc_component_order": tfc_component_order,
            "tfc_component_missing_outputs": tfc_component_missing_outputs,
            "tfc_component_variables": tfc_component_variables,
            "tfc_component_run_specs": tfc_component_run_specs,
        }
