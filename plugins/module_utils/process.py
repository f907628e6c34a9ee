# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The process watch a long-waiting module runs: standard library only, so the sandbox's helm front loads this
file on its own (it does not import the collection as a package)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import threading
import time


def _parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def die_with_parent(levels=3, interval=1.0):
    """End this module when the run that started it is gone (a SIGKILLed ansible-playbook runs no cleanup).

    A long wait (an HCP Terraform run, an operation) would otherwise go on as an orphan for its whole timeout. The
    module's parent is a shell, whose parent is the worker, whose parent is ansible-playbook: when any of them exits,
    so does the module. Linux only (/proc); elsewhere nothing is watched.
    """
    chain = []
    pid = os.getpid()
    for _level in range(levels):
        pid = _parent_of(pid)
        if not pid or pid == 1:
            break
        chain.append(pid)
    if not chain:
        return None

    def alive(pid):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def watch():
        while True:
            time.sleep(interval)
            if not all(alive(p) for p in chain) or _parent_of(os.getpid()) != chain[0]:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
                os._exit(1)

    thread = threading.Thread(target=watch, name="die-with-parent")
    thread.daemon = True
    thread.start()
    return chain
