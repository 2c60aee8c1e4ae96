"""Istio's four official charts (1.30.2, vendored under charts/), as the platform installs them in ambient mode.

Every key below is read from the vendored chart at tag 1.30.2 (values.yaml under
``_internal_defaults_do_not_set``; templates/zzz_profile.yaml merges ``profile`` over those defaults
and the values given here over both):

* ``image``: istiod templates/deployment.yaml, istio-cni templates/daemonset.yaml and ztunnel
  templates/_helpers.tpl (``ztunnel.istio-image``) use ``image`` as the whole reference when it
  contains "/", so the catalog's ``<registry>/<repository>:<tag>@sha256:`` reference goes in as is
  and the gate sees the digest.
* ``profile: ambient`` (files/profile-ambient.yaml of each chart): istiod with PILOT_ENABLE_AMBIENT,
  istio-cni with ``ambient.enabled``, HBONE in the proxies' metadata.
* ``global.istioNamespace``: where istiod runs; it is also the mesh's root namespace (meshConfig
  ``rootNamespace`` defaults to it), where the mesh-wide PeerAuthentication lives.
* ``base.excludedCRDs`` (base templates/crds.yaml): every CRD of files/crd-all.gen.yaml is left out of
  the base release because :func:`crds` installs them first, as the program's own resources
  (retained on delete in prod), like every chart's CRDs (components/kit/chart.py).
* istiod ``autoscaleEnabled``/``replicaCount`` (templates/autoscale.yaml, deployment.yaml),
  ``affinity``, ``resources``; the PodDisruptionBudget (templates/poddisruptionbudget.yaml) renders when
  ``global.defaultPodDisruptionBudget.enabled`` and replicaCount > 1.
* the mesh CA: istiod signs with the Vault-rooted intermediate in ``cacerts`` (Istio's plug-in CA); the
  values that say so (trust domain, workload certificate TTLs) come from components/mesh/identity and
  are merged over these (:func:`merged`).
"""
from __future__ import annotations

from typing import Any

import pulumi

from components.kit import KitContext, helm_chart
from components.mesh.identity import IdentityOutputs
from components.kit.chart import install_crd
from components.kit.chart_files import ROOT, documents
from components.settings import WAYPOINT_IMAGE, IstioSettings, Resources

NODE_AGENTS_POD_SECURITY_REASON = (
    "Istio's ambient node agents (charts istio-cni and ztunnel 1.30.2): istio-cni runs on the host network as root with "
    "NET_ADMIN, NET_RAW, SYS_PTRACE, SYS_ADMIN and DAC_OVERRIDE and hostPath mounts of the CNI bin and config directories, "
    "/proc, /var/run/istio-cni, /var/run/ztunnel and the netns directory, to install the CNI plugin and redirect each "
    "ambient pod's traffic inside its network namespace; ztunnel runs as root with NET_ADMIN, SYS_ADMIN and NET_RAW and "
    "privilege escalation allowed, and the hostPath /var/run/ztunnel, to open its proxy sockets inside every ambient pod's "
    "network namespace (setns, TPROXY). Pod Security baseline and restricted refuse all of it; only these two DaemonSets "
    "run in this namespace, and every application namespace stays restricted because traffic redirection comes from "
    "istio-cni, not from init containers in the pods.")

ISTIOD_LABELS = {"app": "istiod"}
"""istiod templates/deployment.yaml pod labels (``app: istiod``, ``istio: pilot``)."""
ZTUNNEL_LABELS = {"app": "ztunnel"}
"""ztunnel templates/daemonset.yaml pod labels."""
CNI_LABELS = {"k8s-app": "istio-cni-node"}
"""istio-cni templates/daemonset.yaml pod labels."""
WAYPOINT_LABELS = {"gateway.istio.io/managed": "istio.io-mesh-controller"}
"""The label istiod puts on the waypoint Deployments' pods it creates (istiod files/waypoint.yaml)."""

XDS_PORT = 15012
"""istiod: xDS and the CA over mTLS (templates/service.yaml ``grpc-xds``... ``https-dns`` 15012)."""
WEBHOOK_PORT = 15017
"""istiod: the injection and validation webhooks (service port 443 -> targetPort 15017)."""
ISTIOD_METRICS_PORT = 15014
"""istiod: ``--monitoringAddr=:15014`` (templates/deployment.yaml)."""
ZTUNNEL_METRICS_PORT = 15020
"""ztunnel: ``ztunnel-stats`` 15020 (templates/daemonset.yaml), Prometheus text on /stats/prometheus."""
CNI_METRICS_PORT = 15014
"""istio-cni: ``metrics`` 15014 (templates/daemonset.yaml); the DaemonSet is on the host network."""
WAYPOINT_METRICS_PORT = 15020
"""waypoint Envoy: merged stats on 15020 /stats/prometheus (istiod files/waypoint.yaml)."""
WAYPOINT_ENVOY_STATS_PORT = 15090
"""waypoint Envoy: ``http-envoy-prom`` 15090 /stats/prometheus (istiod files/waypoint.yaml)."""
HBONE_PORT = 15008
"""ztunnel and waypoints: HBONE (mTLS-tunnelled TCP) between pods of the mesh."""
PROBE_SOURCE = "169.254.7.127/32"
"""The address istio-cni rewrites kubelet probes to in ambient pods, so ztunnel lets them through
(Istio 1.30 ambient: cni/pkg/iptables, ``ProbeSNAT``); NetworkPolicies must admit it."""


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, nested mappings merged key by key (as Helm merges values)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def crds(ctx: KitContext, opts: pulumi.ResourceOptions) -> dict[str, pulumi.Resource]:
    """Istio's CRDs (base chart files/crd-all.gen.yaml), installed by the program before any chart."""
    folder = ROOT / ctx.catalog.chart("istio-base").path
    found = [d for d in documents((folder / "files" / "crd-all.gen.yaml").read_text()) if d.get("kind") == "CustomResourceDefinition"]
    return {crd["metadata"]["name"]: install_crd("istio-base", crd, ctx, opts) for crd in found}


def _resources(r: Resources) -> dict[str, Any]:
    return {"requests": {"cpu": r.cpu_request, "memory": r.memory_request}, "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit}}


def proxy_globals(ctx: KitContext, istio_namespace: str) -> dict[str, Any]:
    """``global`` of every chart: istiod's namespace; hub, tag and the plain variant matching the pinned
    images (the charts only fall back to them for an image not given whole, which none is: waypoints get
    ``global.proxy.image`` from the catalog, see :func:`proxy_image`, or are refused by the settings)."""
    pilot = ctx.catalog.image("istio-pilot")
    return {"istioNamespace": istio_namespace, "hub": f"{pilot.registry}/{pilot.repository.rsplit('/', 1)[0]}",
            "tag": pilot.tag, "variant": "", "logAsJson": True}


def proxy_image(ctx: KitContext) -> str | None:
    """The waypoints' image as a whole reference, when the catalog pins it (key ``istio-proxyv2``).

    istiod renders each waypoint from files/waypoint.yaml (1.30.2), whose container reads
    ``image: {{ .Values.global.proxy.image }}`` whole when that value contains "/" and otherwise builds
    ``<hub>/proxyv2:<tag>`` (pkg/kube/inject/inject.go ``ProxyImage``/``imageURL``): the digest reference
    goes in as is. Without the entry settings refuse any waypoint (``_istio_problems``), so no waypoint
    ever starts from the tag-only fallback.
    """
    if WAYPOINT_IMAGE not in ctx.catalog.images:
        return None
    return ctx.catalog.image(WAYPOINT_IMAGE).reference


def base_values(crd_names: list[str], istio_namespace: str) -> dict[str, Any]:
    return {"base": {"excludedCRDs": sorted(crd_names)}, "global": {"istioNamespace": istio_namespace}}


def istiod_values(settings: IstioSettings, ctx: KitContext, istio_namespace: str) -> dict[str, Any]:
    replicas = settings.replicas
    values: dict[str, Any] = {
        "profile": "ambient",
        "image": ctx.catalog.image("istio-pilot").reference,
        "autoscaleEnabled": False,
        "replicaCount": replicas,
        "resources": _resources(settings.resources),
        "seccompProfile": {"type": "RuntimeDefault"},
        "global": {**proxy_globals(ctx, istio_namespace), "defaultPodDisruptionBudget": {"enabled": replicas > 1}},
        "meshConfig": {"rootNamespace": istio_namespace},
    }
    waypoint_image = proxy_image(ctx)
    if waypoint_image is not None:
        values["global"]["proxy"] = {"image": waypoint_image}
    if replicas > 1:
        term = {"labelSelector": {"matchLabels": ISTIOD_LABELS}, "topologyKey": "kubernetes.io/hostname"}
        values["affinity"] = {"podAntiAffinity": (
            {"requiredDuringSchedulingIgnoredDuringExecution": [term]} if ctx.high_availability else
            {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})}
    return values


def cni_values(settings: IstioSettings, ctx: KitContext, istio_namespace: str) -> dict[str, Any]:
    return {
        "profile": "ambient",
        "image": ctx.catalog.image("istio-install-cni").reference,
        "resources": _resources(settings.cni_resources),
        "seccompProfile": {"type": "RuntimeDefault"},
        "global": proxy_globals(ctx, istio_namespace),
    }


def ztunnel_values(settings: IstioSettings, ctx: KitContext, istio_namespace: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "profile": "ambient",
        "image": ctx.catalog.image("istio-ztunnel").reference,
        "resources": _resources(settings.ztunnel_resources),
        "istioNamespace": istio_namespace,
        "logAsJson": True,
    }
    return values


def install(settings: IstioSettings, ctx: KitContext, istio_namespace: str, node_namespace: str,
            identity: IdentityOutputs, opts: pulumi.ResourceOptions) -> tuple[dict[str, pulumi.Resource], list[pulumi.Resource]]:
    """The CRDs first; then the four releases side by side, each waiting for the CRDs only (ztunnel and
    istio-cni retry until istiod answers, so no release needs another: the graph stays shallow). istiod
    also waits for its signing CA: started without ``cacerts`` it would make a self-signed CA and keep it."""
    installed = crds(ctx, ctx.keep(opts))
    # the charts have no crds/ folder (``crds={}``: Helm skips nothing); they wait for the program's CRDs instead
    after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(installed.values())))
    releases = [
        # base templates the CRDs (all excluded above): protected like every chart that could install CRDs
        helm_chart("istio-base", "istio-base", istio_namespace, base_values(list(installed), istio_namespace), ctx, ctx.keep(after), crds={}),
        helm_chart("istiod", "istiod", istio_namespace, merged(istiod_values(settings, ctx, istio_namespace), identity.istiod_values), ctx,
                   pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[identity.signing_ca])), crds={}),
        helm_chart("istio-cni", "istio-cni", node_namespace, cni_values(settings, ctx, istio_namespace), ctx, after, crds={}),
        helm_chart("ztunnel", "ztunnel", node_namespace, merged(ztunnel_values(settings, ctx, istio_namespace), identity.ztunnel_values), ctx,
                   after, crds={}),
    ]
    return installed, releases


