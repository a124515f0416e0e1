{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "ticketd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-<chart>, or the release name alone when it already contains the chart name. */}}
{{- define "ticketd.fullname" -}}
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

{{- define "ticketd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ticketd.labels" -}}
helm.sh/chart: {{ include "ticketd.chart" . }}
{{ include "ticketd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ticketd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticketd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ticketd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ticketd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ticketd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" in SQLite mode: database.url starts with sqlite: and no existing Secret is named. */}}
{{- define "ticketd.sqlite" -}}
{{- if and (hasPrefix "sqlite:" .Values.database.url) (not .Values.database.existingSecret.name) }}true{{ end }}
{{- end }}

{{/* Name and key of the Secret the Deployment reads DATABASE_URL from. */}}
{{- define "ticketd.databaseSecretName" -}}
{{- default (include "ticketd.fullname" .) .Values.database.existingSecret.name }}
{{- end }}

{{- define "ticketd.databaseSecretKey" -}}
{{- if .Values.database.existingSecret.name }}{{ .Values.database.existingSecret.key }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{/* True when the pre-install/pre-upgrade migration Job is rendered (PostgreSQL mode only). */}}
{{- define "ticketd.migrationJob" -}}
{{- if and .Values.migrations.enabled (not (include "ticketd.sqlite" .)) }}true{{ end }}
{{- end }}

{{- define "ticketd.terminationGracePeriodSeconds" -}}
{{- $drain := int .Values.config.drainTimeoutSecs }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain 15 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than config.drainTimeoutSecs (%d) so SIGTERM can drain in-flight calls" (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The hardened security contexts every ticketd container runs with. */}}
{{- define "ticketd.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ticketd.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ticketd.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Fails rendering on combinations the values schema cannot express. */}}
{{- define "ticketd.validate" -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and (include "ticketd.sqlite" .) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "SQLite mode runs exactly one server per database file: set replicaCount to 1 and autoscaling.enabled to false, or use PostgreSQL" }}
{{- end }}
{{- include "ticketd.validateAuth" . }}
{{- end }}

{{/* The auth settings ticketd itself would refuse at start-up, refused at render time with the fix. */}}
{{- define "ticketd.validateAuth" -}}
{{- $auth := .Values.auth }}
{{- if eq $auth.mode "none" }}
{{- if not $auth.allowInsecureNone }}
{{- fail "auth.mode=none needs auth.allowInsecureNone=true: the pods listen on 0.0.0.0:50051, where ticketd refuses to start without authentication (every caller would be an admin). Use auth.mode=jwt with a key (auth.jwt.hs256Secret, auth.jwt.publicKeys or auth.apiKeys), or set auth.allowInsecureNone=true on a throwaway cluster" }}
{{- end }}
{{- else }}
{{- if and $auth.jwt.hs256Secret.existingSecret $auth.jwt.hs256Secret.value }}
{{- fail "auth.jwt.hs256Secret: set existingSecret or value, not both" }}
{{- end }}
{{- with $auth.jwt.hs256Secret.value }}
{{- if lt (len (trim .)) 32 }}
{{- fail (printf "auth.jwt.hs256Secret.value is %d bytes; ticketd needs an HS256 secret of at least 32 bytes, e.g. from `openssl rand -hex 32`" (len (trim .))) }}
{{- end }}
{{- end }}
{{- if and $auth.jwt.publicKeys.existingSecret $auth.jwt.publicKeys.existingConfigMap }}
{{- fail "auth.jwt.publicKeys: set existingSecret or existingConfigMap, not both" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Authentication files, mounted read-only in one projected volume at /etc/ticketd/auth. Each helper below is
"true" (or the value) only in jwt mode, so auth.mode=none mounts and sets nothing but TICKETD_AUTH.
*/}}
{{- define "ticketd.authDir" -}}/etc/ticketd/auth{{- end }}

{{- define "ticketd.authHs256" -}}
{{- if and (eq .Values.auth.mode "jwt") (or .Values.auth.jwt.hs256Secret.existingSecret .Values.auth.jwt.hs256Secret.value (include "ticketd.authHs256Generated" .)) }}true{{ end }}
{{- end }}

{{/*
"true" when jwt mode names no key source at all (the defaults): the chart then generates the HS256 secret,
since ticketd refuses to start in jwt mode with nothing to verify credentials with. Naming any source (an
HS256 secret, public keys or API keys) turns generation off.
*/}}
{{- define "ticketd.authHs256Generated" -}}
{{- $auth := .Values.auth }}
{{- if and (eq $auth.mode "jwt") (not $auth.jwt.hs256Secret.existingSecret) (not $auth.jwt.hs256Secret.value) (not $auth.jwt.publicKeys.existingSecret) (not $auth.jwt.publicKeys.existingConfigMap) (not $auth.apiKeys.existingSecret) }}true{{ end }}
{{- end }}

{{/*
The generated secret, base64: the one already in the cluster when there is one (`lookup`), so upgrades keep
it and the tokens minted with it; otherwise 64 fresh random characters (sprig draws them from crypto/rand).
`lookup` returns nothing under `helm template`, `helm lint` and a client-side `--dry-run`: every such render
shows a new random value.
*/}}
{{- define "ticketd.authHs256GeneratedData" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "ticketd.authHs256SecretName" .) }}
{{- $kept := dig "data" "jwt-hs256-secret" "" $existing }}
{{- if $kept }}{{ $kept }}{{ else }}{{ randAlphaNum 64 | b64enc }}{{ end }}
{{- end }}

{{/* "true" when the chart creates the Secret <fullname>-auth: from auth.jwt.hs256Secret.value, or generated. */}}
{{- define "ticketd.authSecret" -}}
{{- if and (include "ticketd.authHs256" .) (not .Values.auth.jwt.hs256Secret.existingSecret) }}true{{ end }}
{{- end }}

{{- define "ticketd.authPublicKeys" -}}
{{- if and (eq .Values.auth.mode "jwt") (or .Values.auth.jwt.publicKeys.existingSecret .Values.auth.jwt.publicKeys.existingConfigMap) }}true{{ end }}
{{- end }}

{{- define "ticketd.authApiKeys" -}}
{{- if and (eq .Values.auth.mode "jwt") .Values.auth.apiKeys.existingSecret }}true{{ end }}
{{- end }}

{{- define "ticketd.authFiles" -}}
{{- if or (include "ticketd.authHs256" .) (include "ticketd.authPublicKeys" .) (include "ticketd.authApiKeys" .) }}true{{ end }}
{{- end }}

{{/* Name and key of the Secret holding the HS256 secret. */}}
{{- define "ticketd.authHs256SecretName" -}}
{{- default (printf "%s-auth" (include "ticketd.fullname" .)) .Values.auth.jwt.hs256Secret.existingSecret }}
{{- end }}

{{- define "ticketd.authHs256SecretKey" -}}
{{- if .Values.auth.jwt.hs256Secret.existingSecret }}{{ .Values.auth.jwt.hs256Secret.key }}{{ else }}jwt-hs256-secret{{ end }}
{{- end }}

{{/* Selects the server pods only (not the migration Job's or the test's). */}}
{{- define "ticketd.serverSelectorLabels" -}}
{{ include "ticketd.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}
