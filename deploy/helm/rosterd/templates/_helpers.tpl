{{/*
Names and labels.
*/}}
{{- define "rosterd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rosterd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rosterd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rosterd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rosterd.labels" -}}
{{ include "rosterd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Where each mounted thing lives in the pod: the config refers to these paths. */}}
{{- define "rosterd.configDir" -}}/etc/rosterd{{- end -}}
{{- define "rosterd.credentialsDir" -}}/run/secrets/rosterd{{- end -}}
{{- define "rosterd.postgresPasswordFile" -}}/run/secrets/rosterd-postgres/password{{- end -}}
{{- define "rosterd.stateDir" -}}/var/lib/rosterd{{- end -}}

{{- define "rosterd.credentialsSecret" -}}
{{- .Values.credentials.existingSecret | default (printf "%s-credentials" (include "rosterd.fullname" .)) -}}
{{- end -}}

{{- define "rosterd.postgresSecret" -}}
{{- .Values.state.postgres.password.existingSecret | default (printf "%s-postgres" (include "rosterd.fullname" .)) -}}
{{- end -}}

{{- define "rosterd.hasCredentials" -}}
{{- if or .Values.credentials.existingSecret .Values.credentials.create -}}true{{- end -}}
{{- end -}}

{{- define "rosterd.hasPostgresPassword" -}}
{{- if and (eq .Values.state.backend "postgres") (or .Values.state.postgres.password.existingSecret .Values.state.postgres.password.value) -}}true{{- end -}}
{{- end -}}

{{/* The PostgreSQL password as a mounted file (the default) or as an environment variable. */}}
{{- define "rosterd.postgresPasswordFileMounted" -}}
{{- if and (include "rosterd.hasPostgresPassword" .) (eq .Values.state.postgres.password.as "file") -}}true{{- end -}}
{{- end -}}
{{- define "rosterd.postgresPasswordEnv" -}}
{{- if and (include "rosterd.hasPostgresPassword" .) (eq .Values.state.postgres.password.as "env") -}}ROSTERD_STATE_PASSWORD{{- end -}}
{{- end -}}

{{- define "rosterd.hasSourceMount" -}}
{{- if or .Values.source.existingConfigMap .Values.source.files .Values.source.volume -}}true{{- end -}}
{{- end -}}

{{/*
Refusals: every combination that would deploy something broken or unsafe stops
`helm install` / `helm template` here, with the value to change. Included by the
ConfigMap, which every release renders.
*/}}
{{- define "rosterd.validate" -}}
{{- $mode := .Values.mode -}}
{{- if not (has $mode (list "cronJob" "deployment")) -}}
{{- fail (printf "mode: %q is not cronJob or deployment" $mode) -}}
{{- end -}}
{{- $backend := .Values.state.backend -}}
{{- if not (has $backend (list "sqlite" "postgres")) -}}
{{- fail (printf "state.backend: %q is not sqlite or postgres" $backend) -}}
{{- end -}}
{{- if and (eq $mode "deployment") (eq $backend "sqlite") -}}
{{- fail "mode: deployment needs state.backend: postgres: two daemons cannot share a SQLite file on one volume (use mode: cronJob for a SQLite state)" -}}
{{- end -}}
{{- if and (eq $mode "cronJob") (not (kindIs "invalid" .Values.replicas)) -}}
{{- fail "replicas: a CronJob runs one Job per tick, never replicas; leave replicas unset in mode: cronJob (or use mode: deployment with a PostgreSQL state)" -}}
{{- end -}}
{{- if and (eq $mode "deployment") (not (kindIs "invalid" .Values.replicas)) (lt (int .Values.replicas) 0) -}}
{{- fail (printf "replicas: %v is negative" .Values.replicas) -}}
{{- end -}}
{{- if eq $backend "postgres" -}}
{{- $url := .Values.state.postgres.url | default "" -}}
{{- if not (regexMatch "^postgres(ql)?://" $url) -}}
{{- fail (printf "state.postgres.url: %q is not a postgres:// or postgresql:// URL" $url) -}}
{{- end -}}
{{- if regexMatch "^postgres(ql)?://[^/@?#]*:[^/@?#]*@" $url -}}
{{- fail "state.postgres.url: has a password in it; give it through state.postgres.password (a Secret mounted as a file) instead" -}}
{{- end -}}
{{- if and .Values.state.postgres.password.existingSecret .Values.state.postgres.password.value -}}
{{- fail "state.postgres.password: give existingSecret or value, not both" -}}
{{- end -}}
{{- if not (has .Values.state.postgres.password.as (list "file" "env")) -}}
{{- fail (printf "state.postgres.password.as: %q is not file or env" .Values.state.postgres.password.as) -}}
{{- end -}}
{{- if and (include "rosterd.postgresPasswordEnv" .) (not (regexMatch "^postgres(ql)?://[^/@?#:]+@" $url)) -}}
{{- fail "state.postgres.url: name the user (postgres://USER@host:5432/db) for state.postgres.password.as: env, which puts the password after it" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.credentials.existingSecret .Values.credentials.create -}}
{{- fail "credentials: give existingSecret or create, not both" -}}
{{- end -}}
{{- if and (contains (printf "%s/" (include "rosterd.credentialsDir" .)) (toYaml (.Values.config | default dict))) (not (include "rosterd.hasCredentials" .)) -}}
{{- fail (printf "config: refers to files under %s but no credentials are mounted there; set credentials.existingSecret or credentials.create" (include "rosterd.credentialsDir" .)) -}}
{{- end -}}
{{- $mounts := 0 -}}
{{- range (list .Values.source.existingConfigMap .Values.source.files .Values.source.volume) -}}
{{- if . -}}{{- $mounts = add1 $mounts -}}{{- end -}}
{{- end -}}
{{- if gt $mounts 1 -}}
{{- fail "source: give one of existingConfigMap, files or volume" -}}
{{- end -}}
{{- $filesBytes := 0 -}}
{{- range $name, $contents := .Values.source.files -}}
{{- $filesBytes = add $filesBytes (len $name) (len (toString $contents)) -}}
{{- end -}}
{{- if gt $filesBytes 1000000 -}}
{{- fail (printf "source.files: %d bytes, more than a ConfigMap holds (1 MiB with its metadata); mount the export with source.volume instead" $filesBytes) -}}
{{- end -}}
{{- $config := .Values.config | default dict -}}
{{- /* rosterd's secret keys (src/config/secret.rs SECRET_KEYS): the ConfigMap is readable by
whoever reads the namespace's config, so a secret written there leaks before rosterd
refuses it; and the chart gives vendors no environment for a ${VAR}. */ -}}
{{- $configYaml := toYaml $config -}}
{{- range (list "api_key" "token" "password" "bearer_token" "client_secret") -}}
{{- if regexMatch (printf "(?m)^[ -]*%s:" .) $configYaml -}}
{{- fail (printf "config: has `%s:`, a secret, which a ConfigMap must not hold; write `%s_file: %s/<key>` and put the value in the credentials Secret" . . (include "rosterd.credentialsDir" $)) -}}
{{- end -}}
{{- end -}}
{{- range (list "state" "schedule") -}}
{{- if hasKey $config . -}}
{{- fail (printf "config.%s: set by the chart (from %s); remove it from config" . (ternary "state.backend and state.sqlite / state.postgres" "schedule" (eq . "state"))) -}}
{{- end -}}
{{- end -}}
{{- if hasKey ($config.daemon | default dict) "listen" -}}
{{- fail "config.daemon.listen: set by the chart (from metrics.port); remove it from config" -}}
{{- end -}}
{{- $source := $config.source | default dict -}}
{{- if not $source.type -}}
{{- fail "config.source: required, with its type (csv, json, http or scim; README, Configuration); examples/ in the chart has whole values files" -}}
{{- end -}}
{{- if not $config.providers -}}
{{- fail "config.providers: required, at least one vendor (README, Vendors)" -}}
{{- end -}}
{{- if has ($source.type | default "") (list "csv" "json") -}}
{{- if not (include "rosterd.hasSourceMount" .) -}}
{{- fail (printf "config.source.type: %s reads a file: mount the export with source.existingConfigMap, source.files or source.volume (or use an http source)" $source.type) -}}
{{- end -}}
{{- if not (hasPrefix (printf "%s/" (trimSuffix "/" .Values.source.mountPath)) ($source.path | default "")) -}}
{{- fail (printf "config.source.path: %q is not under source.mountPath (%s), where the export is mounted" ($source.path | default "") .Values.source.mountPath) -}}
{{- end -}}
{{- else if include "rosterd.hasSourceMount" . -}}
{{- fail (printf "source: an export is mounted but config.source.type %q does not read a file (csv or json)" ($source.type | default "")) -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (eq $mode "cronJob") -}}
{{- fail "metrics.serviceMonitor.enabled: a CronJob serves no /metrics to scrape; push to a Pushgateway with config.metrics.push_url instead (or use mode: deployment)" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor selects that Service" -}}
{{- end -}}
{{- end -}}

{{/* The state key of rosterd's config as one string: a file, or a URL (with the password's ${VAR} in it for as: env). */}}
{{- define "rosterd.state" -}}
{{- if include "rosterd.postgresPasswordEnv" . -}}
{{- regexReplaceAll "^(postgres(ql)?://[^/@?#:]+)@" .Values.state.postgres.url (printf "${1}:$${%s}@" (include "rosterd.postgresPasswordEnv" .)) -}}
{{- else if eq .Values.state.backend "postgres" -}}
{{- .Values.state.postgres.url -}}
{{- else -}}
{{- printf "%s/rosterd.db" (include "rosterd.stateDir" .) -}}
{{- end -}}
{{- end -}}

{{/* rosterd's config: the user's `config` with the keys the chart owns. */}}
{{- define "rosterd.config" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- if include "rosterd.postgresPasswordFileMounted" . -}}
{{- /* rosterd's form for a password apart from the URL: state: {url, password_file}. */ -}}
{{- $_ := set $config "state" (dict "url" .Values.state.postgres.url "password_file" (include "rosterd.postgresPasswordFile" .)) -}}
{{- else -}}
{{- $_ := set $config "state" (include "rosterd.state" .) -}}
{{- end -}}
{{- if eq .Values.mode "deployment" -}}
{{- $_ := set $config "schedule" .Values.schedule -}}
{{- $daemon := deepCopy ($config.daemon | default dict) -}}
{{- $_ := set $daemon "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- $_ := set $config "daemon" $daemon -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
The pod both modes run: non-root, read-only root filesystem, no capabilities; the
config, the credentials and the export mounted read-only.
Called with (dict "root" $ "args" (list ...) "restartPolicy" "..." "daemon" bool).
*/}}
{{- define "rosterd.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
{{- if .daemon }}
terminationGracePeriodSeconds: {{ $root.Values.deployment.terminationGracePeriodSeconds }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and .daemon $root.Values.deployment.spreadAcrossNodes }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "rosterd.selectorLabels" $root | nindent 8 }}
{{- end }}
containers:
  - name: rosterd
    image: {{ printf "%s:%s" $root.Values.image.repository ($root.Values.image.tag | default $root.Chart.AppVersion) | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: ROSTERD_CONFIG
        value: {{ printf "%s/rosterd.yaml" (include "rosterd.configDir" $root) }}
      {{- with include "rosterd.postgresPasswordEnv" $root }}
      - name: {{ . }}
        valueFrom:
          secretKeyRef:
            name: {{ include "rosterd.postgresSecret" $root }}
            key: {{ $root.Values.state.postgres.password.key | quote }}
      {{- end }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml $root.Values.resources | nindent 6 }}
    {{- if .daemon }}
    ports:
      - name: metrics
        containerPort: {{ $root.Values.metrics.port }}
        protocol: TCP
    # /healthz turns 503 after daemon.unhealthy_after failed passes in a row: restart.
    livenessProbe:
      httpGet: { path: /healthz, port: metrics }
      periodSeconds: 30
      failureThreshold: 3
    # Not /readyz: it answers 503 until this replica has finished a pass, and a replica
    # waiting for the run lock may not pass before the next tick; a rollout would stall.
    readinessProbe:
      httpGet: { path: /healthz, port: metrics }
      periodSeconds: 10
    {{- end }}
    volumeMounts:
      - { name: config, mountPath: {{ include "rosterd.configDir" $root }}, readOnly: true }
      {{- if include "rosterd.hasCredentials" $root }}
      - { name: credentials, mountPath: {{ include "rosterd.credentialsDir" $root }}, readOnly: true }
      {{- end }}
      {{- if include "rosterd.postgresPasswordFileMounted" $root }}
      - { name: postgres-password, mountPath: {{ dir (include "rosterd.postgresPasswordFile" $root) }}, readOnly: true }
      {{- end }}
      {{- if eq $root.Values.state.backend "sqlite" }}
      - { name: state, mountPath: {{ include "rosterd.stateDir" $root }} }
      {{- end }}
      {{- if include "rosterd.hasSourceMount" $root }}
      - { name: hr-export, mountPath: {{ $root.Values.source.mountPath }}, readOnly: true }
      {{- end }}
      - { name: tmp, mountPath: /tmp }
volumes:
  - name: config
    configMap: { name: {{ include "rosterd.fullname" $root }}-config }
  {{- if include "rosterd.hasCredentials" $root }}
  - name: credentials
    secret:
      secretName: {{ include "rosterd.credentialsSecret" $root }}
      defaultMode: 256  # 0400
  {{- end }}
  {{- if include "rosterd.postgresPasswordFileMounted" $root }}
  - name: postgres-password
    secret:
      secretName: {{ include "rosterd.postgresSecret" $root }}
      defaultMode: 256  # 0400
      items:
        - { key: {{ $root.Values.state.postgres.password.key | quote }}, path: {{ base (include "rosterd.postgresPasswordFile" $root) }} }
  {{- end }}
  {{- if eq $root.Values.state.backend "sqlite" }}
  - name: state
    persistentVolumeClaim:
      claimName: {{ $root.Values.state.sqlite.existingClaim | default (printf "%s-state" (include "rosterd.fullname" $root)) }}
  {{- end }}
  {{- if $root.Values.source.existingConfigMap }}
  - name: hr-export
    configMap: { name: {{ $root.Values.source.existingConfigMap }} }
  {{- else if $root.Values.source.files }}
  - name: hr-export
    configMap: { name: {{ include "rosterd.fullname" $root }}-hr-export }
  {{- else if $root.Values.source.volume }}
  - name: hr-export
    {{- toYaml $root.Values.source.volume | nindent 4 }}
  {{- end }}
  - name: tmp
    emptyDir: {}
{{- end -}}

{{/* The pod template's metadata: labels, and a checksum that rolls pods on a config change. */}}
{{- define "rosterd.podMetadata" -}}
labels:
  {{- include "rosterd.selectorLabels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "rosterd.config" . | sha256sum }}
  {{- with .Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
