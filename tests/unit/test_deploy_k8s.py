"""deploy/k8s/: every manifest valid against the Kubernetes schemas (kubernetes-validate, offline,
strict: an unknown field fails), and the manifests agreeing with each other and with the server
(probes on its endpoints, the grace period above its drain, the HPA's metric one voxloop exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from voxloop.server.settings import ServerSettings

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the dev extra)")

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
VERSIONS = ["1.29.0", "1.37.0"]  # an older cluster still common, and the newest schemas known
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return doc


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_for_kubernetes(path: Path, version: str) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kv.validate(doc, version, strict=True)  # raises ValidationError


def test_the_validator_does_reject_a_broken_manifest() -> None:
    bad = load("deployment.yaml")
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, VERSIONS[-1], strict=True)
    bad = load("hpa.yaml")
    bad["spec"]["minReplicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load("kustomization.yaml")["resources"])
    assert listed == {p.name for p in MANIFESTS}


def test_the_pod_probes_the_server_and_outlasts_its_drain() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = c["args"]
    assert args[:4] == ["voxloop", "serve", "--host", "0.0.0.0"]
    port = c["ports"][0]
    assert port["containerPort"] == ServerSettings().port and port["name"] == "http"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    # SIGKILL comes terminationGracePeriodSeconds after the preStop starts: preStop + drain + exit
    drain = float(arg(args, "--drain-seconds"))
    pre_stop = float(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 10
    # whole CPUs, requests = limits (Guaranteed QoS): the LLM's 2 threads on cores of its own
    res = c["resources"]
    assert res["requests"] == res["limits"] and res["requests"]["cpu"] == "2"
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]


def test_the_autoscaler_scales_on_a_metric_the_server_exports_below_its_capacity() -> None:
    hpa = load("hpa.yaml")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "voxloop"}
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "voxloop_active_sessions"
    args = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert 0 < float(metric["pods"]["target"]["averageValue"]) < int(arg(args, "--max-sessions"))
    # the adapter serves that name from the series voxloop exports, by namespace and pod
    (rule,) = yaml.safe_load(load("prometheus-adapter.yaml")["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == "voxloop_active_sessions"
    assert rule["seriesQuery"].startswith("voxloop_active_sessions{")
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    exported = "\n".join(p.read_text() for p in (REPO / "src" / "voxloop" / "metrics").glob("*.py"))
    assert '"voxloop_active_sessions"' in exported


def test_service_and_ingress_reach_the_pods_with_affinity_and_websocket_timeouts() -> None:
    svc = load("service.yaml")["spec"]
    pod = load("deployment.yaml")["spec"]["template"]
    assert svc["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["ports"][0]["targetPort"] == "http" and svc["sessionAffinity"] == "ClientIP"
    ing = load("ingress.yaml")
    notes = ing["metadata"]["annotations"]
    idle = ServerSettings().idle_timeout_s
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(notes[f"nginx.ingress.kubernetes.io/{key}"]) > idle  # a quiet call is not cut
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    (rule,) = ing["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "voxloop", "port": {"name": "http"}}
    args = pod["spec"]["containers"][0]["args"]
    assert arg(args, "--allow-host") == rule["host"]  # the server answers to the Ingress's name
