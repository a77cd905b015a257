{{/*
The etcd container's environment and flags. extraEnv follows the chart's variables and may
not name one of them, nor ETCD_<FLAG> for a flag below: etcd refuses to start when a variable
shadows a flag given on its command line.
*/}}

{{/* The chart's variables of the etcd container, as a YAML list of EnvVar. */}}
{{- define "service-pool-leader.etcdChartEnv" -}}
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: HOSTNAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: SERVICE_NAME
  value: {{ include "service-pool-leader.etcdName" . }}
# etcdctl inside the pod talks to its own member.
- name: ETCDCTL_ENDPOINTS
  value: http://$(HOSTNAME).$(SERVICE_NAME):2379
{{- end }}

{{/* etcd's flags, as a YAML list. */}}
{{- define "service-pool-leader.etcdArgs" -}}
{{- $name := include "service-pool-leader.etcdName" . -}}
- --name=$(HOSTNAME)
- --data-dir=/data
# Kept although etcd's default (/data/member/wal) would do: the volumes of existing installs
# hold their WAL here, and without this flag etcd would not find it.
- --wal-dir=/data/wal
- --listen-peer-urls=http://0.0.0.0:2380
- --listen-client-urls=http://0.0.0.0:2379
- --advertise-client-urls=http://$(HOSTNAME).$(SERVICE_NAME):2379
- --initial-cluster-state=new
- --initial-cluster-token={{ $name }}-$(K8S_NAMESPACE)
{{- $peers := list }}
{{- range $i := until (int .Values.etcd.replicas) }}
{{- $peers = append $peers (printf "%s-%d=http://%s-%d.$(SERVICE_NAME):2380" $name $i $name $i) }}
{{- end }}
- --initial-cluster={{ join "," $peers }}
- --initial-advertise-peer-urls=http://$(HOSTNAME).$(SERVICE_NAME):2380
- --listen-metrics-urls=http://0.0.0.0:2381
# The pool writes little, but leases and watches keep history: compact it.
- --auto-compaction-mode=periodic
- --auto-compaction-retention=1h
{{- if .Values.etcd.persistence.enabled }}
# 80 % of the volume, so that etcd's NOSPACE alarm comes before a full disk.
- --quota-backend-bytes={{ include "service-pool-leader.etcdQuotaBytes" . }}
{{- end }}
{{- range .Values.etcd.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* env of the etcd container: the chart's variables, then etcd.extraEnv; fails on a clash. */}}
{{- define "service-pool-leader.etcdEnv" -}}
{{- $env := include "service-pool-leader.etcdChartEnv" . | fromYamlArray }}
{{- $taken := dict }}
{{- range $env }}
{{- $_ := set $taken .name "the chart" }}
{{- end }}
{{- range include "service-pool-leader.etcdArgs" . | fromYamlArray }}
{{- $flag := regexFind "^--[a-z0-9-]+" . | trimPrefix "--" }}
{{- $_ := set $taken (printf "ETCD_%s" ($flag | upper | replace "-" "_")) (printf "the flag --%s" $flag) }}
{{- end }}
{{- range $i, $var := .Values.etcd.extraEnv }}
{{- with get $taken $var.name }}
{{- fail (printf "etcd.extraEnv[%d]: %s is already set by %s" $i $var.name .) }}
{{- end }}
{{- $_ := set $taken $var.name "etcd.extraEnv (named twice)" }}
{{- end }}
{{- concat $env .Values.etcd.extraEnv | toYaml }}
{{- end }}
