"""Every option whose name Ansible takes for a password says no_log itself, so no run prints
'Module did not set no_log for ...' (AnsibleModule warns and masks the value when no_log is left unset)."""

import glob
import importlib
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.basic import PASSWORD_MATCH

from tests.unit.conftest import REPO

MODULES = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")) if not p.endswith("__init__.py"))


class _Captured(Exception):
    def __init__(self, spec):
        super().__init__("argument spec captured")
        self.spec = spec


def argument_spec(monkeypatch, name):
    """The spec the module hands AnsibleModule, after its family base added the shared options."""
    def capture(self, argument_spec, **kwargs):
        raise _Captured(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    mod = importlib.import_module("ansible_collections.skyforge.prefect_platform.plugins.modules.%s" % name)
    with pytest.raises(_Captured) as captured:
        mod.main()
    return captured.value.spec


def unset_password_like(spec, prefix=""):
    found = []
    for option, opts in spec.items():
        names = [option] + list(opts.get("aliases") or [])
        if opts.get("no_log") is None and any(PASSWORD_MATCH.search(n) for n in names):
            found.append(prefix + option)
        if opts.get("options"):
            found += unset_password_like(opts["options"], prefix + option + ".")
    return found


def test_heuristic_matches_the_option_the_warning_named():
    assert PASSWORD_MATCH.search("update_password"), "the check below would pass vacuously"
    assert unset_password_like({"update_password": {"type": "str"}}) == ["update_password"]
    assert unset_password_like({"update_password": {"type": "str", "no_log": False}}) == []


@pytest.mark.parametrize("name", MODULES)
def test_password_like_options_set_no_log(monkeypatch, name):
    spec = argument_spec(monkeypatch, name)
    assert spec, "%s: no argument spec captured" % name
    assert unset_password_like(spec) == [], (
        "%s: set no_log=True (a secret) or no_log=False (not one) on these options" % name)
