{{/* vim: set filetype=mustache: */}}

{{- define "kubecost.test.annotations" -}}
helm.sh/hook: test
{{- end -}}
