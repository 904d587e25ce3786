#!/usr/bin/env bash
# Removes everything the local real node (containerd + runc + CNI + kubelet + kube-proxy +
# CoreDNS + local-path provisioner) changed on this machine, also after a crash:
#   processes, containers and shims; mounts; network namespaces and the bridge; iptables rules
#   and chains (KUBE-*, CNI-*); sysctls (restored from the values saved at start); state dirs.
# Imported images (containerd's content store) are kept, so the next start does not re-import.
#
#   hack/node/cleanup.sh [--dry-run] [--purge-images]
#
# Idempotent; exits 0 when there is nothing to do. The node harness (src/controlplane/real-node.ts)
# runs it before every start, at stop, and from its watchdog when the test process died.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
dry=""
purge_images=""
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --purge-images) purge_images=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cleanup.sh: unknown argument '$a' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "cleanup.sh: must run as root (the real node runs as root)" >&2; exit 2; }

NODE_ROOT=/var/lib/orchestrator-node
RUN=/run/orchestrator-node
BRIDGE=orch0
CGROUP_ROOT=orchestrator-node
CNI_NETWORK=orchestrator-node

run() { if [[ -n $dry ]]; then echo "would: $*"; else "$@"; fi; }
quiet() { run "$@" >/dev/null 2>&1 || true; }

# 1. Processes: the node's daemons (pid files), then every process left in the pods' cgroups
#    (containers, whose shims may already be gone), then shims bound to our containerd socket.
if [[ -d $RUN/pids ]]; then
  for f in "$RUN"/pids/*; do
    [[ -f $f ]] || continue
    pid=$(cat "$f"); [[ $pid =~ ^[0-9]+$ ]] || continue
    if kill -0 "$pid" 2>/dev/null; then quiet kill -TERM "$pid"; fi
  done
  sleep 0.5
  for f in "$RUN"/pids/*; do
    [[ -f $f ]] || continue
    pid=$(cat "$f"); [[ $pid =~ ^[0-9]+$ ]] || continue
    kill -0 "$pid" 2>/dev/null && quiet kill -KILL "$pid"
  done
fi
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $RUN/containerd.sock" 2>/dev/null || true); do quiet kill -KILL "$pid"; done
for h in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/unified/"$CGROUP_ROOT"; do
  [[ -d $h ]] || continue
  while read -r p; do [[ -n $p ]] && quiet kill -KILL "$p"; done < <(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null)
done
if [[ -d $RUN/runc ]]; then
  for ns in "$RUN"/runc/*; do
    [[ -d $ns ]] || continue
    for id in $(runc --root "$ns" list -q 2>/dev/null || true); do quiet runc --root "$ns" delete --force "$id"; done
  done
fi

# 2. Mounts below our directories and the pods' network namespaces, deepest first.
mapfile -t mounts < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($NODE_ROOT|$RUN|/run/netns/cni-|/var/run/netns/cni-)" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- || true)
for m in "${mounts[@]}"; do quiet umount -l "$m"; done
for ns in /run/netns/cni-*; do [[ -e $ns ]] && quiet rm -f "$ns"; done

# 3. Cgroups (empty now), deepest first.
for h in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/unified/"$CGROUP_ROOT"; do
  [[ -d $h ]] || continue
  find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# 4. iptables: drop every chain named KUBE-* or CNI-* and every rule that uses one, keeping the
#    rest of each table exactly as it is (one atomic restore per table).
filter_rules() { grep -vE '^:(KUBE-|CNI-)|^-A (KUBE-|CNI-)|-j (KUBE-|CNI-)|-g (KUBE-|CNI-)'; }
for tool in iptables ip6tables; do
  command -v "$tool-save" >/dev/null 2>&1 || continue
  for table in filter nat mangle; do
    dump=$("$tool-save" -t "$table" 2>/dev/null) || continue
    grep -qE 'KUBE-|CNI-' <<<"$dump" || continue
    if [[ -n $dry ]]; then echo "would: remove KUBE-/CNI- chains from $tool $table"; continue; fi
    filter_rules <<<"$dump" | "$tool-restore" -T "$table" 2>/dev/null || filter_rules <<<"$dump" | "$tool-restore"
  done
done
# kube-proxy's nftables tables, should a mode switch have left them.
if command -v nft >/dev/null 2>&1; then
  for fam in ip ip6; do nft list table "$fam" kube-proxy >/dev/null 2>&1 && quiet nft delete table "$fam" kube-proxy; done
fi

# 5. Bridge and conntrack entries of the pod network.
ip link show "$BRIDGE" >/dev/null 2>&1 && quiet ip link delete "$BRIDGE"
command -v conntrack >/dev/null 2>&1 && quiet conntrack -D -s 10.89.0.0/24

# 6. Sysctls kubelet and the bridge plugin changed, restored to what they were before the first start.
if [[ -f $RUN/sysctl-orig ]]; then
  while IFS='=' read -r key value; do
    [[ -n $key ]] && quiet sysctl -qw "$key=$value"
  done < "$RUN/sysctl-orig"
fi

# 7. Files: state dirs, kubelet's fixed paths, CNI caches of our network.
for link in /var/log/containers/*; do
  [[ -L $link ]] && [[ $(readlink "$link") == "$NODE_ROOT"/* ]] && quiet rm -f "$link"
done
quiet rm -rf /var/lib/cni/results/"$CNI_NETWORK"-* /var/lib/cni/networks/"$CNI_NETWORK"
if [[ -f $RUN/created-paths ]]; then
  while read -r p; do [[ -n $p ]] && quiet rm -rf "$p"; done < "$RUN/created-paths"
fi
quiet rm -rf "$NODE_ROOT/kubelet" "$NODE_ROOT/pod-logs" "$NODE_ROOT/local-path"
[[ -n $purge_images ]] && quiet rm -rf "$NODE_ROOT/containerd"
quiet rm -rf "$RUN"
exit 0
