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

{{/*
repository:tag, and @digest when a digest pins the exact image (the runtime pulls by digest;
the tag stays for people and for what the chart derives from it).
*/}}
{{- define "service-pool-leader.imageRef" -}}
{{- printf "%s:%s" .image.repository (default .defaultTag .image.tag) }}
{{- with .image.digest }}@{{ . }}{{ end }}
{{- end }}

{{- define "service-pool-leader.image" -}}
{{- include "service-pool-leader.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) }}
{{- end }}

{{- define "service-pool-leader.etcdImage" -}}
{{- include "service-pool-leader.imageRef" (dict "image" .Values.etcd.image "defaultTag" "") }}
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
etcd.tls and etcd.auth are for an external etcd: the bundled one serves plain HTTP without
users inside the namespace (the NetworkPolicy admits only the members), so with it they would
be silently ignored.
*/}}
{{- define "service-pool-leader.checkEtcd" -}}
{{- if .Values.etcd.enabled }}
{{- range $what := list "tls" "auth" }}
{{- if (get $.Values.etcd $what).enabled }}
{{- fail (printf "etcd.%s.enabled=true applies to an external etcd: set etcd.enabled=false and etcd.endpoints, or leave etcd.%s.enabled false (the bundled etcd has no TLS or users)" $what $what) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the member's own shutdown bound
(SHUTDOWN_TIMEOUT_MS, rounded up to seconds), then a margin for the process to exit.
*/}}
{{- define "service-pool-leader.terminationGracePeriodSeconds" -}}
{{- $shutdownMs := int (include "service-pool-leader.memberConfig" . | fromJson).SHUTDOWN_TIMEOUT_MS }}
{{- add (int .Values.shutdown.preStopSleepSeconds) (div (add $shutdownMs 999) 1000) (int .Values.shutdown.extraGraceSeconds) }}
{{- end }}

{{/*
The member's configuration as JSON: `config` over the member's own defaults
(files/member-defaults.json, written from src/config by scripts/chart-config-schema.ts).
*/}}
{{- define "service-pool-leader.memberConfig" -}}
{{- $defaults := .Files.Get "files/member-defaults.json" | fromJson }}
{{- mergeOverwrite $defaults (deepCopy .Values.config) | toJson }}
{{- end }}

{{/*
What values.schema.json cannot say of `config` and the member would refuse at start (exit 2,
then a crash loop): comparisons between variables, and pools named twice. The same rules as
loadConfig in src/config/config.ts, with the same wording; test/chart/configSchema.test.ts
holds the two together.
*/}}
{{- define "service-pool-leader.checkConfig" -}}
{{- $c := include "service-pool-leader.memberConfig" . | fromJson }}
{{- $ttlMs := mulf (float64 $c.LEASE_TTL_SECONDS) 1000 }}
{{- if ge (float64 $c.LEASE_SAFETY_MARGIN_MS) (divf $ttlMs 2) }}
{{- fail (printf "config.LEASE_SAFETY_MARGIN_MS=%.0f: expected less than half the lease TTL (%.0f ms)" (float64 $c.LEASE_SAFETY_MARGIN_MS) (divf $ttlMs 2)) }}
{{- end }}
{{- if ge (float64 $c.ETCD_CALL_TIMEOUT_MS) $ttlMs }}
{{- fail (printf "config.ETCD_CALL_TIMEOUT_MS=%.0f: expected less than the lease TTL (%.0f ms)" (float64 $c.ETCD_CALL_TIMEOUT_MS) $ttlMs) }}
{{- end }}
{{- if ge (float64 $c.SHUTDOWN_LINGER_MS) (float64 $c.SHUTDOWN_TIMEOUT_MS) }}
{{- fail (printf "config.SHUTDOWN_LINGER_MS=%.0f: expected less than SHUTDOWN_TIMEOUT_MS (%.0f ms)" (float64 $c.SHUTDOWN_LINGER_MS) (float64 $c.SHUTDOWN_TIMEOUT_MS)) }}
{{- end }}
{{- $module := get $c "STRATEGY_MODULE" | toString | trim }}
{{- $strategy := get $c "ELECTION_STRATEGY" | default "oldest" }}
{{- if and (eq $strategy "module") (not $module) }}
{{- fail "config.STRATEGY_MODULE: expected a file, because ELECTION_STRATEGY=module" }}
{{- end }}
{{- if and $module (ne $strategy "module") }}
{{- fail (printf "config.ELECTION_STRATEGY=%s: expected module, because STRATEGY_MODULE is set" $strategy) }}
{{- end }}
{{- range $name := list "POOLS" "AVOID_POOLS" }}
{{- $pools := list }}
{{- range splitList "," (get $c $name | toString) }}
{{- if trim . }}{{ $pools = append $pools (trim .) }}{{ end }}
{{- end }}
{{- if ne (len $pools) (len (uniq $pools)) }}
{{- fail (printf "config.%s=%q: expected each pool name once" $name (get $c $name)) }}
{{- end }}
{{- end }}
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
