# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge Platform Team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of every module of this collection: plugins/action/<module>.py is `action_for(<its family>)`.

A module task runs exactly as ansible.builtin.normal runs it (the same arguments with Ansible's internal ones, check
mode, diff, no_log, module_defaults, the same result parsing), with one difference where it is safe: on a local
connection whose Python interpreter is this controller's own, with pipelining on, no become, no async and no task
environment, the module runs in a fork of this worker instead of in a new interpreter fed an AnsiballZ payload.

Why: every task of the site is a module on localhost, and a no-op re-run is mostly Ansible's fixed cost per module
task: building the AnsiballZ zip (an AST scan of ~60 module_utils files per distinct module, ~0.16 s), a new
interpreter, and ansible.module_utils.basic compiled from source inside the zip (~0.17 s), before our code runs
(bench/README.md, 2e). A fork of the worker starts with Ansible's module_utils and its family's module_utils and SDK already imported:
the strategy loads a module's action class in the controller's main process before it forks the worker, and that
load imports the family's module_utils (`action_for`), once per run, with what they preload (GCP's discovery
documents) and the template plugins the roles call (`preload_template_plugins`).

The fork runs the module the way the AnsiballZ wrapper does (ansible.module_utils._internal._ansiballz._loader, with
the arguments JSON-encoded by the module's serialization profile, target-side module_utils behaviour), writes its
stdout and stderr to files the worker reads, and exits with the module's status; the worker parses that as it parses
a module process's output. Anything else, or `skyforge_in_process: false`, takes Ansible's usual path.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import tempfile
import traceback

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalActionModule
from ansible.utils.display import Display

try:
    from ansible.executor import module_common
    from ansible.module_utils.common.json import Direction, get_module_encoder
    from ansible.module_utils._internal._ansiballz import _loader
    HAS_LOADER = hasattr(module_common, "_BuiltModule") and hasattr(_loader, "run_module")
except ImportError:  # another ansible-core: the usual path only
    HAS_LOADER = False

display = Display()

# What a module of each family imports first: its base module_utils, and through it the family's SDK.
FAMILY_MODULE_UTILS = {
    "gcp": ("gcp", "gcp_compute", "gcp_container"),
    "cloudflare": ("cloudflare",),
    "tfc": ("tfc", "tfc_runs", "tfc_workspaces"),
    "prefect": ("prefect",),
    "aws": ("aws",),
}

COLLECTION_PACKAGE = "ansible_collections.skyforge.prefect_platform."
PROFILE = "legacy"
# The payload _execute_module pipes to the interpreter; this plugin recognises it and runs the fork instead.
IN_PROCESS_PAYLOAD = b"# skyforge.prefect_platform: run in a fork of the worker\n"


# Plugins the roles' templates call in nearly every task: one name per plugin file (a lookup of a name loads its whole
# file). The collection's own filter and test files are found on disk.
TEMPLATE_PLUGINS = (("filter", "ansible.builtin.to_json"), ("test", "ansible.builtin.match"),
                    ("lookup", "ansible.builtin.env"), ("lookup", "ansible.builtin.file"),
                    ("lookup", "ansible.builtin.url"), ("lookup", "skyforge.prefect_platform.change_ledger"))
_preloaded = []


def preload_template_plugins():
    """Load the filter, test and lookup plugins into this process's plugin loaders, once.

    Each task runs in a fork of the controller, and a fork that finds a plugin missing from its loader's cache loads
    the plugin's file itself: about 165 times over for ansible.builtin's filters in a site run (2 s). Loaded here,
    before the forks, every worker inherits them."""
    if _preloaded:
        return
    _preloaded.append(True)
    from ansible.plugins.loader import filter_loader, lookup_loader, test_loader

    loaders = {"filter": filter_loader, "test": test_loader, "lookup": lookup_loader}
    names = list(TEMPLATE_PLUGINS)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for kind, holder, method in (("filter", "FilterModule", "filters"), ("test", "TestModule", "tests")):
        for file in sorted(os.listdir(os.path.join(root, kind))):
            if not file.endswith(".py") or file.startswith("_"):
                continue
            try:
                module = importlib.import_module(COLLECTION_PACKAGE + "plugins.%s.%s" % (kind, file[:-3]))
                first = next(iter(getattr(getattr(module, holder)(), method)()), None)
            except Exception:  # noqa: BLE001 - a plugin that cannot load fails where a template uses it
                continue
            if first:
                names.append((kind, "skyforge.prefect_platform." + first))
    for kind, name in names:
        try:
            if kind == "lookup":
                loaders[kind].get(name)
            else:
                loaders[kind].get_with_context(name)
        except Exception:  # noqa: BLE001 - as above
            pass


def action_for(family):
    """The action class of a module of `family`, with that family's module_utils imported into this process."""
    preload_template_plugins()
    for name in FAMILY_MODULE_UTILS[family]:
        try:
            utils = importlib.import_module(COLLECTION_PACKAGE + "plugins.module_utils." + name)
            if hasattr(utils, "preload"):
                utils.preload()
        except Exception:  # noqa: BLE001 - a missing SDK fails in the module, with its own message
            pass
    return InProcessAction


class InProcessAction(NormalActionModule):
    _in_process = None

    def _in_process_plan(self, module_name, task_vars):
        """(python module name, module path, interpreter) when the module can run in a fork of this worker, else None."""
        if not HAS_LOADER or not task_vars:
            return None
        if not boolean(self._templar.template(task_vars.get("skyforge_in_process", True)), strict=False):
            return None
        if self._connection.transport not in ("local", "ansible.builtin.local") or self._task.async_val:
            return None
        if self._play_context.become or not self._is_pipelining_enabled("new"):
            return None
        if self._compute_environment_string():
            return None
        interpreter = task_vars.get("ansible_python_interpreter")
        if not interpreter:
            return None
        interpreter = self._templar.template(interpreter)
        if not isinstance(interpreter, str) or os.path.realpath(interpreter) != os.path.realpath(sys.executable):
            return None
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            module_name, ".py", collection_list=self._task.collections)
        if not found.resolved or not found.plugin_resolved_path:
            return None
        try:
            fqn = module_common._get_ansible_module_fqn(found.plugin_resolved_path)
        except ValueError:
            return None
        if not fqn.startswith(COLLECTION_PACKAGE):
            return None
        if module_common._builder.ExtensionManager.create(task_vars=task_vars).get_extensions():
            return None  # coverage or a debugger asked for the AnsiballZ extensions
        return fqn, found.plugin_resolved_path, interpreter

    def _configure_module(self, module_name, module_args, task_vars):
        plan = self._in_process_plan(module_name, task_vars)
        if plan is None:
            return super()._configure_module(module_name, module_args, task_vars)
        fqn, path, interpreter = plan
        encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        try:
            params = json.dumps(dict(ANSIBLE_MODULE_ARGS=module_args), cls=encoder)
        except TypeError:
            return super()._configure_module(module_name, module_args, task_vars)
        self._in_process = (fqn, params.encode("utf-8"))
        built = module_common._BuiltModule(b_module_data=IN_PROCESS_PAYLOAD, module_style="new",
                                           shebang="#!%s" % interpreter, serialization_profile=PROFILE)
        return built, path

    def _low_level_execute_command(self, cmd, sudoable=True, in_data=None, executable=None,
                                   encoding_errors="surrogate_then_replace", chdir=None):
        if in_data is IN_PROCESS_PAYLOAD and self._in_process:
            fqn, params = self._in_process
            self._in_process = None
            display.vvv("Running %s in a fork of the worker" % fqn)
            return run_forked(fqn, params, encoding_errors)
        return super()._low_level_execute_command(cmd, sudoable=sudoable, in_data=in_data, executable=executable,
                                                  encoding_errors=encoding_errors, chdir=chdir)


def run_forked(fqn, params, encoding_errors="surrogate_then_replace"):
    """Run module `fqn` with JSON `params` in a child process forked from this one; the result as
    _low_level_execute_command returns it (rc, stdout, stderr and their lines)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured through the tests that run modules
            _child(fqn, params, out.fileno(), err.fileno())
        try:
            status = os.waitpid(pid, 0)[1]
        except BaseException:
            # The worker is being stopped: the module goes with it, as a module process would with its group.
            _kill(pid)
            raise
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = to_text(out.read(), errors=encoding_errors)
        stderr = to_text(err.read(), errors=encoding_errors)
    return dict(rc=rc, stdout=stdout, stdout_lines=stdout.splitlines(), stderr=stderr,
                stderr_lines=stderr.splitlines())


def _kill(pid):
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except OSError:
        pass


def _child(fqn, params, out_fd, err_fd):  # pragma: no cover - runs in the forked child
    """Become a module process: stdio on the files, no inherited exit handlers, default signals, target-side
    module_utils, then the AnsiballZ loader's run_module; never return into the worker's code."""
    code = 1
    try:
        import atexit

        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdin = open(0, "r", closefd=False)  # pylint: disable=consider-using-with,unspecified-encoding
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # pylint: disable=consider-using-with
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # pylint: disable=consider-using-with
        # The worker's exit handlers are the controller's (its temporary directories); the module registers its own.
        atexit._clear()  # pylint: disable=protected-access
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from ansible.module_utils import _internal
        _internal.is_controller = False
        try:
            _loader.run_module(json_params=params, profile=PROFILE, module_fqn=fqn, modlib_path="", extensions={})
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        atexit._run_exitfuncs()  # pylint: disable=protected-access
    except BaseException:  # pylint: disable=broad-except
        try:
            sys.stderr.write(traceback.format_exc())
        except BaseException:  # pylint: disable=broad-except
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # pylint: disable=broad-except
                pass
        os._exit(code)  # pylint: disable=protected-access
