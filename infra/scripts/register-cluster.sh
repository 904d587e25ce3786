#!/usr/bin/env bash
# Registers an execution cluster with the orchestrator (docs/clusters.md):
#   in the execution cluster: namespace <ns>, ServiceAccount orchestrator-executor with a Role
#     allowing exactly what the controller does there (Jobs, Pods, ConfigMaps, claims, Secret
#     keys, Events), and a long-lived token for it;
#   in the home cluster (where the controller runs): Secret cluster-<name> in <ns>, labelled
#     orchestrator.platform/cluster=<name>, whose `kubeconfig` key reaches the execution
#     cluster as that ServiceAccount (token and CA inline: the controller refuses file paths
#     and exec plugins);
#   with --copy-api-key: the model API key Secret copied from the home cluster to the execution
#     cluster (agent pods mount it there; the controller itself never copies credentials).
# The agents' GitHub Secrets go to the execution cluster with setup-agent-secrets.sh --context.
# Idempotent: running it again changes nothing ("unchanged"). Tokens never reach a command line.
set -euo pipefail

readonly PROG="${0##*/}"
readonly FIELD_MANAGER="register-cluster"
readonly CLUSTER_LABEL="orchestrator.platform/cluster"
readonly SA="orchestrator-executor"

readonly E_USAGE=2       # unknown option, or an option without its value
readonly E_MISSING=3     # a required option is missing
readonly E_INVALID=4     # the cluster name is not a DNS label, or is "home"
readonly E_KUBECTL=9     # kubectl is not on PATH
readonly E_EXEC=10       # the execution cluster cannot be reached or refused a change
readonly E_HOME=11       # the home cluster cannot be reached, lacks the namespace, or refused the Secret
readonly E_TOKEN=12      # the ServiceAccount token was not issued in time
readonly E_API_KEY=13    # --copy-api-key: the API key Secret is missing in the home cluster

usage() {
  cat <<EOF
Usage:
  $PROG --name <cluster> (--context <ctx> | --kubeconfig <file>) [options]

Registers an execution cluster: a ServiceAccount with a minimal Role in the execution cluster,
and the cluster Secret (label $CLUSTER_LABEL=<cluster>, key kubeconfig) in the home
cluster, where the controller runs. Runs choose it with spec.cluster: <cluster> (or the REST
field cluster), or per service with controller.clusters.serviceDefaults.

Execution cluster:
  --name <cluster>          its name for runs (a DNS label; "home" is the controller's own)
  --context <ctx>           kubeconfig context of the execution cluster
  --kubeconfig <file>       kubeconfig file of the execution cluster (default: KUBECONFIG)
  --server <url>            API server URL as the controller reaches it (default: the context's)

Home cluster (the controller's):
  --home-context <ctx>      kubeconfig context of the home cluster (default: current context)
  --home-kubeconfig <file>  kubeconfig file of the home cluster (default: KUBECONFIG)

Options:
  --namespace <ns>          the controller's namespace; the same name is used in the execution
                            cluster, created there if missing (default: orchestrator)
  --copy-api-key            copy the model API key Secret from the home cluster (see --api-key-secret)
  --api-key-secret <name>   its name (default: orchestrator-secrets, the chart's)
  --dry-run                 check the inputs and show what would be applied; change nothing
  --verbose                 print the kubectl commands run (never a token)
  -h, --help                show this help

Exit codes:
  0   success
  $E_USAGE   unknown option, or an option without its value
  $E_MISSING   a required option is missing
  $E_INVALID   the cluster name is not a DNS label, or is "home"
  $E_KUBECTL   kubectl not found on PATH
  $E_EXEC  the execution cluster is unreachable or refused a change
  $E_HOME  the home cluster is unreachable, lacks the namespace, or refused the Secret
  $E_TOKEN  the ServiceAccount token was not issued within 60 s
  $E_API_KEY  --copy-api-key: the API key Secret does not exist in the home cluster

Then create the agents' Secrets in the execution cluster:
  setup-agent-secrets.sh --context <ctx> --namespace <ns> --user <github-user> ...
EOF
}

info() { printf '%s\n' "$*"; }
verbose() { if [[ "$VERBOSE" == true ]]; then printf '+ %s\n' "$*" >&2; fi; }
die() {
  local code="$1"; shift
  printf 'ERROR: %s\n' "$*" >&2
  exit "$code"
}

NAME=""
CONTEXT=""
KUBECONFIG_FILE=""
SERVER=""
HOME_CONTEXT=""
HOME_KUBECONFIG=""
NAMESPACE="orchestrator"
COPY_API_KEY=false
API_KEY_SECRET="orchestrator-secrets"
DRY_RUN=false
VERBOSE=false

need_value() {
  if [[ "$2" -lt 2 || "${3-}" == --* ]]; then die "$E_USAGE" "$1 needs a value. Run '$PROG --help' for usage."; fi
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" $# "${2-}"; NAME="$2"; shift 2 ;;
    --context) need_value "$1" $# "${2-}"; CONTEXT="$2"; shift 2 ;;
    --kubeconfig) need_value "$1" $# "${2-}"; KUBECONFIG_FILE="$2"; shift 2 ;;
    --server) need_value "$1" $# "${2-}"; SERVER="$2"; shift 2 ;;
    --home-context) need_value "$1" $# "${2-}"; HOME_CONTEXT="$2"; shift 2 ;;
    --home-kubeconfig) need_value "$1" $# "${2-}"; HOME_KUBECONFIG="$2"; shift 2 ;;
    --namespace|-n) need_value "$1" $# "${2-}"; NAMESPACE="$2"; shift 2 ;;
    --copy-api-key) COPY_API_KEY=true; shift ;;
    --api-key-secret) need_value "$1" $# "${2-}"; API_KEY_SECRET="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --verbose|-v) VERBOSE=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "$E_USAGE" "unknown option '$1'. Run '$PROG --help' for usage." ;;
  esac
done

[[ -n "$NAME" ]] || die "$E_MISSING" "missing --name <cluster>. Run '$PROG --help' for usage."
if [[ -z "$CONTEXT" && -z "$KUBECONFIG_FILE" ]]; then
  die "$E_MISSING" "missing --context <ctx> or --kubeconfig <file> of the execution cluster (the home cluster is the default context; registering it is not needed)."
fi
readonly DNS_LABEL='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
if [[ ! "$NAME" =~ $DNS_LABEL || ${#NAME} -gt 63 ]]; then
  die "$E_INVALID" "--name '$NAME' must be a DNS label (lowercase letters, digits, '-', at most 63): it is the value of spec.cluster and of the $CLUSTER_LABEL label."
fi
[[ "$NAME" != "home" ]] || die "$E_INVALID" "--name home is the controller's own cluster, which needs no registration; choose another name."
if [[ ! "$NAMESPACE" =~ $DNS_LABEL ]]; then die "$E_INVALID" "--namespace '$NAMESPACE' must be a DNS label."; fi

command -v kubectl >/dev/null 2>&1 || die "$E_KUBECTL" "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/) or add its directory to PATH."

EXEC=(kubectl --request-timeout=15s)
[[ -z "$KUBECONFIG_FILE" ]] || EXEC+=(--kubeconfig "$KUBECONFIG_FILE")
[[ -z "$CONTEXT" ]] || EXEC+=(--context "$CONTEXT")
HOME_KC=(kubectl --request-timeout=15s)
[[ -z "$HOME_KUBECONFIG" ]] || HOME_KC+=(--kubeconfig "$HOME_KUBECONFIG")
[[ -z "$HOME_CONTEXT" ]] || HOME_KC+=(--context "$HOME_CONTEXT")

WORKDIR="$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/register-cluster.XXXXXX")"
trap 'rm -rf "$WORKDIR"' EXIT

# run <exit-code> <what> <kubectl...> <args...>: stdout to $WORKDIR/out; on failure dies with kubectl's last error line.
run() {
  local code="$1" what="$2"; shift 2
  verbose "$*"
  if ! "$@" >"$WORKDIR/out" 2>"$WORKDIR/err"; then
    die "$code" "$what: $(grep -v -E '^[EWI][0-9]{4} ' "$WORKDIR/err" | tail -n 2)"
  fi
}

# The execution cluster's objects, applied server-side (idempotent).
exec_manifest() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NAMESPACE}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: $SA, namespace: $NAMESPACE, labels: {app.kubernetes.io/part-of: orchestrator}}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: $SA, namespace: $NAMESPACE, labels: {app.kubernetes.io/part-of: orchestrator}}
rules:
  - {apiGroups: [batch], resources: [jobs], verbs: [get, list, watch, create, delete, deletecollection]}
  - {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [pods/log], verbs: [get]}
  - {apiGroups: [""], resources: [configmaps], verbs: [create, delete, deletecollection]}
  - {apiGroups: [""], resources: [persistentvolumeclaims], verbs: [get, list, watch, create]}
  - {apiGroups: [""], resources: [secrets], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: $SA, namespace: $NAMESPACE, labels: {app.kubernetes.io/part-of: orchestrator}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: $SA}
subjects: [{kind: ServiceAccount, name: $SA, namespace: $NAMESPACE}]
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: $SA-token
  namespace: $NAMESPACE
  annotations: {kubernetes.io/service-account.name: $SA}
  labels: {app.kubernetes.io/part-of: orchestrator}
EOF
}

if [[ "$DRY_RUN" == true ]]; then
  info "DRY RUN: would apply in the execution cluster${CONTEXT:+ (context $CONTEXT)}: Namespace $NAMESPACE, ServiceAccount/Role/RoleBinding $SA, Secret $SA-token"
  info "DRY RUN: would apply in the home cluster${HOME_CONTEXT:+ (context $HOME_CONTEXT)}: Secret cluster-$NAME in $NAMESPACE (label $CLUSTER_LABEL=$NAME, key kubeconfig)"
  if [[ "$COPY_API_KEY" == true ]]; then info "DRY RUN: would copy Secret $API_KEY_SECRET from the home cluster to the execution cluster"; fi
  info "DRY RUN: nothing was changed."
  exit 0
fi

# The home cluster first: fail before touching the execution cluster when the controller's namespace is not there.
run "$E_HOME" "cannot read namespace $NAMESPACE in the home cluster (install the chart there, or pass --namespace / --home-context)" \
  "${HOME_KC[@]}" get namespace "$NAMESPACE" -o name

# Server and CA as the execution context knows them.
run "$E_EXEC" "cannot read the execution cluster's kubeconfig entry${CONTEXT:+ for context $CONTEXT}" \
  "${EXEC[@]}" config view --minify --raw -o 'jsonpath={.clusters[0].cluster.server}{"\n"}{.clusters[0].cluster.certificate-authority-data}{"\n"}{.clusters[0].cluster.certificate-authority}'
{ read -r CTX_SERVER; read -r CA_DATA; read -r CA_FILE || true; } <"$WORKDIR/out"
SERVER="${SERVER:-$CTX_SERVER}"
if [[ -z "$CA_DATA" && -n "$CA_FILE" ]]; then CA_DATA="$(base64 <"$CA_FILE" | tr -d '\n')"; fi
[[ -n "$SERVER" ]] || die "$E_EXEC" "the execution context has no server URL; pass --server <url>."

exec_manifest >"$WORKDIR/exec.yaml"
run "$E_EXEC" "the execution cluster refused the ServiceAccount, Role or token Secret (are you allowed to create RBAC in $NAMESPACE?)" \
  "${EXEC[@]}" apply --server-side --force-conflicts --field-manager="$FIELD_MANAGER" -f "$WORKDIR/exec.yaml"
info "Applied in the execution cluster: Namespace $NAMESPACE, ServiceAccount/Role/RoleBinding $SA, Secret $SA-token"

# The token controller fills the Secret moments after it exists.
TOKEN=""
for _ in $(seq 1 120); do
  if "${EXEC[@]}" get secret "$SA-token" -n "$NAMESPACE" -o 'jsonpath={.data.token}' >"$WORKDIR/token.b64" 2>"$WORKDIR/err" && [[ -s "$WORKDIR/token.b64" ]]; then
    TOKEN="$(base64 -d <"$WORKDIR/token.b64")"
    break
  fi
  sleep 0.5
done
[[ -n "$TOKEN" ]] || die "$E_TOKEN" "Secret $SA-token in the execution cluster got no token within 60 s: is kube-controller-manager running there (its token controller issues it)?"

# The kubeconfig goes into a 0600 file and from there into the Secret: never onto a command line.
(umask 077 && cat >"$WORKDIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $NAME
    cluster:
      server: $SERVER
$(if [[ -n "$CA_DATA" ]]; then printf '      certificate-authority-data: %s\n' "$CA_DATA"; fi)
users:
  - name: $SA
    user:
      token: $TOKEN
contexts:
  - name: $NAME
    context: {cluster: $NAME, user: $SA, namespace: $NAMESPACE}
current-context: $NAME
EOF
)

# apply_secret <kubectl...> -- <name> <labels> <create secret args...>: render client-side, apply server-side.
apply_secret() {
  local kc=() ; while [[ "$1" != "--" ]]; do kc+=("$1"); shift; done; shift
  local name="$1" labels="$2" code="$3"; shift 3
  run "$code" "could not render Secret $name" "${kc[@]}" create secret generic "$name" -n "$NAMESPACE" "$@" --dry-run=client -o yaml
  sed -e "s|^metadata:\$|metadata:\n  labels:\n$labels|" "$WORKDIR/out" >"$WORKDIR/secret.yaml"
  run "$code" "the API server refused Secret $name in $NAMESPACE" \
    "${kc[@]}" apply --server-side --force-conflicts --field-manager="$FIELD_MANAGER" -f "$WORKDIR/secret.yaml"
  rm -f "$WORKDIR/secret.yaml"
}

apply_secret "${HOME_KC[@]}" -- "cluster-$NAME" "    $CLUSTER_LABEL: $NAME\n    app.kubernetes.io/part-of: orchestrator" "$E_HOME" \
  --from-file=kubeconfig="$WORKDIR/kubeconfig"
rm -f "$WORKDIR/kubeconfig"
info "Applied in the home cluster: Secret cluster-$NAME in $NAMESPACE (label $CLUSTER_LABEL=$NAME)"

if [[ "$COPY_API_KEY" == true ]]; then
  if ! "${HOME_KC[@]}" get secret "$API_KEY_SECRET" -n "$NAMESPACE" -o 'go-template={{range $k, $v := .data}}{{$k}}{{"="}}{{$v}}{{"\n"}}{{end}}' >"$WORKDIR/apikey" 2>"$WORKDIR/err"; then
    die "$E_API_KEY" "Secret $API_KEY_SECRET does not exist in namespace $NAMESPACE of the home cluster: set secrets.anthropicApiKey in the chart, or pass --api-key-secret <name>."
  fi
  args=()
  while IFS='=' read -r key value; do
    [[ -n "$key" ]] || continue
    printf '%s' "$value" | base64 -d >"$WORKDIR/key-$key"
    args+=(--from-file="$key=$WORKDIR/key-$key")
  done <"$WORKDIR/apikey"
  apply_secret "${EXEC[@]}" -- "$API_KEY_SECRET" "    app.kubernetes.io/part-of: orchestrator" "$E_EXEC" "${args[@]}"
  info "Copied Secret $API_KEY_SECRET (keys only shown: $(cut -d= -f1 "$WORKDIR/apikey" | paste -sd, -)) to the execution cluster"
fi

info ""
info "Runs choose it with spec.cluster: $NAME (REST: \"cluster\": \"$NAME\")."
info "Create the agents' GitHub Secrets there too:"
info "  setup-agent-secrets.sh${CONTEXT:+ --context $CONTEXT} --namespace $NAMESPACE --user <github-user> --ssh-key <key> --token-file <file>"
