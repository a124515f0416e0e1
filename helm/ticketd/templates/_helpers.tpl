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
{{- end }}

{{/* Selects the server pods only (not the migration Job's or the test's). */}}
{{- define "ticketd.serverSelectorLabels" -}}
{{ include "ticketd.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}
