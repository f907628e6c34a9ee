# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cycles of a dependency graph: the tfc filters (role validation) and tfc_component_runs (the module's own check)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def dependency_cycles(graph, order=None):
    """Every cycle of {node: [nodes it depends on]}, each as a list of names (first repeated at the end), once.

    Unknown nodes and self-dependencies are skipped: callers report those with their own messages. `order` (the
    listed order, by default the graph's) decides where the search starts, so messages are stable.
    """
    found, seen, state = [], set(), {}

    def visit(node, stack):
        state[node] = "active"
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in graph or dep == node:
                continue
            if state.get(dep) == "active":
                cycle = stack[stack.index(dep):] + [dep]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append(cycle)
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for node in (graph if order is None else order):
        if node not in state:
            visit(node, [])
    return found
