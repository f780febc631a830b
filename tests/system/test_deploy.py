"""The deployment files: deploy/kubernetes/ (kustomize) and docker-compose.yml with deploy/compose/.

No cluster or Docker engine here, so: the Kubernetes manifests are rendered the way kustomize
would (a small renderer for the few features kustomization.yaml uses) and checked against the
Kubernetes API schemas by `kubernetes-validate` (bundled schemas, works offline; CI installs it,
see .ci/run), their cross-references are checked, and the server is started exactly as the
Deployment starts it. The compose file is checked for structure against the nginx config.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import (
    ERAS,
    REPO,
    free_port,
    hamsa_tool,
    nginx_binary,
    required_module,
    secret,
    serve_asgi,
    serving_pid,
    write_tools,
)

from mcp_webtools.serving.runtime import load_toolset
from mcp_webtools.serving.state import state_url_problem

KUSTOMIZE_DIR = REPO / "deploy" / "kubernetes"
COMPOSE_FILE = REPO / "docker-compose.yml"
NGINX_CONF = REPO / "deploy" / "compose" / "nginx.conf"
# The oldest Kubernetes the manifests are meant for, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
CLUSTER_SCOPED = {"Namespace"}


# -- a renderer for what deploy/kubernetes/kustomization.yaml uses --------------------------------


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize directory` builds (names without kustomize's hash suffix)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "namespace", "resources", "images", "configMapGenerator", "secretGenerator"}
    assert set(kustomization) <= known, f"the renderer does not know {set(kustomization) - known}"
    resources: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        resources += [doc for doc in yaml.safe_load_all((directory / name).read_text()) if doc]
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(f).name: (directory / f).read_text() for f in generator.get("files", [])}
        data |= dict(literal.split("=", 1) for literal in generator.get("literals", []))
        resources.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    for generator in kustomization.get("secretGenerator", []):
        values = {k: v for env in generator.get("envs", []) for k, v in env_file(directory / env).items()}
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]}, "type": "Opaque"}
        resources.append({**secret, "data": encoded})
    images = {image["name"]: f"{image['newName']}:{image['newTag']}" for image in kustomization.get("images", [])}
    for resource in resources:
        if "namespace" in kustomization and resource["kind"] not in CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = kustomization["namespace"]
        for container in pod_spec(resource).get("containers", []):
            container["image"] = images.get(container["image"], container["image"])
    return resources


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("spec", {}).get("template", {}).get("spec", {})


def one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} resources"
    return found[0]


def schema_checker() -> Any:
    """The `kubernetes_validate` module: CI installs it, so there a missing one fails the test."""
    return required_module("kubernetes_validate", "pip install -e '.[deploy-check]'")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(KUSTOMIZE_DIR)


# -- Kubernetes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(rendered, version):
    kubernetes_validate = schema_checker()
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]
    for resource in rendered:
        # strict: unknown fields (a typo such as `readinesProbe`) fail too.
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_redis_option_matches_the_schemas_and_the_commented_setting(version):
    """deploy/kubernetes/redis/: the shared store, applied on its own; the setting that uses it is
    ready in the main kustomization, commented out, and names the Redis Service as it is."""
    kubernetes_validate = schema_checker()
    redis = render(KUSTOMIZE_DIR / "redis")
    assert sorted(r["kind"] for r in redis) == ["Deployment", "Service"]
    for resource in redis:
        kubernetes_validate.validate(resource, version, strict=True)
    service, deployment = one(redis, "Service"), one(redis, "Deployment")
    (container,) = pod_spec(deployment)["containers"]
    assert {"--save", "--appendonly"} <= set(container["args"])  # no persistence
    assert container["args"][container["args"].index("--appendonly") + 1] == "no"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    text = (KUSTOMIZE_DIR / "kustomization.yaml").read_text()
    (url,) = re.findall(r"^\s*# - MCP_WEBTOOLS_STATE=(\S+)$", text, re.M)
    port = service["spec"]["ports"][0]["port"]
    assert url == f"redis://{service['metadata']['name']}:{port}/0" and state_url_problem(url) is None
    namespaces = {r["metadata"]["namespace"] for r in render(KUSTOMIZE_DIR) if r["kind"] != "Namespace"}
    assert {r["metadata"]["namespace"] for r in redis} == namespaces  # the Service name resolves from the pods


def test_a_broken_manifest_fails_the_schema_check(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = yaml.safe_load(yaml.safe_dump(one(rendered, "Deployment")))
    container = pod_spec(deployment)["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_manifests_refer_to_each_other(rendered):
    deployment, service = one(rendered, "Deployment"), one(rendered, "Service")
    hpa, pdb = one(rendered, "HorizontalPodAutoscaler"), one(rendered, "PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert selector.items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["minAvailable"] == 1

    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports
    assert str(ports["http"]) in flag(container, "--port")
    assert (container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]) == (
        {"path": "/healthz", "port": "http"},
        {"path": "/readyz", "port": "http"},
    )

    config_maps = {r["metadata"]["name"] for r in rendered if r["kind"] == "ConfigMap"}
    secrets = {r["metadata"]["name"] for r in rendered if r["kind"] == "Secret"}
    referenced = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    referenced += [v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v]
    assert set(referenced) == config_maps
    assert {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e} == secrets
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[flag(container, "--config")]["readOnly"] is True

    # Replicas behind a round-robin Service: stateless, one worker each (scale with replicas).
    assert "--stateless" in container["args"] and "--workers" not in " ".join(container["args"])
    assert "sessionAffinity" not in service["spec"]
    # Locked down.
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # Sized (deploy/README.md, "Sizing"), and given time to drain: the grace, plus the preStop pause.
    assert set(container["resources"]) == {"requests", "limits"}
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > float(flag(container, "--shutdown-grace")) + pause


def flag(container: dict[str, Any], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in container["args"] if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"{name}= in {container['args']}"
    return values[0]


def test_the_tools_configmap_is_the_shipped_config_and_loads(rendered, tmp_path):
    tools = next(r for r in rendered if r["kind"] == "ConfigMap" and r["metadata"]["name"] == "mcp-webtools-tools")
    shipped = {path.name: path.read_text() for path in sorted((REPO / "config").iterdir())}
    assert tools["data"] == shipped  # deploy/kubernetes/tools/ is a copy of config/: keep them in step
    for name, text in tools["data"].items():
        (tmp_path / name).write_text(text)
    toolset, loaded = load_toolset([str(tmp_path)], environ=pod_environment(rendered))
    assert len(toolset) == 7 and len(loaded.files) == 4


def test_the_example_secret_values_are_obviously_fake(rendered):
    secret = one(rendered, "Secret")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(values) == {"MCP_WEBTOOLS_AUTH_TOKEN", "DEMO_API_TOKEN"}
    assert all(value.startswith("example-") and value.endswith("-replace-me") for value in values.values())
    # Every `${NAME}` without a default in the tools comes from the Secret or the settings.
    tools = next(r for r in rendered if r["kind"] == "ConfigMap" and r["metadata"]["name"] == "mcp-webtools-tools")
    referenced = {m for text in tools["data"].values() for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)}
    assert referenced <= set(pod_environment(rendered))


def pod_environment(rendered: list[dict[str, Any]]) -> dict[str, str]:
    """The environment variables the Deployment's envFrom gives the container."""
    container = pod_spec(one(rendered, "Deployment"))["containers"][0]
    by_name = {r["metadata"]["name"]: r for r in rendered if r["kind"] in ("ConfigMap", "Secret")}
    environ: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            environ |= by_name[source["configMapRef"]["name"]]["data"]
        else:
            data = by_name[source["secretRef"]["name"]]["data"]
            environ |= {k: base64.b64decode(v).decode() for k, v in data.items()}
    return environ


@asynccontextmanager
async def server_process(args: list[str], environ: dict[str, str], log: Path) -> AsyncIterator[str]:
    """`python -m mcp_webtools <args>` with its log in `log`; yields its base URL once it serves."""
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "mcp_webtools", *args], env=environ, cwd=REPO, stderr=sink)
    try:
        with anyio.fail_after(60):
            while (match := re.search(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp", log.read_text())) is None:
                assert process.poll() is None, f"the server stopped:\n{log.read_text()}"
                await anyio.sleep(0.05)  # polling its log: there is nothing to wait on
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_tools_configmap(rendered: list[dict[str, Any]], directory: Path) -> Path:
    tools = next(r for r in rendered if r["kind"] == "ConfigMap" and r["metadata"]["name"] == "mcp-webtools-tools")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in tools["data"].items():
        (directory / name).write_text(text)
    return directory


@pytest.mark.e2e
@pytest.mark.anyio
async def test_the_server_starts_as_the_deployment_starts_it(rendered, tmp_path):
    """The Deployment's args and environment, on loopback: probes answer, the Service's Host is accepted."""
    container = pod_spec(one(rendered, "Deployment"))["containers"][0]
    config = write_tools_configmap(rendered, tmp_path / "config")
    args = [a for a in container["args"] if not a.startswith(("--host=", "--port=", "--config="))]
    args += ["--host=127.0.0.1", "--port=0", f"--config={config}"]
    environ = {**os.environ, **pod_environment(rendered)}
    token = secret(environ["MCP_WEBTOOLS_AUTH_TOKEN"])
    async with (
        server_process(args, environ, tmp_path / "server.log") as base,
        httpx2.AsyncClient(base_url=base, timeout=10) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
            "authorization": f"Bearer {token}",
        }
        for host, status in (("mcp-webtools", 200), ("mcp.example.com", 200), ("evil.example", 421)):
            answer = await http.post("/mcp", json=listing, headers={**headers, "host": host})
            assert answer.status_code == status, (host, answer.text)
        assert (await http.post("/mcp", json=listing, headers={**headers, "authorization": ""})).status_code == 401


# -- docker compose -------------------------------------------------------------------------------


def test_compose_replicas_sit_behind_the_proxy():
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if name.startswith("mcp-webtools-")}
    assert len(replicas) >= 2 and "proxy" in services
    nginx = NGINX_CONF.read_text()
    upstream = re.search(r"upstream mcp_webtools \{(.*?)\}", nginx, re.S)
    assert upstream is not None
    assert sorted(re.findall(r"server ([\w.-]+):8000\b", upstream.group(1))) == sorted(replicas)
    for name, service in replicas.items():
        command = service["command"]
        assert service["build"]["context"] == "." and "--stateless" in command, name
        assert "--host=0.0.0.0" in command and "--port=8000" in command and "--config=/config" in command
        assert "ports" not in service  # reached only through the proxy
        assert "./config:/config:ro" in service["volumes"]
        assert service["env_file"] == ["deploy/compose/secrets.env"]
        assert "http://127.0.0.1:8000/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["volumes"] == ["./deploy/compose/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert {name: cond["condition"] for name, cond in proxy["depends_on"].items()} == dict.fromkeys(
        replicas, "service_healthy"
    )
    published = [str(p) for p in proxy["ports"]]
    listen = re.search(r"listen (\d+);", nginx)
    assert listen is not None and any(p.endswith(f":{listen.group(1)}") for p in published)
    assert (REPO / "deploy" / "compose" / "secrets.env.example").is_file()
    # Streams (SSE answers, progress) pass through unbuffered.
    assert "proxy_buffering off;" in nginx and "proxy_http_version 1.1;" in nginx


def test_compose_replicas_share_one_redis_without_persistence():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    redis = services["redis"]
    assert redis["image"].startswith("redis:") and "ports" not in redis  # reached by the replicas only
    command = redis["command"]
    assert command[0] == "redis-server" and command[command.index("--appendonly") + 1] == "no"
    assert command[command.index("--save") + 1] == ""
    assert "redis-cli" in redis["healthcheck"]["test"]
    for name, service in services.items():
        if name.startswith("mcp-webtools-"):
            url = service["environment"]["MCP_WEBTOOLS_STATE"]
            assert url == "redis://redis:6379/0" and state_url_problem(url) is None
            assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
    # The image carries the Redis client, so the setting works in the container as built.
    assert 'pip install ".[redis]"' in (REPO / "Dockerfile").read_text()


@pytest.mark.e2e
def test_nginx_accepts_the_proxy_config(tmp_path):
    nginx = nginx_binary()
    # The replicas' names only resolve inside compose's network: point them at loopback.
    conf = re.sub(r"server mcp-webtools-\d+:", "server 127.0.0.1:", NGINX_CONF.read_text())
    conf = conf.replace("/var/run/nginx.pid", str(tmp_path / "nginx.pid"))
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "logs").mkdir()
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
@pytest.mark.anyio
async def test_mcp_clients_work_through_the_compose_proxy(upstream, tmp_path):
    """deploy/compose/nginx.conf in front of three --stateless replicas, as compose runs them, on loopback."""
    nginx = nginx_binary()
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    replicas = sorted(name for name in compose["services"] if name.startswith("mcp-webtools-"))
    async with serve_asgi(upstream) as api, contextlib.AsyncExitStack() as stack:
        config = write_tools(tmp_path / "config", [hamsa_tool("Echo", f"{api}/echo")])
        command = compose["services"][replicas[0]]["command"]
        conf = NGINX_CONF.read_text()
        for number, name in enumerate(replicas):
            args = [a for a in command if not a.startswith(("--host=", "--port=", "--config="))]
            args += ["--host=127.0.0.1", "--port=0", f"--config={config}"]
            base = await stack.enter_async_context(server_process(args, dict(os.environ), tmp_path / f"{number}.log"))
            conf = conf.replace(f"server {name}:8000", f"server {base.removeprefix('http://')}")
        port = free_port()
        conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        conf = conf.replace("pid /var/run/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
        (tmp_path / "logs").mkdir()
        (tmp_path / "nginx.conf").write_text(conf)
        proxy = subprocess.Popen(
            [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
            stderr=subprocess.PIPE,
        )
        stack.callback(proxy.wait, 30)
        stack.callback(proxy.terminate)
        url = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            with anyio.fail_after(30):
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        await anyio.sleep(0.05)  # polling until nginx listens: nothing to wait on
            # Round robin: each replica (its own process) answers in turn.
            pids = {await serving_pid(http) for _ in range(len(replicas))}
            assert len(pids) == len(replicas)
        for era in ERAS:
            client_http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
            async with (
                client_http,
                Client(streamable_http_client(f"{url}/mcp", http_client=client_http), mode=era) as client,
            ):
                for _ in range(len(replicas)):
                    result = await client.call_tool("echo", {})
                    assert result.is_error is False
                    assert '"path":"/echo"' in result.content[0].text
        assert sum(r.raw_path == "/echo" for r in upstream.requests) == len(ERAS) * len(replicas)
