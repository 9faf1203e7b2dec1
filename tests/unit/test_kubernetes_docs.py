"""docs/kubernetes.md: every manifest is valid for the Kubernetes API (kubernetes-validate,
strict: unknown fields are errors) and the manifests agree with each other and with the server
(probe paths, ports, labels, metric names, the grace period against the drain)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from sagemaker_inference.server import supervisor  # noqa: E402
from sagemaker_inference.server.observability.endpoints import ROUTES  # noqa: E402
from sagemaker_inference.server.observability.prometheus import PREFIX  # noqa: E402
from sagemaker_inference.server.workers.pool import WorkerGroup  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")  # an old supported release and a recent one
WORKER_EXIT_GRACE = 5.0  # WorkerGroup._end's default grace


def _blocks() -> list[Any]:
    text = DOC.read_text()
    return [doc for block in re.findall(r"```yaml\n(.*?)```", text, re.S) for doc in yaml.safe_load_all(block)]


BLOCKS = _blocks()
RESOURCES = {doc["kind"]: doc for doc in BLOCKS if isinstance(doc, dict) and "kind" in doc}


def test_the_doc_has_every_manifest():
    assert set(RESOURCES) == {"Deployment", "Service", "ServiceMonitor", "HorizontalPodAutoscaler"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kind", ["Deployment", "Service", "HorizontalPodAutoscaler"])
def test_manifests_are_valid_kubernetes(kind: str, version: str):
    kubernetes_validate.validate(RESOURCES[kind], version, strict=True)


def test_bad_manifests_are_caught():
    broken = yaml.safe_load(yaml.safe_dump(RESOURCES["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/livez"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def _container() -> dict[str, Any]:
    return RESOURCES["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_probes_use_our_paths():
    paths = {route.template for route in ROUTES}
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez" in paths
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["port"] in ports
    assert ports["http"] == 8080  # the server's default port (SAGEMAKER_BIND_TO_PORT)


def test_grace_period_covers_the_drain():
    spec = RESOURCES["Deployment"]["spec"]["template"]["spec"]
    pre_stop = float(_container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    flush = 2.0  # the supervisor's wait for responses to be written after the drain
    assert spec["terminationGracePeriodSeconds"] > pre_stop + supervisor.DRAIN_SECONDS + flush + WORKER_EXIT_GRACE
    assert WorkerGroup._end.__defaults__ == (WORKER_EXIT_GRACE,)


def test_service_and_scraping_point_at_the_pods():
    deployment, service, monitor = RESOURCES["Deployment"], RESOURCES["Service"], RESOURCES["ServiceMonitor"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in _container()["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in _container()["ports"]}


def test_the_autoscaler_scales_on_a_metric_we_export():
    hpa = RESOURCES["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == RESOURCES["Deployment"]["metadata"]["name"]
    [metric] = hpa["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    assert name in (PREFIX + "inflight_requests", PREFIX + "queue_depth")
    [adapter] = [doc for doc in BLOCKS if isinstance(doc, dict) and "rules" in doc]
    [rule] = adapter["rules"]["custom"]
    assert rule["name"]["as"] == name and rule["seriesQuery"].startswith(name + "{")
