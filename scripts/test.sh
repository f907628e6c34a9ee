#!/usr/bin/env bash
# The test command: installs what it needs, then runs every quality gate.
#   bash scripts/test.sh                 # sanity, docs, changelog, ee, unit, lint, molecule
#   bash scripts/test.sh unit lint       # a subset
# CI runs exactly this (.ci/run).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh || exit 1
# shellcheck disable=SC1091
source scripts/env.sh

STAGES=("$@")
[[ ${#STAGES[@]} -eq 0 ]] && STAGES=(sanity docs changelog ee unit lint molecule)
passed=0
failed=0
failures=()

stage_sanity() {
  # ansible-test needs the collection at ansible_collections/<ns>/<name>; test what the Galaxy build ships.
  local work="$ROOT/tests/output/sanity-tree"
  local dest="$work/ansible_collections/skyforge/prefect_platform"
  rm -rf "$work" && mkdir -p "$dest"
  git ls-files -co --exclude-standard -z \
    | grep -zv -E '^(sandbox|scripts|bench|molecule|inventories|\.ci)/' \
    | xargs -0 -I{} cp -P --parents {} "$dest"/ 2>/dev/null
  (cd "$dest" && git init -q && git add -A >/dev/null) || return 1
  # Every Python the collection claims (tests/config.yml: the controller's versions); the version-independent tests
  # run once, on the first.
  # pyenv's interpreters that are not the global one are not on PATH: link just those binaries (python3 stays ours).
  local versions v found rc=0 first=1 missing=() pys="$ROOT/tests/output/sanity-pythons"
  rm -rf "$pys" && mkdir -p "$pys"
  read -r -a versions <<<"$(python -c 'from ansible_test._internal.constants import CONTROLLER_PYTHON_VERSIONS as v; print(*v)')"
  for v in "${versions[@]}"; do
    found="$(command -v "python$v" 2>/dev/null)"
    if [[ -z "$found" ]] || ! "$found" -V >/dev/null 2>&1; then
      found="$(compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v.*/bin/python$v" | sort -V | tail -n 1)"
    fi
    if [[ -z "$found" ]]; then missing+=("$v"); continue; fi
    ln -sfn "$found" "$pys/python$v"
    echo "== ansible-test sanity, Python $v ($found)"
    if [[ $first -eq 1 ]]; then
      (cd "$dest" && PATH="$pys:$PATH" ansible-test sanity --venv --python "$v" --color no) || rc=1
      first=0
    else
      (cd "$dest" && PATH="$pys:$PATH" ansible-test sanity --venv --python "$v" --color no --test compile --test import) \
        || rc=1
    fi
  done
  [[ $first -eq 1 ]] && { echo "sanity: none of Python ${versions[*]} is installed"; return 1; }
  [[ ${#missing[@]} -gt 0 ]] && { echo "sanity: Python ${missing[*]} (claimed in tests/config.yml) not found"; rc=1; }
  return $rc
}

stage_unit() {
  # Two pytest processes, each with its own sandbox on ephemeral ports: one pytest keeps about one core busy (the
  # whole-site runs wait on module start-up), and CI has two. The site-level tests run beside the rest.
  local logs="$ROOT/tests/output/unit" rc_site rc_rest
  mkdir -p "$logs"
  python -m pytest tests/unit/reliability tests/unit/roles -q -p no:cacheprovider --durations=15 >"$logs/site.log" 2>&1 &
  local site=$!
  python -m pytest tests/unit -q -p no:cacheprovider --durations=15 \
    --ignore=tests/unit/reliability --ignore=tests/unit/roles >"$logs/rest.log" 2>&1
  rc_rest=$?
  wait "$site"
  rc_site=$?
  echo "--- unit: tests/unit/reliability and tests/unit/roles"; cat "$logs/site.log"
  echo "--- unit: the rest of tests/unit"; cat "$logs/rest.log"
  if [[ $rc_site -eq 5 || $rc_rest -eq 5 ]]; then echo "unit: no tests collected"; return 1; fi
  [[ $rc_site -eq 0 && $rc_rest -eq 0 ]]
}

stage_lint() {
  ansible-lint --profile production --offline
}

stage_docs() {
  # What a Galaxy / Automation Hub reviewer runs on the docs: every plugin's and role's documentation, rendered.
  (cd "$ROOT/.cache/collections/ansible_collections/skyforge/prefect_platform" \
    && antsibull-docs lint-collection-docs --plugin-docs .)
}

stage_changelog() {
  antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
}

stage_ee() {
  # The execution environment's build context, from the Galaxy build (no image is built: no container runtime).
  local out="$ROOT/tests/output/ee"
  local ctx="$out/context/_build"
  rm -rf "$out" "$ROOT/build" && mkdir -p "$out/collections/ansible_collections"
  ansible-galaxy collection build --output-path "$ROOT/build" >/dev/null || return 1
  ansible-builder create -f execution-environment.yml -c "$out/context" || return 1
  compgen -G "$ctx/collections/skyforge-prefect_platform-*.tar.gz" >/dev/null \
    || { echo "ee: the collection tarball is not in the build context"; return 1; }
  # The image's galaxy stage: the tarball beside its dependencies kubernetes.core, amazon.aws and community.aws
  # (here the copies the ansible package ships; community.aws alone of its namespace).
  ln -s "$ANSIBLE_BUNDLED/ansible_collections/kubernetes" "$out/collections/ansible_collections/kubernetes"
  ln -s "$ANSIBLE_BUNDLED/ansible_collections/amazon" "$out/collections/ansible_collections/amazon"
  mkdir -p "$out/collections/ansible_collections/community"
  ln -s "$ANSIBLE_BUNDLED/ansible_collections/community/aws" "$out/collections/ansible_collections/community/aws"
  ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-galaxy collection install --offline \
    "$ctx"/collections/skyforge-prefect_platform-*.tar.gz -p "$out/collections" >/dev/null || return 1
  # Its builder stage: every collection's Python requirements merged with ours, by ansible-builder's own script.
  python "$ctx/scripts/introspect.py" introspect "$out/collections" --user-pip "$ctx/requirements.txt" \
    --user-bindep "$ctx/bindep.txt" --write-pip "$out/requirements.txt" --write-bindep "$out/bindep.txt" >/dev/null \
    || return 1
  grep -q "from collection skyforge.prefect_platform" "$out/requirements.txt" \
    && grep -q "from collection kubernetes.core" "$out/requirements.txt" \
    || { echo "ee: introspection missed a collection's requirements:"; cat "$out/requirements.txt"; return 1; }
  # pip's resolver against the index, installing nothing: the image's pip step and ansible-core/runner resolve.
  python -m pip install --dry-run --ignore-installed --quiet --disable-pip-version-check \
    --report "$out/pip-report.json" -r "$out/requirements.txt" \
    "$(python -c 'import yaml; print(yaml.safe_load(open("execution-environment.yml"))["dependencies"]["ansible_core"]["package_pip"])')" \
    ansible-runner 2>&1 | grep -v "^WARNING: Location" ; [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1
  python -c 'import json, sys; r = json.load(open(sys.argv[1])); print("ee: %d Python packages resolve" % len(r["install"]))' \
    "$out/pip-report.json"
}

stage_molecule() {
  local rc=0 scenario
  for scenario in molecule/*/molecule.yml; do
    scenario="$(basename "$(dirname "$scenario")")"
    echo "== molecule scenario: $scenario"
    molecule test -s "$scenario" || rc=1
  done
  return $rc
}

for stage in "${STAGES[@]}"; do
  echo "===== $stage"
  start=$SECONDS
  if "stage_$stage"; then
    passed=$((passed + 1))
    echo "===== $stage: ok ($((SECONDS - start))s)"
  else
    failed=$((failed + 1))
    failures+=("$stage")
    echo "===== $stage: FAILED ($((SECONDS - start))s)"
  fi
done
[[ $failed -gt 0 ]] && echo "failed gates: ${failures[*]}"
echo "gates: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
