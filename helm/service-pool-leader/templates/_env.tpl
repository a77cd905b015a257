{{/*
The member container's environment. The chart's own variables come first; extraEnv follows
and may not name any of them, nor a `config` key: a list with one name twice is rejected by
server-side apply (Helm 4's default) and silently resolved otherwise.
*/}}

{{/* ADVERTISE_URL: where the other members forward work, this pod's own address. */}}
{{- define "service-pool-leader.advertiseUrl" -}}
{{- .Values.advertiseUrl | default (printf "http://$(POD_IP):%v" .Values.containerPort) }}
{{- end }}

{{/* The variables the chart sets itself, as a YAML list of EnvVar. */}}
{{- define "service-pool-leader.chartEnv" -}}
# Downward API: the pod's identity. POD_NAME is the member id (performedBy).
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: PORT
  value: {{ .Values.containerPort | quote }}
# Where the other members forward work: this pod's own IP, not the Service.
- name: ADVERTISE_URL
  value: {{ include "service-pool-leader.advertiseUrl" . | quote }}
- name: ETCD_ENDPOINTS
  value: {{ include "service-pool-leader.etcdEndpoints" . | quote }}
- name: ETCD_PREFIX
  value: {{ .Values.etcd.prefix | quote }}
{{- if and (not .Values.etcd.enabled) .Values.etcd.tls.enabled }}
- name: ETCD_CA_FILE
  value: /etc/service-pool-leader/etcd-tls/{{ .Values.etcd.tls.caKey }}
{{- if .Values.etcd.tls.clientCertificate }}
- name: ETCD_CERT_FILE
  value: /etc/service-pool-leader/etcd-tls/{{ .Values.etcd.tls.certKey }}
- name: ETCD_KEY_FILE
  value: /etc/service-pool-leader/etcd-tls/{{ .Values.etcd.tls.keyKey }}
{{- end }}
{{- end }}
{{- if and (not .Values.etcd.enabled) .Values.etcd.auth.enabled }}
- name: ETCD_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.etcd.auth.secretName }}
      key: {{ .Values.etcd.auth.usernameKey }}
- name: ETCD_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.etcd.auth.secretName }}
      key: {{ .Values.etcd.auth.passwordKey }}
{{- end }}
{{- with .Values.tokens.existingSecret }}
- name: FORWARD_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: forward-token
      optional: true
- name: ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: admin-token
      optional: true
{{- end }}
{{- end }}

{{/* Which value to use instead of extraEnv, for each variable the chart sets. */}}
{{- define "service-pool-leader.chartEnvOwners" -}}
POD_NAME: the downward API
POD_NAMESPACE: the downward API
POD_UID: the downward API
POD_IP: the downward API
PORT: containerPort
ADVERTISE_URL: advertiseUrl
ETCD_ENDPOINTS: etcd.enabled or etcd.endpoints
ETCD_PREFIX: etcd.prefix
ETCD_CA_FILE: etcd.tls
ETCD_CERT_FILE: etcd.tls
ETCD_KEY_FILE: etcd.tls
ETCD_USERNAME: etcd.auth
ETCD_PASSWORD: etcd.auth
FORWARD_TOKEN: tokens.existingSecret
ADMIN_TOKEN: tokens.existingSecret
{{- end }}

{{/* env of the member container: the chart's variables, then extraEnv; fails on a clash. */}}
{{- define "service-pool-leader.env" -}}
{{- $env := include "service-pool-leader.chartEnv" . | fromYamlArray }}
{{- $owners := include "service-pool-leader.chartEnvOwners" . | fromYaml }}
{{- $taken := dict }}
{{- range $env }}
{{- $_ := set $taken .name (printf "the chart (set it with %s)" (get $owners .name | default "its values")) }}
{{- end }}
{{- range $name, $_ := .Values.config }}
{{- $_ := set $taken $name (printf "config.%s (set it there)" $name) }}
{{- end }}
{{- range $i, $var := .Values.extraEnv }}
{{- with get $taken $var.name }}
{{- fail (printf "extraEnv[%d]: %s is already set by %s" $i $var.name .) }}
{{- end }}
{{- $_ := set $taken $var.name (printf "extraEnv (named twice)") }}
{{- end }}
{{- concat $env .Values.extraEnv | toYaml }}
{{- end }}
