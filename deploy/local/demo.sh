#!/usr/bin/env bash
# The demo on embedded defaults: set-up, start Kafka and the Schema Registry, then run the main job.
# The stack keeps running afterwards (`deploy/local/stack down` stops it).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
. "$here/env.sh"
bash "$here/stack" up kafka registry >&2
cd "$PIPELINES_ROOT"
exec node pipelines/cli/main.ts demo "$@"
