"""The Kubernetes manifests (deploy/k8s): valid for the API server, offline, and true to our services.

kubernetes-validate ships the Kubernetes JSON schemas per version, so every manifest is checked in strict
mode (an unknown field is an error, as `kubectl apply --validate=strict` would say) with no cluster and no
network. Beyond the schemas, the rules of docs/deploy.md: replicated Deployments roll with no unavailable
replica and have a PodDisruptionBudget; probes ask routes our services (or Rasa, rasa-sdk) really declare,
on the port the service really binds with the manifest's settings; every container has requests and limits
and runs unprivileged; credentials come only from the Secret, whose example names each one and can start
nothing; each service's own settings loader accepts the manifest's environment with APP_ENV=production;
commands are the paths deploy/Dockerfile creates.
"""
from __future__ import annotations

import copy
import importlib.util
import ipaddress
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import validate as k8s_validate
from kubernetes_validate.utils import ValidationError

from common.secrets import DEV_DEFAULTS, problem
from common.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
ENDPOINTS = K8S / "endpoints.production.yml"
SECRET_NAME = "hotline-secrets"
CONFIG_NAME = "hotline-config"
# the oldest Kubernetes we document (CronJob timeZone and policy/v1 are GA there) and the newest schemas shipped
VERSIONS = ("1.29.0", "1.37.0")
# environment names the manifests set that are neither in .env.example nor in scripts/env.sh, with the reason
DEPLOY_ONLY = {
    "SANIC_PROXIES_COUNT": "Sanic's own setting; the web app takes the client address from the Ingress' "
                           "X-Forwarded-For with it (webapp/routes/chat_api.py)",
}
# names that hold a credential whatever they are called: never a literal value in a manifest
SECRET_WORD = re.compile(r"(?:^|_)(?:TOKEN|SECRET|PASSWORD)(?:_|$)")
CREDENTIAL_NAME = re.compile(SECRET_WORD.pattern + r"|_DATABASE_URL$|^TRACKER_STORE_URL$|^RASA_EVENTS_URL$|WEBHOOK")
CREDENTIAL_IN_URL = re.compile(r"://[^/\s:@]+:[^@\s/]+@")


# ---------------------------------------------------------------------------------------------- loading
def kustomization() -> dict[str, Any]:
    """deploy/k8s/kustomization.yaml."""
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def applied() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/k8s` creates from files (the generated ConfigMap aside)."""
    return [doc for name in kustomization()["resources"] for doc in documents(K8S / name)]


def of_kind(kind: str, docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [d for d in (applied() if docs is None else docs) if d["kind"] == kind]


def config_map() -> dict[str, str]:
    """The shared non-secret settings (ConfigMap hotline-config)."""
    (cm,) = [d for d in of_kind("ConfigMap") if d["metadata"]["name"] == CONFIG_NAME]
    return cm["data"]


def secret_example() -> dict[str, str]:
    """The keys and placeholder values of secret.example.yaml."""
    (doc,) = documents(SECRET_EXAMPLE)
    return doc["stringData"]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a Deployment or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def workloads(docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Deployments and CronJobs."""
    docs = applied() if docs is None else docs
    return [d for d in docs if d["kind"] in ("Deployment", "CronJob")]


def containers(docs: list[dict[str, Any]] | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every workload."""
    for w in workloads(docs):
        spec = pod_spec(w)
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield w, c


def container(name: str) -> dict[str, Any]:
    """One container by name."""
    (c,) = [c for _, c in containers() if c["name"] == name]
    return c


def container_env(c: dict[str, Any], secret_values: Mapping[str, str], config: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the container starts with: the ConfigMap, then its own env (which wins), secrets filled in."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        assert source["configMapRef"]["name"] == CONFIG_NAME
        env.update(config_map() if config is None else config)
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            env[var["name"]] = secret_values[var["valueFrom"]["secretKeyRef"]["key"]]
    return env


def filled_secrets() -> dict[str, str]:
    """The example Secret as an operator fills it: each empty token, secret or password a fresh random value."""
    return {k: v or (secrets.token_hex(24) if SECRET_WORD.search(k) else "")
            for k, v in secret_example().items()}


def expand(arg: str, env: Mapping[str, str]) -> str:
    """A container argument with $(VAR) expanded as the kubelet does; KeyError for an undefined variable."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], arg)


def strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) in parsed YAML."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def port_after(argv: list[str], flag: str = "-p") -> int:
    """The port given on a command line after `flag`."""
    return int(argv[argv.index(flag) + 1])


# ------------------------------------------------------------------------ what our services really serve
def rasa_site_packages() -> Path:
    """site-packages of the Rasa environment (make envs)."""
    found = sorted((ROOT / ".venv" / "rasa" / "lib").glob("python3*/site-packages/rasa/server.py"))
    assert found, "the Rasa environment is missing: run `make envs`"
    return found[0].parent.parent


def rasa_sdk_endpoint() -> Path:
    """rasa_sdk/endpoint.py of this (service) environment: the action server's app."""
    spec = importlib.util.find_spec("rasa_sdk.endpoint")
    assert spec and spec.origin
    return Path(spec.origin)


def route_sources(container_name: str) -> list[Path]:
    """The files that declare a container's HTTP routes."""
    return {
        "rasa": lambda: [rasa_site_packages() / "rasa" / "server.py"],
        "action-server": lambda: [rasa_sdk_endpoint(), ROOT / "actions" / "server.py"],
        "webapp": lambda: [ROOT / "webapp" / "app.py", *sorted((ROOT / "webapp" / "routes").glob("*.py"))],
        "voice-gateway": lambda: [ROOT / "voice" / "app.py"],  # not tests/voice/doubles.py: its fake Rasa has /status
    }[container_name]()


def declares_route(files: list[Path], path: str, websocket: bool = False) -> bool:
    """True when one of the files declares a GET (or WebSocket) route for exactly this path (Sanic, Rasa, rasa-sdk)."""
    method = "websocket" if websocket else "(?:get|route)"
    pattern = re.compile(rf"""(?:\.{method}\(\s*|add_{'websocket_' if websocket else ''}route\(\s*[\w.]+\s*,\s*)["']"""
                         + re.escape(path) + r"""["']""")
    return any(pattern.search(f.read_text(encoding="utf-8")) for f in files)


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (Mi or Gi) in MiB."""
    number, unit = quantity[:-2], quantity[-2:]
    return float(number) * {"Mi": 1, "Gi": 1024}[unit]


def cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def started_settings(c: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Load the container's service settings from `env` as the process does at start; what it binds.

    Raises SettingsError (SecretError) when the service would refuse to start."""
    command = c["command"] + c.get("args", [])
    name = c["name"]
    if name == "rasa":
        from common.secrets import secret

        secret("CHANNEL_TOKEN", env)  # bot/channels: the channel token, refused in production when unusable
        secret("ACTION_TOKEN", env)
        secret("RASA_TOKEN", env)
        argv = [expand(a, env) for a in command]
        needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", ENDPOINTS.read_text(encoding="utf-8")))
        missing = sorted(needed - env.keys())
        if missing:  # Rasa stops at start on an undefined ${VAR} in its endpoints
            raise SettingsError(f"endpoints.production.yml needs {', '.join(missing)}")
        return {"host": argv[argv.index("-i") + 1], "ports": {port_after(argv)}}
    if name == "action-server":
        from actions.settings import load_settings as load_actions
        from cardsys.settings import load_settings as load_cardsys

        s = load_actions(env)
        load_cardsys(env)  # the card actions' settings, read by the same process
        return {"host": s.host, "ports": {port_after(command)}, "settings": s}
    if name == "webapp":
        from webapp.settings import load_settings as load_webapp

        s = load_webapp(env)
        return {"host": s.host, "ports": {s.port}, "settings": s}
    if name == "voice-gateway":
        from voice.settings import load_settings as load_voice

        s = load_voice(env)
        return {"host": s.http_host, "ports": {s.http_port, s.audiosocket_port}, "audiosocket_host": s.audiosocket_host,
                "settings": s}
    if name in ("analytics-ingest", "analytics-alerts"):
        from analytics.settings import load_settings as load_analytics
        from common.events import EventSettings

        s = load_analytics(env)
        EventSettings.from_env(env, default_url=s.rasa_events_url)
        return {"ports": set(), "settings": s}
    raise AssertionError(f"no settings loader known for container {name!r}: add it to started_settings")


# ------------------------------------------------------------------------------------------------ tests
def test_the_kustomization_applies_every_manifest_except_the_secret_example() -> None:
    k = kustomization()
    listed = set(k["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", SECRET_EXAMPLE.name}
    assert listed == on_disk, "every manifest in deploy/k8s is listed in kustomization.yaml, and only those"
    assert SECRET_EXAMPLE.name not in listed, "the Secret is filled outside the repository, never applied from here"
    (generator,) = k["configMapGenerator"]
    assert generator["name"] == "rasa-endpoints"
    (item,) = generator["files"]
    key, _, source = item.partition("=")
    assert key == "endpoints.yml" and (K8S / source).is_file()
    # the replicas share a Redis lock store (Rasa's, with the fix for a killed replica's ticket: bot/lock_store.py)
    assert yaml.safe_load((K8S / source).read_text(encoding="utf-8"))["lock_store"]["type"] == "bot.lock_store.HotlineRedisLockStore"
    image_names = {c["image"] for _, c in containers()}
    assert image_names == {i["name"] for i in k["images"]}, "one image, named in the kustomization's images"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", sorted(set(K8S.glob("*.yaml")) - {K8S / "kustomization.yaml"}), ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        k8s_validate(doc, version, strict=True)


def test_the_schema_check_refuses_a_broken_manifest() -> None:
    (deployment, *_) = documents(K8S / "rasa.yaml")
    misspelt = copy.deepcopy(deployment)
    c = misspelt["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    no_selector = copy.deepcopy(deployment)
    del no_selector["spec"]["selector"]
    for broken in (misspelt, wrong_type, no_selector):
        with pytest.raises(ValidationError):
            k8s_validate(broken, VERSIONS[-1], strict=True)
    k8s_validate(deployment, VERSIONS[-1], strict=True)  # the original passes


def test_every_deployment_rolls_with_no_unavailable_replica_and_replicated_ones_have_a_budget() -> None:
    docs = applied()
    budgets = of_kind("PodDisruptionBudget", docs)
    for d in of_kind("Deployment", docs):
        name, replicas = d["metadata"]["name"], d["spec"]["replicas"]
        strategy = d["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, f"{name}: a new pod is ready before an old one goes"
        assert strategy["rollingUpdate"]["maxSurge"] >= 1, name
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        if replicas >= 2:
            assert len(covering) == 1, f"{name}: one PodDisruptionBudget per replicated Deployment"
            spec = covering[0]["spec"]
            allowed_down = replicas - spec["minAvailable"] if "minAvailable" in spec else spec["maxUnavailable"]
            assert 1 <= allowed_down < replicas, f"{name}: a drain may take one pod, never all"
        else:  # a budget on a single pod would block every node drain
            assert not covering, f"{name}: no PodDisruptionBudget on a single replica"


def test_every_server_has_probes_on_a_route_it_declares_and_the_port_it_binds() -> None:
    values = filled_secrets()
    for w, c in containers():
        if w["kind"] != "Deployment":
            continue
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        bound = started_settings(c, container_env(c, values))
        assert bound["host"] == "0.0.0.0", f"{c['name']} must listen on the pod's address, not loopback"
        assert set(ports.values()) == bound["ports"], f"{c['name']}: containerPorts are the ports the service binds"
        for kind in ("readinessProbe", "livenessProbe"):
            probe = c.get(kind)
            assert probe and "httpGet" in probe, f"{c['name']} needs an HTTP {kind}"
            port = probe["httpGet"]["port"]
            port = ports[port] if isinstance(port, str) else port
            assert port in bound["ports"], f"{c['name']}: {kind} on port {port}, which the service does not bind"
            path = probe["httpGet"]["path"]
            assert declares_route(route_sources(c["name"]), path), f"{c['name']}: {kind} asks {path}, no such route"
        assert probe["timeoutSeconds"] >= 1 and probe["failureThreshold"] >= 3, c["name"]


def test_a_probe_on_a_route_nobody_declares_is_caught() -> None:
    assert declares_route(route_sources("webapp"), "/health")
    assert declares_route(route_sources("rasa"), "/")
    assert declares_route(route_sources("action-server"), "/health")
    assert not declares_route(route_sources("webapp"), "/healthz")
    assert not declares_route(route_sources("voice-gateway"), "/status")


def test_every_container_has_requests_and_limits_and_runs_unprivileged() -> None:
    uid = int(re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M).group(1))
    for w, c in containers():
        pod, res = pod_spec(w), c.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= res.get(kind, {}).keys(), f"{c['name']}: {kind} for cpu and memory"
        assert mebibytes(res["requests"]["memory"]) <= mebibytes(res["limits"]["memory"]), c["name"]
        assert cores(res["requests"]["cpu"]) <= cores(res["limits"]["cpu"]), c["name"]
        sc = c["securityContext"]
        assert sc.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot")) is True, c["name"]
        assert pod["securityContext"]["runAsUser"] == uid, f"{c['name']}: the image's user (deploy/Dockerfile USER)"
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert pod["automountServiceAccountToken"] is False, c["name"]
        assert {m["mountPath"] for m in c.get("volumeMounts", [])} >= {"/tmp"}, f"{c['name']}: a writable /tmp"


def test_the_measured_memory_fits_under_each_limit() -> None:
    # RSS measured (docs/bench_stack.md, docs/voice.md): a limit below it would kill the pod at the first peak
    measured_mib = {"rasa": 1631 * 10**6 / 2**20, "action-server": 1019 * 10**6 / 2**20, "webapp": 70 * 10**6 / 2**20,
                    "voice-gateway": 741}
    for name, mib in measured_mib.items():
        resources = container(name)["resources"]
        assert mebibytes(resources["requests"]["memory"]) >= mib, f"{name}: request below the measured RSS"
        assert mebibytes(resources["limits"]["memory"]) >= 1.25 * mib, f"{name}: limit without headroom"


def test_credentials_come_from_the_secret_and_the_example_names_each_one() -> None:
    example = secret_example()
    referenced: set[str] = set()
    for _, c in containers():
        for var in c.get("env", []):
            if "valueFrom" not in var:
                continue
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET_NAME, c["name"]
            assert ref["key"] in example, f"{c['name']}: {ref['key']} is not in secret.example.yaml"
            assert ref["key"] == var["name"], f"{c['name']}: the variable has the name of its key"
            referenced.add(ref["key"])
    assert set(DEV_DEFAULTS) <= referenced, "every secret production requires (common/secrets.py) reaches a service"
    assert referenced == set(example), "no key in the example that no container reads"


def test_no_literal_credential_in_the_applied_manifests() -> None:
    secret_keys = set(secret_example())
    for key in config_map():
        assert key not in secret_keys and not CREDENTIAL_NAME.search(key), f"ConfigMap holds {key}: move it to the Secret"
    for _, c in containers():
        for var in c.get("env", []):
            if "value" in var:
                assert var["name"] not in secret_keys and not CREDENTIAL_NAME.search(var["name"]), \
                    f"{c['name']}: {var['name']} has a literal value; take it from the Secret"
        argv = c["command"] + c.get("args", [])
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag in ("--auth-token", "--token"):
                assert re.fullmatch(r"\$\([A-Z_]+\)", value), f"{c['name']}: a literal token argument"
    for name in kustomization()["resources"] + [ENDPOINTS.name]:  # values, not the comments' examples
        for text in strings(list(yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")))):
            assert not CREDENTIAL_IN_URL.search(text), f"{name}: a URL with a user and password"
    assert of_kind("Secret") == [], "no Secret is applied from the repository"


def test_the_example_secret_can_start_nothing() -> None:
    example = {**secret_example(), "APP_ENV": "production"}
    for name in DEV_DEFAULTS:
        assert problem(name, example), f"{name}: the example's placeholder would pass the production check"
    for key, value in secret_example().items():
        if "://" in value:
            host = urllib.parse.urlsplit(value).hostname or ""
            assert host.endswith(".invalid"), f"{key}: a placeholder URL must point at a host that never resolves"
    for key in ("REDIS_HOST", "RABBITMQ_HOST"):
        assert config_map()[key].endswith(".invalid"), key


def test_each_service_starts_in_production_with_its_manifest_environment() -> None:
    values = filled_secrets()
    for _, c in containers():
        env = container_env(c, values)
        assert env["APP_ENV"] == "production"
        started_settings(c, env)  # raises what the service would print and stop with


def test_a_container_missing_a_secret_would_not_start() -> None:
    values = filled_secrets()
    checks: list[tuple[str, str]] = [("webapp", "SESSION_SECRET"), ("voice-gateway", "VOICE_CALLER_KEY_SECRET"),
                                     ("action-server", "ACTION_TOKEN"), ("rasa", "CHANNEL_TOKEN"), ("rasa", "REDIS_PASSWORD")]
    for name, key in checks:
        c = copy.deepcopy(container(name))
        c["env"] = [v for v in c["env"] if v["name"] != key]
        with pytest.raises(SettingsError):
            started_settings(c, container_env(c, values))
        values_dev = {**values, key: DEV_DEFAULTS.get(key, "")}
        if key in DEV_DEFAULTS:  # a development value is refused as well
            with pytest.raises(SettingsError):
                started_settings(container(name), container_env(container(name), values_dev))


def test_every_setting_set_by_the_manifests_is_documented() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    exports = [line for line in (ROOT / "scripts" / "env.sh").read_text(encoding="utf-8").splitlines() if line.startswith("export ")]
    documented |= {name for line in exports for name in re.findall(r"(?:^export |\s)([A-Z][A-Z0-9_]*)=", line)}
    documented |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", ENDPOINTS.read_text(encoding="utf-8")))
    documented |= set(DEPLOY_ONLY)
    names = set(config_map()) | {v["name"] for _, c in containers() for v in c.get("env", [])} | set(secret_example())
    assert names - documented == set(), "document each setting in .env.example (or DEPLOY_ONLY with a reason)"
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name in set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", ENDPOINTS.read_text(encoding="utf-8"))) | set(DEPLOY_ONLY):
        assert name in deploy_doc, f"docs/deploy.md explains {name}"


def test_services_ingress_and_urls_name_real_pods_and_ports() -> None:
    docs = applied()
    services = {s["metadata"]["name"]: s for s in of_kind("Service", docs)}
    for s in services.values():
        pods = [w for w in of_kind("Deployment", docs)
                if s["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"Service {s['metadata']['name']} selects no Deployment"
        named = {p["name"] for w in pods for c in pod_spec(w)["containers"] for p in c["ports"]}
        for p in s["spec"]["ports"]:
            assert p["targetPort"] in named, f"Service {s['metadata']['name']}: no container port {p['targetPort']}"

    def service_port(host: str, port: int) -> bool:
        return host in services and any(p["port"] == port for p in services[host]["spec"]["ports"])

    for key in ("RASA_URL", "ACTION_SERVER_URL", "WEBAPP_URL"):
        url = urllib.parse.urlsplit(config_map()[key])
        assert service_port(url.hostname, url.port), f"{key} names no Service port"
    voice_url = urllib.parse.urlsplit(started_settings(container("webapp"), container_env(
        container("webapp"), filled_secrets()))["settings"].voice_url)
    assert service_port(voice_url.hostname, voice_url.port), "the web app's softphone reaches the voice gateway's Service"
    for ingress in of_kind("Ingress", docs):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports, backend
        for host in {h for t in ingress["spec"]["tls"] for h in t["hosts"]}:
            assert host in {r["host"] for r in ingress["spec"]["rules"]}, "TLS for every host (cookies are Secure)"
        assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600, \
            "WebSockets stay open through quiet minutes"
        for rule in ingress["spec"]["rules"]:  # a path of its own is a WebSocket route of the backend's service
            for path in rule["http"]["paths"]:
                if path["path"] != "/":
                    backend = path["backend"]["service"]["name"]
                    assert declares_route(route_sources(backend), path["path"], websocket=True), path["path"]


def test_the_pbx_is_admitted_by_the_load_balancer_and_by_the_gateway_alike() -> None:
    (pbx,) = [s for s in of_kind("Service") if s["spec"].get("type") == "LoadBalancer"]
    assert pbx["spec"]["externalTrafficPolicy"] == "Local", "the gateway must see the PBX's own address"
    ranges = {ipaddress.ip_network(r) for r in pbx["spec"]["loadBalancerSourceRanges"]}
    peers = {ipaddress.ip_network(p.strip(), strict=False) for p in config_map()["AUDIOSOCKET_PEERS"].split(",")}
    assert ranges == peers


def test_commands_are_what_the_image_contains() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "WORKDIR /app" in dockerfile
    assert "scripts/setup_env.sh rasa" in dockerfile and "scripts/setup_env.sh svc" in dockerfile
    assert "scripts/train.sh" in dockerfile and "current.tar.gz" in (ROOT / "scripts" / "train.sh").read_text()
    venvs = {"/app/.venv/rasa/bin/rasa": "rasa", "/app/.venv/svc/bin/python": "svc"}
    for _, c in containers():
        assert c["workingDir"] == "/app", c["name"]
        assert c["command"][0] in venvs, f"{c['name']}: {c['command'][0]} is not in the image"
        argv = c["command"] + c.get("args", [])
        if "-m" in argv:
            module = argv[argv.index("-m") + 1]
            assert (ROOT / module.replace(".", "/")).with_suffix(".py").is_file() or \
                (ROOT / module.replace(".", "/") / "__main__.py").is_file(), f"{c['name']}: no module {module}"
        for flag in ("--model", "--credentials"):
            if flag in argv:
                path = argv[argv.index(flag) + 1]
                assert path.startswith("build/") or (ROOT / path).is_file(), f"{c['name']}: {path}"
    config = config_map()
    assert f"KB_CACHE_DIR={config['KB_CACHE_DIR']}" in dockerfile, "the embedding cache is baked where the action server reads it"
    assert config["EMBEDDING_MODEL"].removeprefix("/app/") in dockerfile, "the embedding model is built into the image"
    assert config["KB_CONTENT_DIR"] == "/app/knowledge/content" and (ROOT / "knowledge" / "content").is_dir()
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".env", "var", ".venv"} <= set(ignored), "no local secrets, data or environments in the image"


@pytest.mark.parametrize("name", ["rasa", "action-server", "webapp", "voice-gateway"])
def test_each_long_running_service_is_in_the_docs(name: str) -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in of_kind("Deployment")}
    assert f"`{name}`" in doc, f"docs/deploy.md describes {name}"
    assert re.search(rf"`{re.escape(name)}`[^\n]*\|\s*{replicas[name]}\s*\|", doc), \
        f"docs/deploy.md's sizing table gives {name} {replicas[name]} replica(s), as the manifest"

