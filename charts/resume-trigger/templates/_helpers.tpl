{{/* Labels every object carries; the selector labels stay those of the kustomize install. */}}
{{- define "resume-trigger.labels" -}}
app.kubernetes.io/name: resume-trigger
app.kubernetes.io/part-of: resume-trigger
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels of objects that are not the server's own (EventSources, Sensor, EventBus, policies). */}}
{{- define "resume-trigger.commonLabels" -}}
app.kubernetes.io/part-of: resume-trigger
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* allNamespaces: "true" when namespaces is ["*"]. */}}
{{- define "resume-trigger.allNamespaces" -}}
{{- if has "*" .Values.namespaces }}true{{ end }}
{{- end }}

{{/* tlsSecret: the Secret the server serves from. caSecret: the one the Sensor reads ca.crt from. */}}
{{- define "resume-trigger.caSecret" -}}
{{- default .Values.tls.secretName .Values.tls.caSecretName }}
{{- end }}

{{- define "resume-trigger.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
validate refuses what the schema cannot say: relations between values. Each message names the value
to change, as the server's own flag errors do.
*/}}
{{- define "resume-trigger.validate" -}}
{{- $served := .Values.namespaces }}
{{- if not $served }}
{{- fail "namespaces: list the namespaces whose paused steps resume-trigger may release (--set 'namespaces={team-a,team-b}'), or [\"*\"] for every namespace" }}
{{- end }}
{{- if and (has "*" $served) (gt (len $served) 1) }}
{{- fail (printf "namespaces %v: \"*\" serves every namespace and stands alone; drop the other names or the \"*\"" $served) }}
{{- end }}
{{- if has .Release.Namespace $served }}
{{- fail (printf "namespaces %v names the install namespace %s: workflows must not run where the Sensor runs (the NetworkPolicy trusts the Sensor's pods of that namespace); install into a namespace of its own" $served .Release.Namespace) }}
{{- end }}
{{- if and .Values.webhook.namespaces (not .Values.webhook.enabled) }}
{{- fail "webhook.namespaces is set but webhook.enabled is false: enable the webhook or drop its namespaces" }}
{{- end }}
{{- if not (has "*" $served) }}
{{- range .Values.webhook.namespaces }}
{{- if and (ne . "*") (not (has . $served)) }}
{{- fail (printf "webhook.namespaces names %s, which namespaces %v does not serve: add it there too, or drop it" . $served) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (has "*" .Values.webhook.namespaces) (gt (len .Values.webhook.namespaces) 1) }}
{{- fail (printf "webhook.namespaces %v: \"*\" (every served namespace) stands alone" .Values.webhook.namespaces) }}
{{- end }}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection) }}
{{- fail "replicas > 1 needs leaderElection: true (the standby replicas wait for the Lease)" }}
{{- end }}
{{- if and (eq .Values.tls.mode "secret") (not .Values.tls.secretName) }}
{{- fail "tls.mode secret needs tls.secretName: an existing Secret with tls.crt, tls.key and ca.crt" }}
{{- end }}
{{- if and .Values.prometheusRule.enabled (not .Values.pausedMetrics) }}
{{- fail "prometheusRule.enabled needs pausedMetrics: true (ArgoDebugPauseForgotten reads resume_trigger_oldest_pause_seconds)" }}
{{- end }}
{{- if and .Values.execPolicy.enabled (not (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail "execPolicy.enabled needs Kubernetes 1.30+ (admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy); set execPolicy.enabled=false on older clusters" }}
{{- end }}
{{- end }}
