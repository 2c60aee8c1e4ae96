"""Where operator-managed custom resources keep the settings of the pods their operator creates.

Strimzi's Kafka and KafkaNodePool and CloudNativePG's Cluster do not carry a pod spec: the
operator builds the pods and takes the image, the pod and container securityContext, the
resources and the env from fixed places of the resource's spec. This table names those places,
so ``podspec`` can present each such pod to the pod rules like any other pod, and a message can
say which field of the custom resource to set.

What the operator would fill in by default is invisible to the pack (it depends on the
operator's version and its own configuration), so a value the resource does not set counts as
missing, exactly as an unset field of a Deployment does. Places were read from the CRD schemas
the render validates against (shared/schemas/crds/kafka.strimzi.io/{kafka,kafkanodepool}_v1.json,
postgresql.cnpg.io/cluster_v1.json) and, for Prometheus and Alertmanager, from the
monitoring.coreos.com CRDs kube-prometheus-stack installs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorContainer:
    """One container the operator creates; each place is a dotted path from the resource's root."""

    name: str
    security_context: str
    resources: str
    env: str | None = None
    image: str | None = None
    present: str | None = None
    """The container exists only when this path is set (None: whenever its pod exists)."""


@dataclass(frozen=True)
class OperatorPod:
    """One kind of pod the operator creates for the resource."""

    label: str
    pod_security_context: str
    containers: tuple[OperatorContainer, ...]
    volumes: str | None = None
    seccomp_fallback: str | None = None
    """A resource-wide seccompProfile applied to the pod when its securityContext names none."""
    present: str | None = None
    """The pod exists only when this path is set (None: always)."""
    host_network: str | None = None
    """Where the resource puts the pod on the node's network (None: the kind has no such field)."""
    extra_containers: tuple[tuple[str, str], ...] = ()
    """(container field, path of a list): containers the resource adds to the pod besides the ones the
    operator generates (sidecars), judged like the containers of any pod spec."""


STRIMZI_KAFKA = (
    OperatorPod(
        label="entity operator",
        pod_security_context="spec.entityOperator.template.pod.securityContext",
        volumes="spec.entityOperator.template.pod.volumes",
        present="spec.entityOperator",
        containers=(
            OperatorContainer(
                name="topic-operator",
                image="spec.entityOperator.topicOperator.image",
                security_context="spec.entityOperator.template.topicOperatorContainer.securityContext",
                resources="spec.entityOperator.topicOperator.resources",
                env="spec.entityOperator.template.topicOperatorContainer.env",
                present="spec.entityOperator.topicOperator",
            ),
            OperatorContainer(
                name="user-operator",
                image="spec.entityOperator.userOperator.image",
                security_context="spec.entityOperator.template.userOperatorContainer.securityContext",
                resources="spec.entityOperator.userOperator.resources",
                env="spec.entityOperator.template.userOperatorContainer.env",
                present="spec.entityOperator.userOperator",
            ),
        ),
    ),
    OperatorPod(
        label="kafka exporter",
        pod_security_context="spec.kafkaExporter.template.pod.securityContext",
        volumes="spec.kafkaExporter.template.pod.volumes",
        present="spec.kafkaExporter",
        containers=(
            OperatorContainer(
                name="kafka-exporter",
                image="spec.kafkaExporter.image",
                security_context="spec.kafkaExporter.template.container.securityContext",
                resources="spec.kafkaExporter.resources",
                env="spec.kafkaExporter.template.container.env",
            ),
        ),
    ),
    OperatorPod(
        label="cruise control",
        pod_security_context="spec.cruiseControl.template.pod.securityContext",
        volumes="spec.cruiseControl.template.pod.volumes",
        present="spec.cruiseControl",
        containers=(
            OperatorContainer(
                name="cruise-control",
                image="spec.cruiseControl.image",
                security_context="spec.cruiseControl.template.cruiseControlContainer.securityContext",
                resources="spec.cruiseControl.resources",
                env="spec.cruiseControl.template.cruiseControlContainer.env",
            ),
        ),
    ),
)
"""Kafka (v1): the brokers run in the node pools' pods; the Kafka resource itself runs these."""

STRIMZI_NODE_POOL = (
    OperatorPod(
        label="node pool",
        pod_security_context="spec.template.pod.securityContext",
        volumes="spec.template.pod.volumes",
        containers=(
            OperatorContainer(
                name="kafka",
                security_context="spec.template.kafkaContainer.securityContext",
                resources="spec.resources",
                env="spec.template.kafkaContainer.env",
            ),
        ),
    ),
)
"""KafkaNodePool: the broker/controller pods. The image is the Kafka resource's spec.kafka.image.

A pool without its own template falls back to the Kafka resource's spec.kafka.template, which a
per-resource rule cannot see; the pool must therefore state its pods' hardening itself.
"""

CNPG_CLUSTER = (
    OperatorPod(
        label="instance",
        pod_security_context="spec.podSecurityContext",
        seccomp_fallback="spec.seccompProfile",
        containers=(
            OperatorContainer(
                name="postgres",
                image="spec.imageName",
                security_context="spec.securityContext",
                resources="spec.resources",
                env="spec.env",
            ),
        ),
    ),
)
"""Cluster: spec.securityContext applies to every container of an instance pod, spec.resources
to the postgres container; without them the operator's defaults apply, which the pack cannot see."""

def _prometheus_operator_pod(label: str, main: str) -> tuple[OperatorPod, ...]:
    """Prometheus and Alertmanager: the operator builds the StatefulSet's pod from spec.securityContext
    (pod), spec.image and spec.resources (main container), and strategic-merges spec.containers and
    spec.initContainers, by container name, over the containers it generates (the main one, the
    config reloader, and the init-config-reloader init container). What the operator fills in itself
    is not visible here, so each generated container must be hardened through those lists."""
    return (
        OperatorPod(
            label=label,
            pod_security_context="spec.securityContext",
            volumes="spec.volumes",
            host_network="spec.hostNetwork",
            extra_containers=(("containers", "spec.containers"), ("initContainers", "spec.initContainers")),
            containers=(
                OperatorContainer(
                    name=main,
                    image="spec.image",
                    security_context=f"spec.containers[name={main}].securityContext",
                    resources="spec.resources",
                    env=f"spec.containers[name={main}].env",
                ),
                OperatorContainer(
                    name="config-reloader",
                    security_context="spec.containers[name=config-reloader].securityContext",
                    resources="spec.containers[name=config-reloader].resources",
                    env="spec.containers[name=config-reloader].env",
                ),
                OperatorContainer(
                    name="init-config-reloader",
                    security_context="spec.initContainers[name=init-config-reloader].securityContext",
                    resources="spec.initContainers[name=init-config-reloader].resources",
                    env="spec.initContainers[name=init-config-reloader].env",
                ),
            ),
        ),
    )


PROMETHEUS = _prometheus_operator_pod("prometheus", "prometheus")
ALERTMANAGER = _prometheus_operator_pod("alertmanager", "alertmanager")

_EG_DEPLOYMENT = "spec.provider.kubernetes.envoyDeployment"
_EG_SHUTDOWN_MANAGER = f"{_EG_DEPLOYMENT}.patch.value.spec.template.spec.containers[name=shutdown-manager]"
ENVOY_GATEWAY_PROXY = (
    OperatorPod(
        label="envoy proxy",
        pod_security_context=f"{_EG_DEPLOYMENT}.pod.securityContext",
        volumes=f"{_EG_DEPLOYMENT}.pod.volumes",
        containers=(
            OperatorContainer(
                name="envoy",
                image=f"{_EG_DEPLOYMENT}.container.image",
                security_context=f"{_EG_DEPLOYMENT}.container.securityContext",
                resources=f"{_EG_DEPLOYMENT}.container.resources",
                env=f"{_EG_DEPLOYMENT}.container.env",
            ),
            OperatorContainer(
                name="shutdown-manager",
                image=f"{_EG_SHUTDOWN_MANAGER}.image",
                security_context=f"{_EG_DEPLOYMENT}.container.securityContext",
                resources=f"{_EG_SHUTDOWN_MANAGER}.resources",
            ),
        ),
    ),
)
"""EnvoyProxy (gateway.envoyproxy.io): Envoy Gateway builds each Gateway's proxy Deployment from
spec.provider.kubernetes.envoyDeployment (internal/infrastructure/kubernetes/proxy/resource.go at
v1.8.3: the envoy container takes container.image, .securityContext and .resources; the pod takes
pod.securityContext and pod.volumes). Unset, the controller fills its own defaults (the image by tag,
requests without limits), which the pack cannot see, so they count as missing.

The pod's second container, ``shutdown-manager``, takes the same container.securityContext as envoy's;
its image is the EnvoyGateway configuration's shutdownManager.image and its resources fixed requests
without limits, neither of which the EnvoyProxy has a field for. What the EnvoyProxy can say about
them goes through envoyDeployment.patch, a strategic merge over the Deployment the controller built
(internal/utils/merge.go: containers merge by name), so the pack reads the image and resources from
that patch's shutdown-manager entry: left out, they count as missing (the image would be a tag of
the controller's configuration the pack cannot see, the limits none)."""

def _k6_pod(role: str, container: str, present: str | None = None) -> OperatorPod:
    return OperatorPod(
        label=f"k6 {role}",
        pod_security_context=f"spec.{role}.securityContext",
        volumes=f"spec.{role}.volumes",
        present=present,
        containers=(OperatorContainer(
            name=container,
            image=f"spec.{role}.image",
            security_context=f"spec.{role}.containerSecurityContext",
            resources=f"spec.{role}.resources",
            env=f"spec.{role}.env",
        ),),
    )


K6_TESTRUN = (_k6_pod("runner", "k6"), _k6_pod("initializer", "k6", present="spec.initializer"), _k6_pod("starter", "k6-curl"))
"""TestRun (k6.io): grafana/k6-operator builds the runner Jobs from spec.runner, the initializer Job from
spec.initializer (a copy of spec.runner when unset, so then the runner's verdict stands for it) and the starter
and stopper Jobs from spec.starter: image, securityContext (the pod's), containerSecurityContext, resources, env
and volumes of each (pkg/resources/jobs/{runner,initializer,starter,stopper}.go at v1.6.0; the CRD charts/k6-operator
templates/crds/testrun.yaml of chart 4.6.0). Unset images are the operator's ``grafana/k6:latest`` and
``ghcr.io/grafana/k6-operator:latest-starter``, which the pack cannot see, so they count as missing."""
OPERATOR_PODS: dict[str, tuple[OperatorPod, ...]] = {
    "k6.io/TestRun": K6_TESTRUN,
    "gateway.envoyproxy.io/EnvoyProxy": ENVOY_GATEWAY_PROXY,
    "monitoring.coreos.com/Prometheus": PROMETHEUS,
    "monitoring.coreos.com/Alertmanager": ALERTMANAGER,
    "kafka.strimzi.io/Kafka": STRIMZI_KAFKA,
    "kafka.strimzi.io/KafkaNodePool": STRIMZI_NODE_POOL,
    "postgresql.cnpg.io/Cluster": CNPG_CLUSTER,
}
"""Keyed by ``<api group>/<kind>``: every served version keeps these places."""

REQUIRED_IMAGES: dict[str, tuple[str, ...]] = {
    "kafka.strimzi.io/Kafka": ("spec.kafka.image",),
    "kafka.strimzi.io/KafkaConnect": ("spec.image",),
    "kafka.strimzi.io/KafkaMirrorMaker2": ("spec.image",),
    "kafka.strimzi.io/KafkaBridge": ("spec.image",),
}
"""Images the operator runs for a resource outside the pods listed above (Kafka: the brokers').

Unset, the operator would pick its built-in default (for Strimzi, the per-version maps in its
environment), which is not a catalog digest; so a resource that leaves it out is refused.
"""
