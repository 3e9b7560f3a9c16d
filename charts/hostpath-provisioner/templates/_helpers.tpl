{{/* The provisioner's namespace (not the release namespace: see values.yaml). */}}
{{- define "hpp.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/* The provisioner's image reference: repository:tag, or repository@digest when a digest is given. */}}
{{- define "hpp.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Namespace of the monitoring objects. */}}
{{- define "hpp.monitoringNamespace" -}}
{{- .Values.metrics.namespace | default .Values.namespace.name -}}
{{- end -}}
