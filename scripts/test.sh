#!/usr/bin/env bash
# Lint, type-check, then every test. pytest exits 5 when it collects nothing: that is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> ruff"
.venv/bin/ruff check src tests
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
set +e
.venv/bin/pytest -q -rs "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit "$rc"
