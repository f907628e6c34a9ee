"""The one check -> real -> again helper every module test family uses (GCP, Cloudflare, HCP Terraform)."""


def converge(module_runner, name, args, sandbox=None, writes=None):
    """Run module `name` in check mode, for real, then again; return (check, real, again).

    Check mode predicts a change, the real run makes it, the second run changes nothing. With `sandbox` and
    `writes` (a function of the sandbox and a request-log position, returning the writes made since), check mode
    must also have written nothing.
    """
    mark = len(sandbox.log.entries) if sandbox is not None else None
    check = module_runner(name, args, check=True)
    assert check["changed"] is True, "check mode must predict the change: %r" % check.get("changes")
    if writes is not None:
        assert not writes(sandbox, mark), "check mode predicts and writes nothing"
    real = module_runner(name, args)
    again = module_runner(name, args)
    assert real["changed"] is True, "a new or changed resource reports changed"
    assert again["changed"] is False, "the second run must change nothing: %r" % again.get("changes")
    return check, real, again
