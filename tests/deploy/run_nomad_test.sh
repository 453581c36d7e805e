#!/usr/bin/env bash
# CTest's wrapper for nomad_jobs_test.mjs: installs the pinned parser (`npm ci`, test tooling only,
# never shipped) when node_modules is missing, then runs the checks. Exits 77 (CTest's SKIP_RETURN_CODE
# for this test) with a message when node or npm is absent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "skipped: node and npm are needed (Debian: apt-get install nodejs npm; deploy/install-deps.sh does it)"
  exit 77
fi

if [[ ! -f $here/node_modules/@cdktf/hcl2json/package.json ]]; then
  echo "npm ci in $here"
  npm ci --prefix "$here" --no-audit --no-fund
fi

cd "$here"
exec node nomad_jobs_test.mjs
