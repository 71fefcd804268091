#!/usr/bin/env bash
# Installs what `make test` needs and the machine lacks, from Debian's packages
# (as root, via apt-get) and from npm (via `npm ci` with the committed lockfile).
# Usage: scripts/ensure-deps.sh [system|web|all]
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}

# command -> Debian package providing it
declare -A PACKAGES=(
  [chromium]=chromium         # browser end-to-end tests (web-client/e2e)
  [redis-server]=redis-server # stateless mode tests (redis-cli comes with it)
  [haproxy]=haproxy           # cluster tests behind a load balancer
  [nginx]=nginx               # cluster tests behind a load balancer
  [strace]=strace             # TCP_NODELAY read off the node's own syscalls
  [prometheus]=prometheus     # the dashboard's queries against a real scrape
  [promtool]=prometheus       # the alert rules checked and unit-tested
)

missing=()
if [[ $what == system || $what == all ]]; then
  for cmd in "${!PACKAGES[@]}"; do
    PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]}")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "ensure-deps: installing ${missing[*]} with apt-get"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # RUNLEVEL=1: the packages must not start their daemons (nginx on :80).
      # Sorted and unique: one package may provide two commands.
      mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
      RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "ensure-deps: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) or run as root" >&2
      exit 1
    fi
  fi
fi

if [[ $what == web || $what == all ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-deps: npm is needed to build and test the browser client (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  # npm ci when node_modules is missing or older than the lockfile.
  if [[ ! -d web-client/node_modules || web-client/package-lock.json -nt web-client/node_modules/.package-lock.json ]]; then
    echo "ensure-deps: npm ci in web-client/"
    (cd web-client && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
