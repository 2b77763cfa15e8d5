{{/*
Names, labels and derived settings, computed once so every template agrees.
*/}}

{{- define "kubellm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubellm.fullname" -}}
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

{{- define "kubellm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubellm.labels" -}}
helm.sh/chart: {{ include "kubellm.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubellm
{{- end }}

{{/* Operator pods: selector labels (immutable once installed) and full labels. */}}
{{- define "kubellm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubellm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubellm.operatorLabels" -}}
{{ include "kubellm.labels" . }}
{{ include "kubellm.selectorLabels" . }}
{{- end }}

{{/* MLflow server pods. */}}
{{- define "kubellm.mlflow.fullname" -}}
{{- printf "%s-mlflow" (include "kubellm.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubellm.mlflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubellm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: mlflow
{{- end }}

{{- define "kubellm.mlflow.labels" -}}
{{ include "kubellm.labels" . }}
{{ include "kubellm.mlflow.selectorLabels" . }}
{{- end }}

{{- define "kubellm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubellm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Images: one repository; the CUDA variant differs by a tag suffix. */}}
{{- define "kubellm.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "kubellm.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "kubellm.tag" .) }}
{{- end }}

{{- define "kubellm.workloadImage" -}}
{{- default (include "kubellm.image" .) .Values.workloads.image }}
{{- end }}

{{- define "kubellm.cudaImage" -}}
{{- default (printf "%s%s" (include "kubellm.image" .) .Values.image.cudaSuffix) .Values.workloads.cudaImage }}
{{- end }}

{{- define "kubellm.mlflow.image" -}}
{{- $server := .Values.mlflow.server.image }}
{{- printf "%s:%s" (default .Values.image.repository $server.repository) (default (include "kubellm.tag" .) $server.tag) }}
{{- end }}

{{/* The tracking URI handed to the operator: explicit, else the in-chart server, else none. */}}
{{- define "kubellm.mlflow.trackingUri" -}}
{{- if .Values.mlflow.trackingUri }}
{{- .Values.mlflow.trackingUri }}
{{- else if .Values.mlflow.server.enabled }}
{{- printf "http://%s.%s.svc.%s:%d" (include "kubellm.mlflow.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.mlflow.server.port) }}
{{- end }}
{{- end }}

{{- define "kubellm.webhookSecretName" -}}
{{- default (printf "%s-webhook" (include "kubellm.fullname" .)) .Values.webhook.existingSecret }}
{{- end }}

{{- define "kubellm.mlflow.authEnabled" -}}
{{- if and .Values.mlflow.server.enabled .Values.mlflow.server.auth.enabled }}true{{ end }}
{{- end }}

{{- define "kubellm.mlflow.adminSecretName" -}}
{{- default (printf "%s-admin" (include "kubellm.mlflow.fullname" .)) .Values.mlflow.server.auth.adminSecret }}
{{- end }}

{{/* The operator's MLflow credentials: the named Secret, else the in-chart server's admin. */}}
{{- define "kubellm.operatorCredentialsSecret" -}}
{{- if .Values.mlflow.credentialsSecret }}
{{- .Values.mlflow.credentialsSecret }}
{{- else if include "kubellm.mlflow.authEnabled" . }}
{{- include "kubellm.mlflow.adminSecretName" . }}
{{- end }}
{{- end }}

{{- define "kubellm.promotionSecretName" -}}
{{- default (printf "%s-promotion" (include "kubellm.fullname" .)) .Values.promotion.existingSecret }}
{{- end }}

{{- define "kubellm.mlflow.encryptionSecretName" -}}
{{- default (printf "%s-webhook-key" (include "kubellm.mlflow.fullname" .)) .Values.mlflow.server.webhookEncryptionKey.existingSecret }}
{{- end }}

{{/* Peering: on with more than one replica; the object's name. */}}
{{- define "kubellm.peering" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{- define "kubellm.peeringName" -}}
{{- default (include "kubellm.fullname" .) .Values.peering.name }}
{{- end }}

{{/*
Keep a generated secret across upgrades: reuse the value stored in the live Secret if there
is one (`lookup` returns nothing under `helm template`), else the given fresh value.
Call with (dict "ctx" $ "name" SECRET_NAME "key" KEY "fresh" VALUE); prints base64.
*/}}
{{- define "kubellm.persistentSecretValue" -}}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $live $live.data (hasKey $live.data .key) }}
{{- index $live.data .key }}
{{- else }}
{{- .fresh | b64enc }}
{{- end }}
{{- end }}

{{/* Refuse value combinations that cannot work, with a message that says what to set. */}}
{{- define "kubellm.validate" -}}
{{- if and .Values.rbac.namespaced (empty .Values.watchNamespaces) }}
{{- fail "rbac.namespaced=true needs watchNamespaces: the namespaces to create Roles in" }}
{{- end }}
{{- if lt (int .Values.replicaCount) 0 }}
{{- fail "replicaCount must be 0 (operator run elsewhere) or more" }}
{{- end }}
{{- end }}
