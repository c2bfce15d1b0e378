"""docs/deploy.md, checked mechanically: its YAML parses and says what the deployment needs.

Every fenced ``yaml`` block must parse (a block may hold several ``---`` documents); the Redis
values must match our users' guide (Redis "7.2", the channels ``notifications``, ``presence``
and ``events.*``, 1 CPU / 2Gi requested and 2 CPU / 4Gi at most); the server's Deployment must
run ``python -m actors serve``, probe ``/health`` on its container port, and be scraped by
Prometheus on ``/metrics``. The cluster variant has six cluster-enabled nodes, a Job that makes
3 masters with a replica each, and a ``redis+cluster://`` URL that parses with seeds among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from markdown_blocks import fenced_blocks

ROOT = Path(__file__).parent.parent.parent
DEPLOY = ROOT / "docs" / "deploy.md"

REDIS_CHANNELS = ["notifications", "presence", "events.*"]
REDIS_RESOURCES = {
    "requests": {"memory": "2Gi", "cpu": "1"},
    "limits": {"memory": "4Gi", "cpu": "2"},
}


def deploy_blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of each fenced block of ``language`` in docs/deploy.md."""
    return [(block.line, block.text) for block in fenced_blocks(DEPLOY, language)]


def yaml_documents() -> list[dict[str, Any]]:
    """Every YAML document of every yaml block, each a mapping."""
    documents: list[dict[str, Any]] = []
    for line, text in deploy_blocks("yaml"):
        for document in yaml.safe_load_all(text):
            assert isinstance(document, dict), f"deploy.md:{line}: a document is not a mapping"
            documents.append(document)
    return documents


def manifests(kind: str) -> list[dict[str, Any]]:
    return [document for document in yaml_documents() if document.get("kind") == kind]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return found


def command_line(container: dict[str, Any]) -> str:
    words = [*container.get("command", []), *container.get("args", [])]
    return " ".join(str(word) for word in words)


def gateway_deployment() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment running the server, and its container."""
    found = [
        (deployment, container)
        for deployment in manifests("Deployment")
        for container in containers(deployment)
        if "actors serve" in command_line(container)
    ]
    assert len(found) == 1, f"expected one Deployment running `actors serve`, found {len(found)}"
    return found[0]


def test_every_yaml_block_parses() -> None:
    blocks = deploy_blocks("yaml")
    assert len(blocks) >= 5
    for line, text in blocks:
        try:
            documents = [document for document in yaml.safe_load_all(text) if document]
        except yaml.YAMLError as error:
            raise AssertionError(f"deploy.md:{line}: invalid YAML: {error}") from error
        assert documents, f"deploy.md:{line}: an empty yaml block"


def test_the_document_has_every_manifest() -> None:
    kinds = {document.get("kind") for document in yaml_documents()}
    expected = {
        "Secret",
        "ConfigMap",
        "StatefulSet",
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "ServiceMonitor",
    }
    assert expected <= kinds, f"missing: {sorted(expected - kinds)}"
    assert len(deploy_blocks("dockerfile")) == 1


def test_redis_helm_values_match_the_users_guide() -> None:
    values = [document["redis"] for document in yaml_documents() if "redis" in document]
    assert len(values) == 1, "expected one block of Helm values under `redis:`"
    redis = values[0]
    assert redis["enabled"] is True
    assert redis["version"] == "7.2"  # a string: unquoted, YAML would read the float 7.2
    assert redis["pubsub"]["enabled"] is True
    assert redis["pubsub"]["channels"] == REDIS_CHANNELS
    assert redis["resources"] == REDIS_RESOURCES


def named(kind: str, name: str) -> list[dict[str, Any]]:
    """The manifests of ``kind`` labelled ``app.kubernetes.io/name: name``."""
    return [
        document
        for document in manifests(kind)
        if document["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name
    ]


def test_plain_redis_manifests_match_the_values() -> None:
    workloads = [
        workload
        for kind in ("StatefulSet", "Deployment")
        for workload in named(kind, "redis")
        if any(container["image"] == "redis:7.2" for container in containers(workload))
    ]
    assert len(workloads) == 1, "expected one Redis workload with the image redis:7.2"
    (redis,) = [c for c in containers(workloads[0]) if c["image"] == "redis:7.2"]
    assert redis["resources"] == REDIS_RESOURCES
    password = [
        variable["valueFrom"]["secretKeyRef"]
        for variable in redis["env"]
        if variable["name"] == "REDIS_PASSWORD"
    ]
    assert len(password) == 1, "the Redis password must come from a Secret"
    assert "$(REDIS_PASSWORD)" in redis["args"]
    secrets = {document["metadata"]["name"] for document in manifests("Secret")}
    assert password[0]["name"] in secrets
    config = "\n".join(
        str(text) for document in named("ConfigMap", "redis") for text in document["data"].values()
    )
    assert 'notify-keyspace-events ""' in config.splitlines()
    assert "client-output-buffer-limit pubsub 32mb 8mb 60" in config.splitlines()


def test_the_server_runs_python_m_actors_serve() -> None:
    _, container = gateway_deployment()
    line = command_line(container)
    assert line.startswith("python -m actors serve"), line
    assert "--host=0.0.0.0" in line
    assert "--allowed-origin=https://" in line


def test_the_server_probes_health_on_its_container_port() -> None:
    deployment, container = gateway_deployment()
    assert deployment["spec"]["replicas"] > 1
    ports = {port.get("name"): port["containerPort"] for port in container["ports"]}
    assert 8000 in ports.values()
    for probe in ("livenessProbe", "readinessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/health", probe
        port = check["port"]
        assert ports.get(port, port) == 8000, f"{probe} is not on the container port"


def test_the_server_drains_websockets_and_runs_locked_down() -> None:
    deployment, container = gateway_deployment()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert "preStop" in container["lifecycle"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(container["resources"])


def test_prometheus_scrapes_metrics() -> None:
    deployment, container = gateway_deployment()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) in {
        port["containerPort"] for port in container["ports"]
    }
    endpoints = [
        endpoint
        for monitor in manifests("ServiceMonitor")
        for endpoint in monitor["spec"]["endpoints"]
    ]
    assert any(endpoint["path"] == "/metrics" for endpoint in endpoints)


def test_the_ingress_keeps_websockets_open() -> None:
    (ingress,) = manifests("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    paths = {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert "/ws" in paths


def test_the_cluster_variant_has_three_masters_with_a_replica_each() -> None:
    (nodes,) = named("StatefulSet", "redis-cluster")
    assert nodes["spec"]["replicas"] == 6
    (redis,) = containers(nodes)
    assert redis["image"] == "redis:7.2"
    assert redis["resources"] == REDIS_RESOURCES
    assert {port["containerPort"] for port in redis["ports"]} == {6379, 16379}
    assert "$(REDIS_PASSWORD)" in redis["args"]
    assert "--masterauth" in redis["args"]
    (config,) = named("ConfigMap", "redis-cluster")
    lines = str(config["data"]["redis.conf"]).splitlines()
    assert "cluster-enabled yes" in lines
    assert "cluster-preferred-endpoint-type hostname" in lines
    (service,) = named("Service", "redis-cluster")
    assert service["spec"]["clusterIP"] == "None"
    (job,) = named("Job", "redis-cluster")
    (create,) = containers(job)
    line = command_line(create)
    assert "--cluster create" in line
    assert "--cluster-replicas 1" in line


def test_the_cluster_variant_gives_the_server_a_cluster_url() -> None:
    from actors.redis import ClusterSettings

    urls = [
        str(secret["stringData"]["REDIS_URL"])
        for secret in named("Secret", "actors-gateway")
        if "REDIS_URL" in secret.get("stringData", {})
    ]
    assert len(urls) == 2, urls
    (cluster_url,) = [url for url in urls if url.startswith("redis+cluster://")]
    settings = ClusterSettings.from_url(cluster_url)
    hosts = {host for host, _ in settings.seeds}
    assert len(hosts) >= 2
    assert all(host.endswith(".redis-cluster") for host in hosts)
    # The server reads the URL from the Secret in both variants.
    _, container = gateway_deployment()
    assert "--redis-url=$(REDIS_URL)" in container["args"]


def test_the_ingress_does_not_route_the_demo_login() -> None:
    """``/token`` signs a token for any name: it is for trying the server, never public."""
    (ingress,) = manifests("Ingress")
    paths = {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert not any(path.startswith("/token") for path in paths)
    for deployment in manifests("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "--demo-login" not in container.get("command", []) + container.get("args", [])
