#!/usr/bin/env bash
# Creates the Kubernetes Secrets an orchestrator agent needs to act on GitHub:
#   github-ssh-<user>    keys ssh-privatekey, ssh-publickey   (git over SSH)
#   github-token-<user>  key  token                           (GitHub API, gh)
#   github-app-<app>     keys app-id, private-key[, installation-id]   (GitHub App identity)
# Idempotent: running it again with the same inputs changes nothing and says "unchanged".
# The token never reaches a command line (ps shows argv) nor the script's output: it goes to
# kubectl through a 0600 temporary file.
set -euo pipefail

readonly PROG="${0##*/}"
readonly FIELD_MANAGER="setup-agent-secrets"
readonly PART_OF_LABEL="app.kubernetes.io/part-of=orchestrator"
readonly MANAGED_BY_LABEL="app.kubernetes.io/managed-by=setup-agent-secrets"

# Exit codes (also printed by --help). Each failure has its own, so automation can tell them apart.
readonly E_USAGE=2        # unknown option, or an option without its value
readonly E_MISSING=3      # a required option is missing
readonly E_INVALID=4      # an option value is malformed (user, app name, app id)
readonly E_SSH_KEY=5      # the SSH private key is missing or unreadable
readonly E_SSH_PUB=6      # <key>.pub is missing or unreadable
readonly E_TOKEN=7        # the token is empty
readonly E_APP_KEY=8      # the GitHub App private key is missing, unreadable or not a PEM key
readonly E_KUBECTL=9      # kubectl is not on PATH
readonly E_CLUSTER=10     # the cluster cannot be reached (KUBECONFIG / --context)
readonly E_NAMESPACE=11   # the namespace does not exist
readonly E_APPLY=12       # the API server rejected a Secret

usage() {
  cat <<EOF
Usage:
  $PROG --user <github-user> --ssh-key <private-key> --token <token> [options]
  $PROG --app <app-name> --app-id <id> --private-key <app-key.pem> [options]
  (both forms can be combined in one call)

Creates or updates, in the namespace the orchestrator runs agents in:
  github-ssh-<user>    keys ssh-privatekey, ssh-publickey (from <private-key> and <private-key>.pub)
  github-token-<user>  key token
  github-app-<app>     keys app-id, private-key[, installation-id]   (<app> lowercased)
All are labelled $PART_OF_LABEL. Running it again with the same inputs
changes nothing ("unchanged").

Agent identity (GitHub user):
  --user <name>           GitHub user name, as used in CodeRun spec.githubUser
  --ssh-key <path>        SSH private key added to that GitHub account; <path>.pub must exist
  --token <token>         GitHub personal access token with repo scope (ghp_... or github_pat_...)
  --token-file <path|->   read the token from a file, or from stdin with '-', instead of --token
                          (keeps it out of your shell history and of 'ps')

Agent identity (GitHub App):
  --app <name>            GitHub App name, as used in CodeRun spec.githubApp
  --app-id <id>           numeric App ID
  --private-key <path>    the App's private key (PEM)
  --installation-id <id>  optional installation ID (otherwise looked up per repository)

Options:
  --namespace <ns>        namespace of the secrets (default: orchestrator); must exist
  --context <name>        kubeconfig context to use (KUBECONFIG is respected)
  --dry-run               validate the inputs and show what would be applied; change nothing
  --verbose               print the kubectl commands run (never the token)
  -h, --help              show this help

Exit codes:
  0   success
  $E_USAGE   unknown option, or an option without its value
  $E_MISSING   a required option is missing
  $E_INVALID   malformed value (user or app name, app id, installation id)
  $E_SSH_KEY   SSH private key missing or unreadable
  $E_SSH_PUB   SSH public key <key>.pub missing or unreadable
  $E_TOKEN   token empty
  $E_APP_KEY   GitHub App private key missing, unreadable or not a PEM private key
  $E_KUBECTL   kubectl not found on PATH
  $E_CLUSTER  cluster unreachable (check KUBECONFIG / --context)
  $E_NAMESPACE  namespace does not exist
  $E_APPLY  the API server rejected a Secret

Examples:
  $PROG --user alice --ssh-key ~/.ssh/alice_github --token ghp_xxx
  $PROG --user alice --ssh-key ~/.ssh/alice_github --token-file - < token.txt
  $PROG --app 5DLabs-Rex --app-id 123456 --private-key ~/rex.private-key.pem --namespace agents
EOF
}

# --- output helpers ------------------------------------------------------------------------

TOKEN=""
TOKEN_B64=""

# Removes the token (and its base64 form) from text that came from kubectl, in case an error
# message ever quotes it.
redact() {
  local text="$1"
  if [[ -n "$TOKEN" ]]; then text="${text//"$TOKEN"/***}"; fi
  if [[ -n "$TOKEN_B64" ]]; then text="${text//"$TOKEN_B64"/***}"; fi
  printf '%s' "$text"
}

info() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
verbose() { if [[ "$VERBOSE" == true ]]; then printf '+ %s\n' "$*" >&2; fi; }
die() {
  local code="$1"; shift
  printf 'ERROR: %s\n' "$*" >&2
  exit "$code"
}

# --- arguments -----------------------------------------------------------------------------

USER_NAME=""
SSH_KEY=""
TOKEN_SET=false
TOKEN_FILE=""
APP=""
APP_ID=""
APP_KEY=""
INSTALLATION_ID=""
NAMESPACE="orchestrator"
CONTEXT=""
DRY_RUN=false
VERBOSE=false

# need_value <option> <remaining-arg-count> [value]: the option must be followed by a value.
need_value() {
  if [[ "$2" -lt 2 || "${3-}" == --* ]]; then
    die "$E_USAGE" "$1 needs a value. Run '$PROG --help' for usage."
  fi
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --user) need_value "$1" $# "${2-}"; USER_NAME="$2"; shift 2 ;;
    --ssh-key) need_value "$1" $# "${2-}"; SSH_KEY="$2"; shift 2 ;;
    --token)
      # An empty --token "" is a value (reported as "token is empty" below), not a missing one.
      if [[ $# -lt 2 || "$2" == --* ]]; then die "$E_USAGE" "--token needs a value. Run '$PROG --help' for usage."; fi
      TOKEN="$2"; TOKEN_SET=true; shift 2 ;;
    --token-file) need_value "$1" $# "${2-}"; TOKEN_FILE="$2"; shift 2 ;;
    --app) need_value "$1" $# "${2-}"; APP="$2"; shift 2 ;;
    --app-id) need_value "$1" $# "${2-}"; APP_ID="$2"; shift 2 ;;
    --private-key) need_value "$1" $# "${2-}"; APP_KEY="$2"; shift 2 ;;
    --installation-id) need_value "$1" $# "${2-}"; INSTALLATION_ID="$2"; shift 2 ;;
    --namespace|-n) need_value "$1" $# "${2-}"; NAMESPACE="$2"; shift 2 ;;
    --context) need_value "$1" $# "${2-}"; CONTEXT="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --verbose|-v) VERBOSE=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "$E_USAGE" "unknown option '$1'. Run '$PROG --help' for usage." ;;
  esac
done

expand_path() {
  local p="$1"
  # A quoted path ("~/.ssh/key") reaches us with the tilde unexpanded.
  # shellcheck disable=SC2088
  if [[ "$p" == "~" ]]; then p="$HOME"; elif [[ "$p" == "~/"* ]]; then p="$HOME/${p#"~/"}"; fi
  printf '%s' "$p"
}

# --- validation (local) --------------------------------------------------------------------

DO_USER=false
DO_APP=false
if [[ -n "$USER_NAME" || -n "$SSH_KEY" || "$TOKEN_SET" == true || -n "$TOKEN_FILE" ]]; then DO_USER=true; fi
if [[ -n "$APP" || -n "$APP_ID" || -n "$APP_KEY" || -n "$INSTALLATION_ID" ]]; then DO_APP=true; fi

if [[ "$DO_USER" == false && "$DO_APP" == false ]]; then
  die "$E_MISSING" "missing --user, --ssh-key and --token (or --app, --app-id and --private-key for a GitHub App). Run '$PROG --help' for usage."
fi

readonly DNS_LABEL='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

if [[ "$DO_USER" == true ]]; then
  missing=()
  [[ -n "$USER_NAME" ]] || missing+=("--user <github-user>")
  [[ -n "$SSH_KEY" ]] || missing+=("--ssh-key <private-key>")
  [[ "$TOKEN_SET" == true || -n "$TOKEN_FILE" ]] || missing+=("--token <token> (or --token-file <path|->)")
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "$E_MISSING" "missing $(printf '%s, ' "${missing[@]}" | sed 's/, $//'). Run '$PROG --help' for usage."
  fi
  if [[ "$TOKEN_SET" == true && -n "$TOKEN_FILE" ]]; then
    die "$E_USAGE" "use either --token or --token-file, not both."
  fi
  # The controller names the secrets github-ssh-<user> / github-token-<user> verbatim, and
  # Secret names must be lowercase DNS names.
  if [[ ! "$USER_NAME" =~ $DNS_LABEL || ${#USER_NAME} -gt 50 ]]; then
    die "$E_INVALID" "--user '$USER_NAME' cannot be part of a Secret name (github-ssh-<user>): use lowercase letters, digits and '-' (at most 50), and the same spelling in CodeRun spec.githubUser."
  fi

  SSH_KEY="$(expand_path "$SSH_KEY")"
  if [[ "$SSH_KEY" == *.pub ]]; then
    die "$E_SSH_KEY" "--ssh-key $SSH_KEY looks like a public key: pass the private key; its .pub file is read next to it."
  fi
  if [[ ! -f "$SSH_KEY" ]]; then
    die "$E_SSH_KEY" "SSH private key $SSH_KEY does not exist. Create one with: ssh-keygen -t ed25519 -f $SSH_KEY -N '' and add $SSH_KEY.pub to the GitHub account of '$USER_NAME'."
  fi
  if [[ ! -r "$SSH_KEY" ]]; then
    die "$E_SSH_KEY" "SSH private key $SSH_KEY is not readable by $(id -un): fix its permissions (chmod 600, owned by you)."
  fi
  if [[ ! -f "$SSH_KEY.pub" ]]; then
    die "$E_SSH_PUB" "SSH public key $SSH_KEY.pub does not exist. Recreate it with: ssh-keygen -y -f $SSH_KEY > $SSH_KEY.pub"
  fi
  if [[ ! -r "$SSH_KEY.pub" ]]; then
    die "$E_SSH_PUB" "SSH public key $SSH_KEY.pub is not readable by $(id -un): fix its permissions (chmod 644)."
  fi

  if [[ -n "$TOKEN_FILE" ]]; then
    if [[ "$TOKEN_FILE" == "-" ]]; then
      TOKEN="$(cat)"
    else
      TOKEN_FILE="$(expand_path "$TOKEN_FILE")"
      [[ -r "$TOKEN_FILE" ]] || die "$E_TOKEN" "token file $TOKEN_FILE does not exist or is not readable."
      TOKEN="$(cat -- "$TOKEN_FILE")"
    fi
  fi
  # Tolerate the trailing newline of a token file or `echo`.
  TOKEN="${TOKEN%$'\n'}"; TOKEN="${TOKEN%$'\r'}"
  if [[ -z "${TOKEN//[[:space:]]/}" ]]; then
    die "$E_TOKEN" "the GitHub token is empty: pass a personal access token with repo scope (--token ghp_... or --token-file <path>)."
  fi
  if [[ "$TOKEN" =~ [[:space:]] ]]; then
    die "$E_TOKEN" "the GitHub token contains whitespace: pass the token alone (the value of --token or the only line of --token-file)."
  fi
  TOKEN_B64="$(printf '%s' "$TOKEN" | base64 | tr -d '\n')"
  if [[ ! "$TOKEN" =~ ^ghp_[A-Za-z0-9_]{36,}$ && ! "$TOKEN" =~ ^github_pat_[A-Za-z0-9_]{20,}$ ]]; then
    warn "the token does not look like a GitHub personal access token (ghp_... or github_pat_...); using it anyway."
  fi
fi

APP_SECRET=""
if [[ "$DO_APP" == true ]]; then
  missing=()
  [[ -n "$APP" ]] || missing+=("--app <app-name>")
  [[ -n "$APP_ID" ]] || missing+=("--app-id <id>")
  [[ -n "$APP_KEY" ]] || missing+=("--private-key <app-key.pem>")
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "$E_MISSING" "missing $(printf '%s, ' "${missing[@]}" | sed 's/, $//') for the GitHub App. Run '$PROG --help' for usage."
  fi
  APP_SECRET="github-app-$(printf '%s' "$APP" | tr '[:upper:]' '[:lower:]')"
  if [[ ! "${APP_SECRET#github-app-}" =~ $DNS_LABEL || ${#APP_SECRET} -gt 63 ]]; then
    die "$E_INVALID" "--app '$APP' cannot be part of a Secret name ($APP_SECRET): use letters, digits and '-' (it is lowercased)."
  fi
  if [[ ! "$APP_ID" =~ ^[0-9]+$ ]]; then
    die "$E_INVALID" "--app-id '$APP_ID' must be the App's numeric ID (GitHub: Settings > Developer settings > GitHub Apps > App ID)."
  fi
  if [[ -n "$INSTALLATION_ID" && ! "$INSTALLATION_ID" =~ ^[0-9]+$ ]]; then
    die "$E_INVALID" "--installation-id '$INSTALLATION_ID' must be numeric."
  fi
  APP_KEY="$(expand_path "$APP_KEY")"
  if [[ ! -f "$APP_KEY" || ! -r "$APP_KEY" ]]; then
    die "$E_APP_KEY" "GitHub App private key $APP_KEY does not exist or is not readable: download it from the App's settings page (Private keys > Generate)."
  fi
  if ! grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$APP_KEY"; then
    die "$E_APP_KEY" "$APP_KEY is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line): pass the .pem file GitHub generated for the App."
  fi
fi

# --- cluster checks ------------------------------------------------------------------------

if ! command -v kubectl >/dev/null 2>&1; then
  die "$E_KUBECTL" "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/) or add its directory to PATH."
fi

KUBECTL=(kubectl --request-timeout=15s)
if [[ -n "$CONTEXT" ]]; then KUBECTL+=(--context "$CONTEXT"); fi

WORKDIR="$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/setup-agent-secrets.XXXXXX")"
trap 'rm -rf "$WORKDIR"' EXIT

# kc <args...>: runs kubectl; stdout to $WORKDIR/out, stderr to $WORKDIR/err (both redacted on print).
kc() {
  verbose "${KUBECTL[*]} $*"
  "${KUBECTL[@]}" "$@" >"$WORKDIR/out" 2>"$WORKDIR/err"
}

# One request checks both that the cluster answers and that the namespace exists.
# kubectl's last error line, without client-go's klog noise ("E1126 06:56:33 ... memcache.go").
kubectl_error() {
  grep -v -E '^[EWI][0-9]{4} ' "$WORKDIR/err" | tail -n 2 || true
}

if [[ "$DRY_RUN" == false ]] && ! kc get namespace "$NAMESPACE" -o name; then
  if grep -q '(NotFound)' "$WORKDIR/err"; then
    die "$E_NAMESPACE" "namespace '$NAMESPACE' does not exist. Create it (kubectl create namespace $NAMESPACE), install the chart there, or pass --namespace <ns>."
  elif grep -q '(Forbidden)' "$WORKDIR/err"; then
    warn "not allowed to read namespace '$NAMESPACE'; trying to create the secrets anyway."
  else
    die "$E_CLUSTER" "cannot reach the Kubernetes cluster${CONTEXT:+ of context $CONTEXT} (KUBECONFIG=${KUBECONFIG:-~/.kube/config}): $(redact "$(kubectl_error)")
Check KUBECONFIG or --context, and that 'kubectl get namespaces' works."
  fi
fi

# --- apply ---------------------------------------------------------------------------------

# apply_secret <name> <description of keys> <kubectl create secret generic args...>
# Renders the Secret client-side, labels it and server-side applies it; reports created /
# updated / unchanged from the resourceVersion.
apply_secret() {
  local name="$1" keys="$2"; shift 2
  if [[ "$DRY_RUN" == true ]]; then
    info "DRY RUN: would apply Secret $name in namespace $NAMESPACE (keys: $keys)"
    verbose "${KUBECTL[*]} create secret generic $name -n $NAMESPACE $* --dry-run=client -o yaml (+ labels) | ${KUBECTL[*]} apply --server-side -f -"
    return 0
  fi
  local before="" after=""
  if kc get secret "$name" -n "$NAMESPACE" -o 'jsonpath={.metadata.resourceVersion}'; then
    before="$(cat "$WORKDIR/out")"
  fi
  kc create secret generic "$name" -n "$NAMESPACE" "$@" --dry-run=client -o yaml \
    || die "$E_APPLY" "could not render Secret $name: $(redact "$(kubectl_error)")"
  # Add the labels under metadata (what `kubectl label --local` would do, one process less).
  sed -e "s|^metadata:\$|metadata:\n  labels:\n    ${PART_OF_LABEL/=/: }\n    ${MANAGED_BY_LABEL/=/: }|" "$WORKDIR/out" >"$WORKDIR/manifest.yaml"
  rm -f "$WORKDIR/out"
  # Server-side apply: no last-applied-configuration annotation (which would hold a second copy
  # of the data), and no write at all when nothing changed.
  if ! kc apply --server-side --force-conflicts --field-manager="$FIELD_MANAGER" -f "$WORKDIR/manifest.yaml" -o 'jsonpath={.metadata.resourceVersion}'; then
    rm -f "$WORKDIR/manifest.yaml"
    die "$E_APPLY" "the API server rejected Secret $name in namespace $NAMESPACE: $(redact "$(kubectl_error)")
Check that you may create secrets there (kubectl auth can-i create secrets -n $NAMESPACE)."
  fi
  rm -f "$WORKDIR/manifest.yaml"
  after="$(cat "$WORKDIR/out")"
  if [[ -z "$before" ]]; then
    info "Created secret $name in namespace $NAMESPACE (keys: $keys)"
  elif [[ "$before" == "$after" ]]; then
    info "Secret $name in namespace $NAMESPACE is unchanged"
  else
    info "Updated secret $name in namespace $NAMESPACE (keys: $keys)"
  fi
}

if [[ "$DO_USER" == true ]]; then
  apply_secret "github-ssh-$USER_NAME" "ssh-privatekey, ssh-publickey" \
    --from-file=ssh-privatekey="$SSH_KEY" --from-file=ssh-publickey="$SSH_KEY.pub"
  # The token goes through a 0600 file in a 0700 directory, never through argv.
  (umask 077 && printf '%s' "$TOKEN" >"$WORKDIR/token")
  apply_secret "github-token-$USER_NAME" "token" --from-file=token="$WORKDIR/token"
  rm -f "$WORKDIR/token"
fi

if [[ "$DO_APP" == true ]]; then
  app_args=(--from-literal=app-id="$APP_ID" --from-file=private-key="$APP_KEY")
  app_keys="app-id, private-key"
  if [[ -n "$INSTALLATION_ID" ]]; then
    app_args+=(--from-literal=installation-id="$INSTALLATION_ID")
    app_keys+=", installation-id"
  fi
  apply_secret "$APP_SECRET" "$app_keys" "${app_args[@]}"
fi

# --- next steps ----------------------------------------------------------------------------

if [[ "$DRY_RUN" == true ]]; then
  info "DRY RUN: nothing was changed."
  exit 0
fi

info ""
info "Verify:"
info "  kubectl get secrets -n $NAMESPACE -l $PART_OF_LABEL"
if [[ "$DO_USER" == true ]]; then
  info "Use it in a CodeRun (spec.githubUser) or a REST submission (github_user):"
  info "  githubUser: \"$USER_NAME\""
  info "The SSH key must be added to the GitHub account '$USER_NAME', and the token needs repo scope."
fi
if [[ "$DO_APP" == true ]]; then
  info "Use it in a CodeRun (spec.githubApp) or a REST submission (github_app):"
  info "  githubApp: \"$APP\""
fi
