{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "securescore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it already holds the chart name. */}}
{{- define "securescore.fullname" -}}
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

{{- define "securescore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries (Helm best practices). */}}
{{- define "securescore.labels" -}}
helm.sh/chart: {{ include "securescore.chart" . }}
{{ include "securescore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: securescore
{{- end }}

{{/* Labels that select the operator's pods; never change them after a release (immutable). */}}
{{- define "securescore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "securescore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "securescore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "securescore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "securescore.leaseName" -}}
{{- default (printf "%s-leader" (include "securescore.fullname" .)) .Values.operator.leaderElection.leaseName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* repository:tag, repository@digest, or repository:tag@digest. */}}
{{- define "securescore.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" .Values.image.digest) }}
{{- fail (printf "image.digest must look like sha256:<64 hex digits>, got %q" .Values.image.digest) }}
{{- end }}
{{- if .Values.image.tag }}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest }}
{{- else }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- end }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespaces whose targets may reach beyond their own namespace: the release's, then values. */}}
{{- define "securescore.clusterTargetNamespaces" -}}
{{- $nss := list .Release.Namespace }}
{{- range .Values.operator.clusterTargetNamespaces }}
{{- $nss = append $nss . }}
{{- end }}
{{- $nss | uniq | join "," }}
{{- end }}

{{/*
The enabled built-in ImprovementActions, as YAML `{actions: [...]}`: every catalog/*.yaml file
(one action per file, the same files the binary embeds), minus catalog.disabled, minus the
actions of products (label securescore.io/product) not turned on under `products`. Fails on a file
that is not an ImprovementAction with a name, and on a disabled name that is not in the catalog.
*/}}
{{- /*
Whether each product (the securescore.io/product label of built-in actions and controls) is
enabled under products.*, as a dict of product -> bool in YAML.
*/}}
{{- define "securescore.products" -}}
{{- $p := .Values.products | default (dict) }}
{{- dict "trivy-operator" (($p.trivyOperator | default (dict)).enabled | default false) "policy-reports" (($p.policyReports | default (dict)).enabled | default false) | toYaml }}
{{- end }}

{{- /*
Whether a built-in document (action or control, read from `path`) is installed as far as its
product goes: true without a securescore.io/product label, else the product's products.*
value; a label naming no known product fails the install. Prints "true" or "false".
*/}}
{{- define "securescore.productOn" -}}
{{- $products := include "securescore.products" .root | fromYaml }}
{{- $product := "" }}
{{- if .doc.metadata.labels }}{{ $product = get .doc.metadata.labels "securescore.io/product" | default "" }}{{ end }}
{{- $on := true }}
{{- if $product }}
{{- if not (hasKey $products $product) }}
{{- fail (printf "%s: securescore.io/product %q has no products.* value (known: %s)" .path $product (keys $products | sortAlpha | join ", ")) }}
{{- end }}
{{- $on = get $products $product }}
{{- end }}
{{- $on }}
{{- end }}

{{- define "securescore.catalog" -}}
{{- $actions := list }}
{{- $known := dict }}
{{- range $path, $_ := .Files.Glob "catalog/*.yaml" }}
{{- $doc := $.Files.Get $path | fromYaml }}
{{- if hasKey $doc "Error" }}
{{- fail (printf "%s: not valid YAML: %s" $path (get $doc "Error")) }}
{{- end }}
{{- if ne (default "ImprovementAction" $doc.kind) "ImprovementAction" }}
{{- fail (printf "%s: kind is %q, want ImprovementAction" $path $doc.kind) }}
{{- end }}
{{- $name := "" }}
{{- if $doc.metadata }}{{ $name = $doc.metadata.name | default "" }}{{ end }}
{{- if not $name }}
{{- fail (printf "%s: metadata.name is missing" $path) }}
{{- end }}
{{- if not $doc.spec }}
{{- fail (printf "%s: spec is missing" $path) }}
{{- end }}
{{- $_ := set $known $name true }}
{{- $productOn := eq (include "securescore.productOn" (dict "root" $ "doc" $doc "path" $path)) "true" }}
{{- if and $productOn (not (has $name $.Values.catalog.disabled)) }}
{{- $actions = append $actions $doc }}
{{- end }}
{{- end }}
{{- range .Values.catalog.disabled }}
{{- if not (hasKey $known .) }}
{{- fail (printf "catalog.disabled: %q is not a built-in ImprovementAction (known: %s)" . (keys $known | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- dict "actions" $actions | toYaml }}
{{- end }}

{{/*
Resource plural of a Kubernetes kind, as RBAC needs it: lower case, then the English plural the
API uses (NetworkPolicy -> networkpolicies, Ingress -> ingresses, StorageClass ->
storageclasses). Irregular kinds are listed first.
*/}}
{{- define "securescore.plural" -}}
{{- $irregular := dict "Endpoints" "endpoints" "PodSecurityPolicy" "podsecuritypolicies" }}
{{- if hasKey $irregular . }}
{{- get $irregular . }}
{{- else }}
{{- $k := lower . }}
{{- if regexMatch "[^aeiou]y$" $k }}
{{- printf "%sies" (trimSuffix "y" $k) }}
{{- else if regexMatch "(s|x|z|ch|sh)$" $k }}
{{- printf "%ses" $k }}
{{- else }}
{{- printf "%ss" $k }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What the ClusterRole must read, as YAML `{<apiGroup>: [plural...]}`: namespaces always; the
kinds of every enabled catalog action's check.resources and check.lookups; the workload kinds
for podSpec: true; and rbac.extraResources.
*/}}
{{- define "securescore.readResources" -}}
{{- $groups := dict "" (dict "namespaces" true) }}
{{- $kinds := list }}
{{- if .Values.catalog.enabled }}
{{- range (include "securescore.catalog" . | fromYaml).actions }}
{{- $check := .spec.check | default (dict) }}
{{- range $check.resources | default (list) }}
{{- $kinds = append $kinds (dict "apiGroup" (.apiGroup | default "") "kind" .kind) }}
{{- end }}
{{- range $check.lookups | default (list) }}
{{- $kinds = append $kinds (dict "apiGroup" (.apiGroup | default "") "kind" .kind) }}
{{- end }}
{{- if $check.podSpec }}
{{- range list "Pod" }}{{ $kinds = append $kinds (dict "apiGroup" "" "kind" .) }}{{ end }}
{{- range list "Deployment" "StatefulSet" "DaemonSet" "ReplicaSet" }}{{ $kinds = append $kinds (dict "apiGroup" "apps" "kind" .) }}{{ end }}
{{- range list "Job" "CronJob" }}{{ $kinds = append $kinds (dict "apiGroup" "batch" "kind" .) }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.rbac.extraResources }}
{{- if .resource }}
{{- $kinds = append $kinds (dict "apiGroup" (.apiGroup | default "") "resource" .resource) }}
{{- else }}
{{- $kinds = append $kinds (dict "apiGroup" (.apiGroup | default "") "kind" (required "rbac.extraResources[]: each item needs kind or resource" .kind)) }}
{{- end }}
{{- end }}
{{- range $kinds }}
{{- $plural := .resource }}
{{- if not $plural }}{{ $plural = include "securescore.plural" .kind }}{{ end }}
{{- $set := get $groups .apiGroup | default (dict) }}
{{- $_ := set $set $plural true }}
{{- $_ := set $groups .apiGroup $set }}
{{- end }}
{{- $out := dict }}
{{- range $group, $set := $groups }}
{{- $_ := set $out $group (keys $set | sortAlpha) }}
{{- end }}
{{- $out | toYaml }}
{{- end }}
