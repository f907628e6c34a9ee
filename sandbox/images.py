"""Container images the sandbox can run: Prefect's official images, mapped to the Prefect installed beside it.

A pod (Kubernetes stand-in) or a task (Cloud Run executions) names an image; nothing is pulled. The sandbox runs the
container's command as a local process in this interpreter's environment, so it accepts only images whose contents
it really has: `prefecthq/prefect` tags that match the installed Prefect and Python, with the integrations the tag's
flavour (or `EXTRA_PIP_PACKAGES`) asks for installed. Anything else is refused with the reason, as a kubelet reports
an image it cannot pull.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys

REPOSITORIES = ("prefecthq/prefect", "docker.io/prefecthq/prefect", "index.docker.io/prefecthq/prefect")
# 3, 3.8, 3.8.8, 3-python3.11, 3.8.8-python3.11-kubernetes, 3-latest ...
TAG = re.compile(r"^(?P<version>\d+(?:\.\d+){0,2}|latest)(?:-python(?P<python>\d+\.\d+))?(?:-(?P<flavour>[a-z0-9-]+))?$")
FLAVOURS = {"kubernetes": "prefect-kubernetes", "gcp": "prefect-gcp", "aws": "prefect-aws"}
# The official image: ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"], no CMD.
IMAGE_ENTRYPOINT = ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"]
WRAPPERS = ("/usr/bin/tini", "tini", "/opt/prefect/entrypoint.sh")


class ImageError(Exception):
    """The image cannot run here; the message says why and what to use instead (ErrImagePull's reason)."""


def installed(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement_name(spec):
    return re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0]


def check_image(image, env=None):
    """Validate `image` (and the env's EXTRA_PIP_PACKAGES) against what is installed; returns the parsed tag."""
    prefect = installed("prefect")
    python = "%d.%d" % sys.version_info[:2]
    example = "prefecthq/prefect:%s-python%s" % (prefect, python)
    repo, _, tag = (image or "").rpartition(":")
    if "/" in tag or not repo:
        repo, tag = image or "", "latest"
    if "@" in repo:
        raise ImageError("image %r: digests cannot be mapped to an installed Prefect; use a tag such as %s"
                         % (image, example))
    if repo not in REPOSITORIES:
        raise ImageError("image %r: the sandbox runs only Prefect's official images (prefecthq/prefect), mapped to "
                         "the installed Prefect %s; use %s" % (image, prefect, example))
    m = TAG.match(tag)
    if not m:
        raise ImageError("image %r: tag %r is not a Prefect image tag; use %s" % (image, tag, example))
    version = m.group("version")
    if version == "latest" or not (prefect == version or prefect.startswith(version + ".")):
        raise ImageError("image %r: Prefect %s is installed here, not %s; use %s" % (image, prefect, version, example))
    if m.group("python") and m.group("python") != python:
        raise ImageError("image %r: the sandbox runs Python %s, not %s; use %s"
                         % (image, python, m.group("python"), example))
    wanted = []
    flavour = m.group("flavour")
    if flavour == "latest":  # 3-latest: the newest 3.x, which the version check above matched to the installed one
        flavour = None
    if flavour:
        if flavour not in FLAVOURS:
            raise ImageError("image %r: unknown flavour %r (known: %s)" % (image, flavour, ", ".join(sorted(FLAVOURS))))
        wanted.append(FLAVOURS[flavour])
    wanted += [_requirement_name(p) for p in ((env or {}).get("EXTRA_PIP_PACKAGES") or "").split() if p.strip()]
    missing = [name for name in wanted if not installed(name)]
    if missing:
        raise ImageError("image %r needs %s, which the sandbox does not have installed; add it to the sandbox's "
                         "requirements (the sandbox never installs packages at run time)" % (image, ", ".join(missing)))
    return {"repository": repo, "version": version, "python": m.group("python"), "flavour": flavour}


def local_argv(image, command=None, args=None, env=None):
    """The local argv for a container of `image`: Kubernetes semantics (command replaces ENTRYPOINT, args CMD).

    The image's tini + entrypoint.sh wrapper is dropped (its only job, installing EXTRA_PIP_PACKAGES, is checked by
    check_image instead), and `prefect`/`python` resolve to this interpreter's environment.
    """
    check_image(image, env)
    argv = list(command) if command else list(IMAGE_ENTRYPOINT)
    argv += list(args or [])
    while argv and argv[0] in WRAPPERS:
        argv.pop(0)
        if argv[:2] == ["-g", "--"]:
            argv = argv[2:]
        elif argv[:1] == ["--"]:
            argv = argv[1:]
    if not argv:
        raise ImageError("image %r: no command to run (the image has no default CMD); set the container's args"
                         % image)
    bindir = os.path.dirname(sys.executable)
    head = argv[0]
    if head in ("python", "python3", "python%d.%d" % sys.version_info[:2]):
        argv[0] = sys.executable
    elif "/" not in head and os.path.exists(os.path.join(bindir, head)):
        argv[0] = os.path.join(bindir, head)
    elif head.startswith("/usr/local/bin/") and os.path.exists(os.path.join(bindir, os.path.basename(head))):
        argv[0] = os.path.join(bindir, os.path.basename(head))
    return argv
