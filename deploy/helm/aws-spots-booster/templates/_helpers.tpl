{{- define "asb.name" -}}aws-spots-booster{{- end -}}
{{- define "asb.labels" -}}
app.kubernetes.io/name: {{ include "asb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "asb.selector" -}}
app.kubernetes.io/name: {{ include "asb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "asb.placeholderPriorityClass" -}}
{{- .Values.config.placeholderPriorityClass | default (printf "%s-placeholder" .Release.Name) -}}
{{- end -}}
