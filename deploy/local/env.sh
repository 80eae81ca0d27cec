# Shared settings for the local scripts: where tools are cached, which versions, which ports.
# Sourced, never run. Everything here can be overridden from the environment.

PIPELINES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Tools live outside the checkout so that every clone (and CI) reuses one download.
PIPELINES_CACHE="${PIPELINES_CACHE:-$HOME/.cache/order-pipelines}"
# Runtime state (data, logs, pids) is per checkout and git-ignored.
PIPELINES_STATE="${PIPELINES_STATE:-$PIPELINES_ROOT/.local}"

NODE_VERSION="${NODE_VERSION:-24.21.0}"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
APICURIO_VERSION="${APICURIO_VERSION:-3.3.3}"

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
REGISTRY_PORT="${REGISTRY_PORT:-18081}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-18082}" # Quarkus health endpoints
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-18123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-19000}"
# Workers started locally expose /metrics here; Prometheus scrapes this range.
WORKER_METRICS_PORTS="${WORKER_METRICS_PORTS:-19100 19101 19102 19103 19104}"

NODE_HOME="$PIPELINES_CACHE/node-v$NODE_VERSION"
KAFKA_HOME="$PIPELINES_CACHE/kafka-$KAFKA_VERSION"
APICURIO_HOME="$PIPELINES_CACHE/apicurio-registry-$APICURIO_VERSION"
# Apicurio 3.x needs Java 21+; set-up records the java it found (or installed) here.
JAVA_BIN_FILE="$PIPELINES_CACHE/java-bin"
JAVA_BIN="$(cat "$JAVA_BIN_FILE" 2>/dev/null || echo java)"

# Node 24 first on PATH; native addons build against its headers.
if [ -x "$NODE_HOME/bin/node" ]; then
  export PATH="$NODE_HOME/bin:$PIPELINES_ROOT/node_modules/.bin:$PATH"
  export npm_config_nodedir="$NODE_HOME"
fi

export PIPELINES_BROKERS="${PIPELINES_BROKERS:-127.0.0.1:$KAFKA_PORT}"
export PIPELINES_REGISTRY_URL="${PIPELINES_REGISTRY_URL:-http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7}"
export PIPELINES_CLICKHOUSE_SERVER_URL="${PIPELINES_CLICKHOUSE_SERVER_URL:-http://127.0.0.1:$CLICKHOUSE_HTTP_PORT}"
export PIPELINES_PROMETHEUS_URL="${PIPELINES_PROMETHEUS_URL:-http://127.0.0.1:$PROMETHEUS_PORT}"

say() { printf '\033[1m[pipelines]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[pipelines] error:\033[0m %s\n' "$*" >&2; exit 1; }
