#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, etcd, kwok
# and the local-path provisioner from
# their published Go modules, once, into a cache keyed by hack/control-plane/versions.env.
# CoreDNS (hack/coredns/main.go) has a cache entry of its own, keyed by COREDNS_VERSION and the
# main's hash, and is linked into the binaries' directory.
# Prints the directory holding the binaries on the last line of stdout.
#
#   KUBEBUILDER_ASSETS=<dir>  use binaries found there (envtest convention); build only what is missing
#   ORCHESTRATOR_CACHE=<dir>  cache root (default: ~/.cache/orchestrator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

cache_root="${ORCHESTRATOR_CACHE:-$HOME/.cache/orchestrator}"
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_lpp-${LOCAL_PATH_PROVISIONER_VERSION}"
out="$cache_root/control-plane/$key"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kwok local-path-provisioner)

have() { [[ -x "$out/$1" ]]; }

# Binaries provided by the user (KUBEBUILDER_ASSETS) are linked into a separate directory so
# the shared cache is never polluted with foreign binaries.
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  [[ -d "$KUBEBUILDER_ASSETS" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS is not a directory; unset it or point it at a folder containing kube-apiserver and etcd"
  out="$cache_root/control-plane/assets-$(printf '%s' "$KUBEBUILDER_ASSETS" | sha256sum | cut -c1-12)"
  mkdir -p "$out"
  for b in "${bins[@]}" coredns; do
    if [[ -x "$KUBEBUILDER_ASSETS/$b" ]]; then ln -sfn "$KUBEBUILDER_ASSETS/$b" "$out/$b"; log "using $KUBEBUILDER_ASSETS/$b"; fi
  done
fi

coredns_main="$here/../coredns/main.go"
coredns_key="coredns-${COREDNS_VERSION}-$(sha256sum "$coredns_main" | cut -c1-12)"
coredns_out="$cache_root/control-plane/$coredns_key"
coredns_given=""
[[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/coredns" ]] && coredns_given=1
link_coredns() {
  [[ -z $coredns_given && -x $coredns_out/coredns ]] && ln -sfn "$coredns_out/coredns" "$out/coredns"
  return 0
}

missing=()
for b in "${bins[@]}"; do have "$b" || missing+=("$b"); done
[[ -n $coredns_given || -x $coredns_out/coredns ]] || missing+=(coredns)
if [[ ${#missing[@]} -eq 0 ]]; then
  link_coredns
  log "all binaries cached in $out"
  echo "$out"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "missing binaries (${missing[*]}) and no Go toolchain on PATH.
Install Go >= 1.25 (https://go.dev/doc/install, or 'apt-get install golang-go' where it is new enough),
or set KUBEBUILDER_ASSETS to a directory that contains: ${bins[*]} coredns."

# One build at a time per cache: a second caller (another test run, another checkout) waits for
# the first, then finds the binaries cached instead of building into the same work directory.
if [[ -z "${ORCHESTRATOR_BUILD_LOCKED:-}" ]]; then
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.control-plane-build.lock"
  if ! flock -n 9; then
    log "another build of the control-plane binaries is running; waiting for it"
    flock 9
  fi
  export ORCHESTRATOR_BUILD_LOCKED=1
  exec bash "${BASH_SOURCE[0]}" "$@"
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$out"
work="$cache_root/control-plane/work-$key"
mkdir -p "$work"
total_start=$(date +%s)

timed() { # name cmd...
  local name=$1; shift
  local s; s=$(date +%s)
  "$@"
  log "built $name in $(( $(date +%s) - s ))s"
}

needs() { for m in "${missing[@]}"; do [[ $m == "$1" ]] && return 0; done; return 1; }

if needs kube-apiserver || needs kube-controller-manager || needs kube-scheduler || needs kubelet || needs kube-proxy; then
  mod="$work/kubernetes"
  if [[ ! -f "$mod/.ready" ]]; then
    rm -rf "$mod"; mkdir -p "$mod"
    s=$(date +%s)
    (cd "$mod" && go mod init local.build/k8s-tools >/dev/null 2>&1)
    gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@${KUBERNETES_VERSION} (is the Go module proxy reachable?)"
    staging_version="v0.${KUBERNETES_VERSION#v1.}"
    # Every staging module the upstream go.mod maps to ./staging/src gets its published v0.x.y.
    mapfile -t staging < <(sed -n 's|^[[:space:]]*\(replace[[:space:]]\+\)\?\(k8s.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*|\2|p' "$gomod" | sort -u)
    [[ ${#staging[@]} -gt 0 ]] || die "found no staging replaces in $gomod"
    log "replacing ${#staging[@]} staging modules with ${staging_version}"
    edits=()
    for m in "${staging[@]}"; do edits+=("-replace=$m=$m@$staging_version"); done
    (cd "$mod" && go mod edit "${edits[@]}")
    goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)
    godebug=$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod" | head -1)
    (cd "$mod" && go mod edit -go="$goline")
    [[ -n "$godebug" ]] && (cd "$mod" && go mod edit -godebug="$godebug")
    cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
    (cd "$mod" && go get "k8s.io/kubernetes@${KUBERNETES_VERSION}" >&2 && go mod tidy -e >/dev/null 2>&1 || true)
    (cd "$mod" && go get "k8s.io/kubernetes@${KUBERNETES_VERSION}" >&2)
    touch "$mod/.ready"
    log "resolved kubernetes modules in $(( $(date +%s) - s ))s"
  fi
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor} -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    needs "$b" || continue
    timed "$b" bash -c "cd '$mod' && go build -trimpath -ldflags '$ld' -o '$out/$b.tmp' k8s.io/kubernetes/cmd/$b && mv '$out/$b.tmp' '$out/$b'"
  done
fi

if needs etcd; then
  mod="$work/etcd"
  if [[ ! -f "$mod/.ready" ]]; then
    rm -rf "$mod"; mkdir -p "$mod"
    (cd "$mod" && go mod init local.build/etcd-tools >/dev/null 2>&1 && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2)
    touch "$mod/.ready"
  fi
  timed etcd bash -c "cd '$mod' && go build -trimpath -ldflags '-s -w' -o '$out/etcd.tmp' go.etcd.io/etcd/server/v3 && mv '$out/etcd.tmp' '$out/etcd'"
fi

if needs kwok; then
  timed kwok bash -c "GOBIN='$work/kwok-bin' go install -trimpath -ldflags '-s -w' 'sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}' && mv '$work/kwok-bin/kwok' '$out/kwok'"
fi

if needs local-path-provisioner; then
  timed local-path-provisioner bash -c "GOBIN='$work/lpp-bin' GOFLAGS=-mod=mod go install -trimpath -ldflags '-s -w' 'github.com/rancher/local-path-provisioner@${LOCAL_PATH_PROVISIONER_VERSION}' && mv '$work/lpp-bin/local-path-provisioner' '$out/local-path-provisioner'"
fi

if needs coredns; then
  mod="$coredns_out/work"
  if [[ ! -f "$mod/.ready" ]]; then
    rm -rf "$mod"; mkdir -p "$mod"
    cp "$coredns_main" "$mod/main.go"
    # Only a requirement, no `go get`: the build then fetches just the plugins main.go imports.
    (cd "$mod" && go mod init local.build/coredns >/dev/null 2>&1 && go mod edit -require="github.com/coredns/coredns@${COREDNS_VERSION}")
    touch "$mod/.ready"
  fi
  timed coredns bash -c "cd '$mod' && go build -trimpath -ldflags '-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}' -o '$coredns_out/coredns.tmp' . && mv '$coredns_out/coredns.tmp' '$coredns_out/coredns'"
fi
link_coredns

log "cold build total $(( $(date +%s) - total_start ))s"
"$out/kube-apiserver" --version >&2 || die "kube-apiserver does not run"
echo "$out"
