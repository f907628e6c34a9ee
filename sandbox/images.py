"""Container images the sandbox can run: Prefect's and MLflow's official images, mapped to what is installed beside it.

A pod (Kubernetes stand-in) or a task (Cloud Run executions) names an image; nothing is pulled. The sandbox runs the
container's command as a local process in this interpreter's environment, so it accepts only images whose contents
it really has: `prefecthq/prefect` tags that match the installed Prefect and Python, with the integrations the tag's
flavour (or `EXTRA_PIP_PACKAGES`) asks for installed. Anything else is refused with the reason, as a kubelet reports
an image it cannot pull.

MLflow's images (`ghcr.io/mlflow/mlflow:v<version>`, no ENTRYPOINT: the pod sets `mlflow server ...`) map to the
installed MLflow. The plain image holds MLflow alone, so a server on it with a PostgreSQL backend store or gs://
artifacts is refused as the real one fails (no psycopg2, no google-cloud-storage); the `-full` image has both.
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


MLFLOW_REPOSITORIES = ("ghcr.io/mlflow/mlflow",)
MLFLOW_TAG = re.compile(r"^v(?P<version>\d+\.\d+\.\d+)(?P<full>-full)?$")
# What the -full image adds that a platform server needs (distribution names, checked as installed here).
MLFLOW_FULL = ("psycopg2-binary", "google-cloud-storage")


class ImageError(Exception):
    """The image cannot run here; the message says why and what to use instead (ErrImagePull's reason)."""


def installed(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement_name(spec):
    return re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0]


def check_mlflow_image(image, argv, env=None):
    """Validate an MLflow image tag against the installed MLflow and what the plain image lacks for argv and env."""
    mlflow = installed("mlflow")
    example = "ghcr.io/mlflow/mlflow:v%s-full" % mlflow
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest"
    m = MLFLOW_TAG.match(tag)
    if not mlflow:
        raise ImageError("image %r: MLflow is not installed in the sandbox; add it to its requirements" % image)
    if not m:
        raise ImageError("image %r: tag %r is not an MLflow release tag; use %s" % (image, tag, example))
    if m.group("version") != mlflow:
        raise ImageError("image %r: MLflow %s is installed here, not %s; use %s"
                         % (image, mlflow, m.group("version"), example))
    if m.group("full"):
        missing = [name for name in MLFLOW_FULL if not installed(name)]
        if missing:
            raise ImageError("image %r needs %s, which the sandbox does not have installed"
                             % (image, ", ".join(missing)))
        return
    text = " ".join(list(argv) + [str(v) for v in (env or {}).values()])
    if re.search(r"(?:^|[\s=])postgres(?:ql)?(?:\+psycopg2)?://", text):
        raise ImageError("image %r has no psycopg2, so its server cannot open a PostgreSQL backend store; use %s"
                         % (image, example))
    if "gs://" in text:
        raise ImageError("image %r has no google-cloud-storage, so its server cannot reach gs:// artifacts; use %s"
                         % (image, example))


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
    name = image or ""
    if (name.rpartition(":")[0] if ":" in name.rpartition("/")[2] else name) in MLFLOW_REPOSITORIES:
        # The image has no ENTRYPOINT and its CMD is the base image's python3.
        argv = (list(command) if command else ([] if args else ["python3"])) + list(args or [])
        check_mlflow_image(image, argv, env)
    else:
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
