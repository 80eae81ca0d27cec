#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, the local stack, type-check, lint, then jest
# (unit, integration and deploy, one file at a time). Services this script started are stopped again at the end.
# The deploy stage (worker image, compose, manifests on a real API server) installs its tools first
# (deploy-tools.sh, cached); PIPELINES_SKIP_DEPLOY=1 skips the install and the tests that need them.
# Ends with the line "N passed, N failed". Extra arguments go to jest (e.g. a test path).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
. "$here/env.sh"
if [ "${PIPELINES_SKIP_DEPLOY:-}" = 1 ]; then
  say "PIPELINES_SKIP_DEPLOY=1: no deploy tools; the deploy tests skip"
else
  bash "$here/deploy-tools.sh"
fi
cd "$PIPELINES_ROOT"

started_stack=no
if bash "$here/stack" status >/dev/null 2>&1; then
  say "using the running stack"
else
  started_stack=yes
  trap 'bash "$here/stack" down >/dev/null 2>&1 || true' EXIT
  bash "$here/stack" up >&2
fi

say "type-check"
tsc -p tsconfig.json
say "lint"
biome check --reporter=summary . >/dev/null || biome check .

results="$PIPELINES_STATE/jest-results.json"
rm -f "$results"
set +e
# One test file at a time, each in a fresh worker process (workerIdleMemoryLimit recycles it after every
# file): the native Kafka client and the embedded ClickHouse load into the test process, and a crash of
# theirs then fails that one file, named, instead of killing the whole run (seen once in CI: exit 139).
# A crash leaves a core file (core_pattern permitting) for the native backtrace below.
ulimit -c unlimited 2>/dev/null || true
rm -f core core.[0-9]*
jest --maxWorkers=1 --workerIdleMemoryLimit=1MB --json --outputFile="$results" "$@"
rc=$?
for core in core core.[0-9]*; do
  [ -f "$core" ] || continue
  say "a test process crashed: native backtrace of $core"
  if command -v gdb >/dev/null; then
    gdb -q -batch -ex 'info threads' -ex 'thread apply all bt 12' "$(command -v node)" "$core" 2>&1 \
      | grep -E '^(Core was|Program terminated|\* |Thread|#)' | head -150 || true
  else
    echo "(no gdb here: the core is $(du -h "$core" | cut -f1))"
  fi
  rm -f "$core"
done
set -e
# Stop what we started before the summary, so that the summary is the last line.
if [ "$started_stack" = yes ]; then bash "$here/stack" down >/dev/null 2>&1 || true; trap - EXIT; fi
if [ -f "$results" ]; then
  node -e 'const r = require(process.argv[1]); console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed`)' "$results"
else
  echo "0 passed, 1 failed"
fi
exit $rc
