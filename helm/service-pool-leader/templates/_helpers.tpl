{{/*
Names and labels. Every object carries the standard app.kubernetes.io/* labels; selectors use
only name, instance and component, which never change on upgrade.
*/}}

{{- define "service-pool-leader.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name alone when it already contains the chart name. */}}
{{- define "service-pool-leader.fullname" -}}
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

{{- define "service-pool-leader.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Room is left for the "-etcd-N" suffixes of the etcd pods (DNS labels: 63 characters). */}}
{{- define "service-pool-leader.etcdName" -}}
{{- printf "%s-etcd" (include "service-pool-leader.fullname" . | trunc 50 | trimSuffix "-") }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "pool-member"). */}}
{{- define "service-pool-leader.selectorLabels" -}}
app.kubernetes.io/name: {{ include "service-pool-leader.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The labels every object carries; call with the root context. */}}
{{- define "service-pool-leader.labels" -}}
helm.sh/chart: {{ include "service-pool-leader.chart" . }}
app.kubernetes.io/name: {{ include "service-pool-leader.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: service-pool-leader
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels plus the component; call with (dict "ctx" $ "component" "etcd"). */}}
{{- define "service-pool-leader.componentLabels" -}}
{{ include "service-pool-leader.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The labels of the etcd pods: etcd's own version and no chart or app version, so that upgrading
the chart or the app never rolls the etcd StatefulSet.
*/}}
{{- define "service-pool-leader.etcdPodLabels" -}}
{{ include "service-pool-leader.selectorLabels" (dict "ctx" . "component" "etcd") }}
app.kubernetes.io/version: {{ .Values.etcd.image.tag | quote }}
app.kubernetes.io/part-of: service-pool-leader
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
etcd's backend quota in bytes: 80 % of the etcd volume (etcd.persistence.size), at most 8 GiB
(etcd's own recommended ceiling). etcd's default, 2 GiB, would be larger than the default 1 Gi
volume: the disk would fill before etcd raised its NOSPACE alarm.
*/}}
{{- define "service-pool-leader.etcdQuotaBytes" -}}
{{- $size := toString .Values.etcd.persistence.size }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $size }}
{{- $unit := trimPrefix $number $size }}
{{- $factors := dict "" 1 "K" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 }}
{{- $bytes := mulf (float64 $number) (get $factors $unit) 0.8 | floor }}
{{- min (int64 $bytes) 8589934592 }}
{{- end }}

{{- define "service-pool-leader.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "service-pool-leader.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "service-pool-leader.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* ETCD_ENDPOINTS: the bundled members by their stable DNS names, or the external list. */}}
{{- define "service-pool-leader.etcdEndpoints" -}}
{{- if .Values.etcd.enabled }}
{{- $name := include "service-pool-leader.etcdName" . }}
{{- $urls := list }}
{{- range $i := until (int .Values.etcd.replicas) }}
{{- $urls = append $urls (printf "http://%s-%d.%s:2379" $name $i $name) }}
{{- end }}
{{- join "," $urls }}
{{- else }}
{{- join "," .Values.etcd.endpoints }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the member's own shutdown bound
(SHUTDOWN_TIMEOUT_MS, rounded up to seconds), then a margin for the process to exit.
*/}}
{{- define "service-pool-leader.terminationGracePeriodSeconds" -}}
{{- $shutdownMs := int (default 10000 .Values.config.SHUTDOWN_TIMEOUT_MS) }}
{{- add (int .Values.shutdown.preStopSleepSeconds) (div (add $shutdownMs 999) 1000) (int .Values.shutdown.extraGraceSeconds) }}
{{- end }}

{{/* The restricted Pod Security Standard, for every container of the chart. */}}
{{- define "service-pool-leader.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
