{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "orchestrator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name ("orchestrator"), otherwise
"<release>-<chart>". The seed's commands rely on svc/orchestrator and deployment/orchestrator.
*/}}
{{- define "orchestrator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "orchestrator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "orchestrator.labels" -}}
helm.sh/chart: {{ include "orchestrator.chart" . }}
{{ include "orchestrator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: orchestrator
{{- end }}

{{- define "orchestrator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orchestrator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "orchestrator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "orchestrator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The namespace the controller watches and runs agent Jobs in (config.namespace, default the
release namespace).
*/}}
{{- define "orchestrator.workNamespace" -}}
{{- default .Release.Namespace .Values.config.namespace }}
{{- end }}

{{/*
Name of the Secret holding the API key and the controller's secrets: secrets.existingSecret,
"orchestrator-secrets" for the upstream value anthropicApiKey=use-existing, else
"<fullname>-secrets" (created by this chart).
*/}}
{{- define "orchestrator.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if eq (toString .Values.secrets.anthropicApiKey) "use-existing" }}
{{- "orchestrator-secrets" }}
{{- else }}
{{- printf "%s-secrets" (include "orchestrator.fullname" .) }}
{{- end }}
{{- end }}

{{/* "true" when the chart creates the Secret itself. */}}
{{- define "orchestrator.createSecret" -}}
{{- if and (not .Values.secrets.existingSecret) (ne (toString .Values.secrets.anthropicApiKey) "use-existing") }}true{{ end }}
{{- end }}

{{/* ORCHESTRATOR_API_TOKENS: a comma-separated string or a list in values. */}}
{{- define "orchestrator.apiTokens" -}}
{{- $t := .Values.secrets.apiTokens }}
{{- if kindIs "slice" $t }}{{ join "," $t }}{{ else }}{{ toString (default "" $t) }}{{ end }}
{{- end }}

{{/*
Fails the install/upgrade with the exact flag to add when a required secret is missing.
`helm lint` (neither install nor upgrade) only renders, so the seed's bare `helm lint` passes.
*/}}
{{- define "orchestrator.validate" -}}
{{- if or .Release.IsInstall .Release.IsUpgrade }}
{{- if and (include "orchestrator.createSecret" .) (not .Values.secrets.anthropicApiKey) }}
{{- fail (printf "\n\nsecrets.anthropicApiKey is required: the agents cannot call Claude without it.\nAdd --set secrets.anthropicApiKey=<your-anthropic-api-key>\n(or --set secrets.existingSecret=<name> to use a Secret you created with key %s).\n" .Values.secrets.keys.anthropicApiKey) }}
{{- end }}
{{- end }}
{{- $replicas := int64 .Values.replicaCount }}
{{- if and (gt $replicas 1) (not .Values.controller.leaderElection.enabled) }}
{{- fail (printf "\n\nreplicaCount=%d needs leader election: without it every replica would reconcile the same runs (duplicate Jobs and GitHub comments).\nRemove --set controller.leaderElection.enabled=false, or use --set replicaCount=1.\n" $replicas) }}
{{- end }}
{{- end }}

{{/*
The controller's Kubernetes permissions: THE single list of verbs (README.md and docs/helm.md
show it as a table; tests/integration/chart.test.ts checks it with `kubectl auth can-i`).
Nothing more: the controller never deletes PVCs or Secrets, never creates pods directly.
*/}}
{{- define "orchestrator.rbacRules" -}}
- apiGroups: ["orchestrator.platform"]
  resources: ["coderuns", "docsruns"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["orchestrator.platform"]
  resources: ["plays"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["orchestrator.platform"]
  resources: ["coderuns/status", "docsruns/status", "plays/status"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create"]
{{- /* Secrets: watched so a run's check reads the cache (the controller keeps only their key
names); get confirms a Secret the cache does not have yet. */}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- /* The leader Lease (controller.leaderElection): read, taken and renewed; never deleted. */}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Image pull secret names for agent Jobs: agent.imagePullSecrets, else the controller's. */}}
{{- define "orchestrator.agentPullSecrets" -}}
{{- $names := list }}
{{- if .Values.agent.imagePullSecrets }}
{{- range .Values.agent.imagePullSecrets }}
{{- if kindIs "map" . }}{{ $names = append $names .name }}{{ else }}{{ $names = append $names . }}{{ end }}
{{- end }}
{{- else }}
{{- range .Values.imagePullSecrets }}
{{- if kindIs "map" . }}{{ $names = append $names .name }}{{ else }}{{ $names = append $names . }}{{ end }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
Container requests/limits as the config's JSON: every quantity a string (a YAML number such as
`cpu: 2` becomes "2").
*/}}
{{- define "orchestrator.resources" -}}
{{- $res := dict }}
{{- range $section := list "requests" "limits" }}
{{- with (get ($ | default dict) $section) }}
{{- $q := dict }}
{{- range $k, $v := . }}{{ $_ := set $q $k (toString $v) }}{{ end }}
{{- $_ := set $res $section $q }}
{{- end }}
{{- end }}
{{- $res | toJson }}
{{- end }}

{{/* The leader Lease's name: controller.leaderElection.leaseName, else "<fullname>-leader". */}}
{{- define "orchestrator.leaseName" -}}
{{- .Values.controller.leaderElection.leaseName | default (printf "%s-leader" (include "orchestrator.fullname" . | trunc 56 | trimSuffix "-")) }}
{{- end }}
