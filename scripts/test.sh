#!/usr/bin/env bash
# The test command: installs what it needs, then runs every quality gate.
#   bash scripts/test.sh                 # sanity, unit, lint, molecule
#   bash scripts/test.sh unit lint       # a subset
# CI runs exactly this (.ci/run).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh || exit 1
# shellcheck disable=SC1091
source scripts/env.sh

STAGES=("$@")
[[ ${#STAGES[@]} -eq 0 ]] && STAGES=(sanity unit lint molecule)
passed=0
failed=0
failures=()

stage_sanity() {
  # ansible-test needs the collection at ansible_collections/<ns>/<name>; test what the Galaxy build ships.
  local work="$ROOT/tests/output/sanity-tree"
  local dest="$work/ansible_collections/skyforge/prefect_platform"
  rm -rf "$work" && mkdir -p "$dest"
  git ls-files -co --exclude-standard -z \
    | grep -zv -E '^(sandbox|scripts|bench|molecule|inventories|group_vars|\.ci)/' \
    | xargs -0 -I{} cp --parents {} "$dest"/ 2>/dev/null
  (cd "$dest" && git init -q && git add -A >/dev/null && ansible-test sanity --venv --python 3.11 --color no)
}

stage_unit() {
  python -m pytest tests/unit -q -p no:cacheprovider
  local rc=$?
  [[ $rc -eq 5 ]] && { echo "unit: no tests collected"; return 1; }
  return $rc
}

stage_lint() {
  ansible-lint --profile production --offline
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
