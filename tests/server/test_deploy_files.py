"""deploy/, checked: the Kubernetes manifests are valid, complete, and say what the server needs.

Every manifest is validated offline against the Kubernetes schemas (``kubernetes-validate``,
strict: an unknown field is an error), and each variant (``standalone``, ``cluster``) is a
kustomization whose files are exactly those the tests read (``kubectl kustomize`` renders the
same documents, where kubectl is installed). Then what no schema can say: the probes are paths
the server answers, the secret's variable is the one ``serve`` reads, the container's arguments
are accepted by ``serve``'s own parser, the Redis URL parses and names the variant's Redis, the
grace period covers the server's shutdown bound, the Redis resources are the users' guide's,
and the Redis configuration is one a real redis-server accepts.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import kubernetes_validate
import pytest
import redis
import yaml
from gateway_helpers import http_request, running_gateway

from actors import ActorSystem
from actors.redis import ClusterSettings, RedisSettings, is_cluster_url
from actors.server.cli import build_parser
from actors.server.gateway import (
    SECRET_ENVIRONMENT_VARIABLE,
    SHUTDOWN_BOUND,
    KeyRing,
    secret_from,
)
from actors.testing import RedisServerFactory, free_port

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
KUBERNETES_VERSION: Final = "1.30.0"  # the oldest release the manifests promise to suit
VARIANTS: Final = ("standalone", "cluster")
CUSTOM_RESOURCES: Final = (DEPLOY / "monitoring" / "servicemonitor.yaml",)
HELM_VALUES: Final = DEPLOY / "values" / "redis.yaml"
# The users' guide (its Redis values, for deploy/k8s/modules/messaging/redis/values.yaml).
GUIDE_VERSION: Final = "7.2"
GUIDE_CHANNELS: Final = ["notifications", "presence", "events.*"]
GUIDE_RESOURCES: Final = {
    "requests": {"memory": "2Gi", "cpu": "1"},
    "limits": {"memory": "4Gi", "cpu": "2"},
}
POD_NAME: Final = "actors-gateway-7d9c5b6f4-x2x9q"  # what Kubernetes puts in $(POD_NAME)
GATEWAY: Final = "actors-gateway"

Document = dict[str, Any]


def load(path: Path) -> list[Document]:
    documents = [document for document in yaml.safe_load_all(path.read_text()) if document]
    assert all(isinstance(document, dict) for document in documents), path
    return documents


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest under deploy/ (not the kustomizations, not the Helm values)."""
    return sorted(
        path
        for path in DEPLOY.rglob("*.yaml")
        if path.name != "kustomization.yaml" and path != HELM_VALUES
    )


def kustomized_files(directory: Path) -> list[Path]:
    """The files a kustomization's ``resources`` name, directories followed."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}, (
        f"{directory}: only resources, so that these tests read what kubectl applies"
    )
    files: list[Path] = []
    for resource in kustomization["resources"]:
        path = (directory / resource).resolve()
        assert path.is_relative_to(DEPLOY), f"{directory}: {resource} is outside deploy/"
        if path.is_dir():
            files += kustomized_files(path)
        else:
            assert path.is_file(), f"{directory}: {resource} does not exist"
            files.append(path)
    return files


def variant(name: str) -> list[Document]:
    return [document for path in kustomized_files(DEPLOY / name) for document in load(path)]


def the(documents: list[Document], kind: str, name: str) -> Document:
    (found,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def containers(workload: Document) -> list[Document]:
    found: list[Document] = workload["spec"]["template"]["spec"]["containers"]
    return found


def gateway_container(documents: list[Document]) -> Document:
    (container,) = containers(the(documents, "Deployment", GATEWAY))
    return container


def substituted(text: str, environment: dict[str, str]) -> str:
    """``$(NAME)`` replaced as the kubelet does, from the container's environment."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda match: environment[match[1]], text)


def secret_value(documents: list[Document], reference: Document) -> str:
    value = the(documents, "Secret", reference["name"])["stringData"][reference["key"]]
    assert isinstance(value, str)
    return value


def container_environment(documents: list[Document], container: Document) -> dict[str, str]:
    """The container's variables, with Secrets' values and the pod's name filled in."""
    environment: dict[str, str] = {}
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {})
        if "secretKeyRef" in source:
            environment[variable["name"]] = secret_value(documents, source["secretKeyRef"])
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            environment[variable["name"]] = POD_NAME
        else:
            environment[variable["name"]] = variable["value"]
    return environment


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    files = [path for path in manifest_files() if path not in CUSTOM_RESOURCES]
    assert len(files) >= 12
    for path in files:
        for document in load(path):
            try:
                kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.relative_to(ROOT)}: {error.message}")


def test_each_variant_applies_every_manifest_once_and_nothing_else() -> None:
    applied = {name: kustomized_files(DEPLOY / name) for name in VARIANTS}
    for name, files in applied.items():
        assert len(files) == len(set(files)), f"{name} names a file twice"
    reachable = set(applied["standalone"]) | set(applied["cluster"])
    assert reachable == set(manifest_files()) - set(CUSTOM_RESOURCES)
    for name in VARIANTS:
        documents = variant(name)
        names = [(d["kind"], d["metadata"]["name"]) for d in documents]
        assert len(names) == len(set(names)), f"{name}: a kind and name twice"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("name", VARIANTS)
def test_kubectl_renders_each_variant_as_these_tests_read_it(name: str) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / name)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def key(document: Document) -> tuple[str, str]:
        return document["kind"], document["metadata"]["name"]

    assert sorted(yaml.safe_load_all(rendered), key=key) == sorted(variant(name), key=key)


def test_the_service_monitor_scrapes_the_servers_metrics_port() -> None:
    (monitor,) = load(CUSTOM_RESOURCES[0])
    assert (monitor["apiVersion"], monitor["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    service = the(variant("standalone"), "Service", GATEWAY)
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_the_redis_values_are_the_users_guides() -> None:
    (values,) = load(HELM_VALUES)
    redis_values = values["redis"]
    assert redis_values["enabled"] is True
    assert redis_values["version"] == GUIDE_VERSION  # a string: unquoted, YAML reads 7.2
    assert redis_values["pubsub"] == {"enabled": True, "channels": GUIDE_CHANNELS}
    assert redis_values["resources"] == GUIDE_RESOURCES


@pytest.mark.parametrize(
    ("name", "workload", "replicas"), [("standalone", "redis", 1), ("cluster", "redis-cluster", 6)]
)
def test_redis_runs_the_guides_version_and_resources_with_the_password_of_a_secret(
    name: str, workload: str, replicas: int
) -> None:
    documents = variant(name)
    statefulset = the(documents, "StatefulSet", workload)
    assert statefulset["spec"]["replicas"] == replicas
    (container,) = containers(statefulset)
    assert container["image"] == f"redis:{GUIDE_VERSION}"
    assert container["resources"] == GUIDE_RESOURCES
    environment = container_environment(documents, container)
    assert environment["REDIS_PASSWORD"] == secret_value(
        documents, {"name": "redis-auth", "key": "password"}
    )
    assert "--requirepass" in container["args"]
    assert container["args"][container["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    (config,) = [volume["configMap"]["name"] for volume in volumes if "configMap" in volume]
    assert "redis.conf" in the(documents, "ConfigMap", config)["data"]
    assert the(documents, "Service", statefulset["spec"]["serviceName"])["spec"]["clusterIP"] == (
        "None"
    )


def test_the_cluster_is_made_of_three_masters_with_a_replica_each() -> None:
    documents = variant("cluster")
    (container,) = containers(the(documents, "StatefulSet", "redis-cluster"))
    assert {port["containerPort"] for port in container["ports"]} == {6379, 16379}
    assert "--masterauth" in container["args"]
    (create,) = containers(the(documents, "Job", "redis-cluster-create"))
    line = " ".join(create["args"])
    assert "--cluster create" in line
    assert "--cluster-replicas 1" in line
    lines = the(documents, "ConfigMap", "redis-cluster-config")["data"]["redis.conf"].splitlines()
    assert "cluster-enabled yes" in lines
    assert "cluster-preferred-endpoint-type hostname" in lines


@pytest.mark.parametrize(
    ("name", "config"), [("standalone", "redis-config"), ("cluster", "redis-cluster-config")]
)
def test_a_real_redis_server_takes_the_configuration(
    name: str, config: str, redis_server_factory: RedisServerFactory
) -> None:
    """Each directive, but where to listen and to write (the test server's own), is given to
    a private redis-server, which refuses to start on one it does not know."""
    text = the(variant(name), "ConfigMap", config)["data"]["redis.conf"]
    arguments: list[str] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] not in {
            "bind",
            "port",
            "dir",
            "protected-mode",
            "cluster-config-file",
        }:
            arguments += [f"--{words[0]}", *words[1:]]
    if name == "cluster":
        # The bus port defaults to the port + 10000, which a free port may not leave room for.
        arguments += ["--cluster-port", str(free_port())]
    server = redis_server_factory(extra_args=tuple(arguments))
    with redis.Redis(port=server.port, socket_timeout=10) as client:
        settings = {key: str(value) for key, value in client.config_get("*").items()}
    assert settings["client-output-buffer-limit"].endswith("pubsub 33554432 8388608 60")
    assert settings["notify-keyspace-events"] == ""
    assert settings["maxmemory"] == str(3 * 1024**3)
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["appendonly"] == "yes"
    assert settings["timeout"] == "0"
    assert settings["cluster-enabled"] == ("yes" if name == "cluster" else "no")


@pytest.mark.parametrize("name", VARIANTS)
def test_the_server_reads_its_secret_and_its_redis_url_from_the_variants_secret(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = variant(name)
    container = gateway_container(documents)
    environment = container_environment(documents, container)
    secret = environment[SECRET_ENVIRONMENT_VARIABLE]
    assert "--secret" not in " ".join(container["args"])  # kept out of the pod's spec
    monkeypatch.setenv(SECRET_ENVIRONMENT_VARIABLE, secret)
    assert secret_from(None) == secret.encode()
    assert KeyRing.from_secret(secret.encode()).algorithm == "HS256"  # long enough for serve
    arguments = build_parser().parse_args(
        ["serve", *(substituted(word, environment) for word in container["args"])]
    )
    url = arguments.redis_url
    password = secret_value(documents, {"name": "redis-auth", "key": "password"})
    if name == "cluster":
        assert is_cluster_url(url)
        cluster = ClusterSettings.from_url(url)
        statefulset = the(documents, "StatefulSet", "redis-cluster")
        nodes = {
            f"redis-cluster-{index}.{statefulset['spec']['serviceName']}"
            for index in range(statefulset["spec"]["replicas"])
        }
        assert len(cluster.seeds) >= 2
        assert {host for host, _ in cluster.seeds} <= nodes
        assert cluster.node.password == password
    else:
        settings = RedisSettings.from_url(url)
        service = the(documents, "Service", settings.host)
        assert settings.port in {port["port"] for port in service["spec"]["ports"]}
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": "redis"}
        assert settings.password == password


def test_the_container_arguments_are_accepted_by_serve() -> None:
    documents = variant("standalone")
    container = gateway_container(documents)
    assert container["command"] == ["python", "-m", "actors", "serve"]
    environment = container_environment(documents, container)
    words = [substituted(word, environment) for word in container["args"]]
    try:
        arguments = build_parser().parse_args(["serve", *words])
    except SystemExit:
        pytest.fail(f"serve refuses {words}")
    assert arguments.host == "0.0.0.0"
    assert arguments.port in {port["containerPort"] for port in container["ports"]}
    assert arguments.log_format == "json"
    assert arguments.client_name == f"actors:{POD_NAME}"
    assert arguments.server_name == POD_NAME
    assert arguments.allowed_origin == ["https://chat.example.com"]
    # The demo login stays off: no flag turns it on, and nothing routes /token.
    assert arguments.demo_login is False
    assert not [word for word in words if "token" in word or "login" in word], words
    assert arguments.admin_token is None
    ingress = the(documents, "Ingress", GATEWAY)
    paths = {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert paths == {"/", "/static", "/ws"}


def test_the_grace_period_covers_the_prestop_pause_and_the_shutdown_bound() -> None:
    deployment = the(variant("standalone"), "Deployment", GATEWAY)
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    command = gateway_container([deployment])["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    assert pause + SHUTDOWN_BOUND <= grace, "SIGKILL would cut the orderly stop"
    # Far more only delays the kill of a pod that hangs.
    assert grace <= pause + SHUTDOWN_BOUND + 10


async def test_the_probes_and_the_scrape_are_paths_the_server_answers(system: ActorSystem) -> None:
    documents = variant("standalone")
    deployment = the(documents, "Deployment", GATEWAY)
    container = gateway_container(documents)
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) in ports.values()
    paths = [annotations["prometheus.io/path"]]
    for probe in ("livenessProbe", "readinessProbe"):
        check = container[probe]["httpGet"]
        assert ports[check["port"]] == 8000
        paths.append(check["path"])
    async with running_gateway(system) as server:
        for path in paths:
            status, _, _ = await http_request(server.port, "GET", path)
            assert status == 200, path


def test_the_image_installs_the_package_and_runs_as_the_pods_user() -> None:
    instructions = [
        line.split(maxsplit=1)
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    by_name: dict[str, str] = {}
    for name, argument in instructions:
        by_name[name] = argument
        if name == "COPY":
            *sources, _ = argument.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    pod = the(variant("standalone"), "Deployment", GATEWAY)["spec"]["template"]["spec"]
    assert int(by_name["USER"]) == pod["securityContext"]["runAsUser"]
    container = gateway_container(variant("standalone"))
    assert int(by_name["EXPOSE"]) in {port["containerPort"] for port in container["ports"]}
    entrypoint, command = yaml.safe_load(by_name["ENTRYPOINT"]), yaml.safe_load(by_name["CMD"])
    assert entrypoint == container["command"][:3]
    arguments = build_parser().parse_args(command)
    assert (arguments.host, arguments.port) == ("0.0.0.0", int(by_name["EXPOSE"]))
