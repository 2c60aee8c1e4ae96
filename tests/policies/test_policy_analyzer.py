"""The pack under pulumi-policy's own analyzer service, fed protobuf properties as the engine sends them.

This is where proxies, float numbers and unknown values show up; plain-dict tests would not
catch a rule that adds proxy lists or reads an unknown.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from google.protobuf import struct_pb2
from policy_plans import container
from policy_support import rule_config, with_fixture_catalog
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_STRING_VALUE

from policies import model
from policies.config import load_config_file, resolve_settings, stack_config_path
from policies.pack import PACK_NAME, build_policies
from policies.rules import RULES

AGENT = (
    "ghcr.example.test/somaagenthub/agent-api:1.4.0"
    "@sha256:6a9a8d4f9f29567db9686cadd53d98be09c2665975c4fe9ae5e5a5248214f7cb"
)
POD_RULES = {
    "digest-pinned-images",
    "non-root",
    "resource-limits",
    "read-only-root-filesystem",
    "no-host-access",
    "no-plaintext-secrets",
}
"""The rules that read containers: an unknown container list defers every one of them."""
LEVELS = {"advisory": proto.ADVISORY, "mandatory": proto.MANDATORY, "disabled": proto.DISABLED}


def hardened_container(name: str = "api", image: str = AGENT) -> dict[str, Any]:
    return container(name, image)


def deployment(*containers: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "agent-api", "namespace": "agents", "annotations": annotations or {}},
        "spec": {
            "selector": {"matchLabels": {"app": "agent-api"}},
            "template": {
                "metadata": {"labels": {"app": "agent-api"}},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": list(containers) or [hardened_container()],
                },
            },
        },
    }


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def configured(
    levels: str = "mandatory", overrides: dict[str, dict[str, Any]] | None = None
) -> _PolicyAnalyzerServicer:
    """The servicer the CLI talks to, configured the way the CLI configures it."""
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "1.0.0", build_policies(), EnforcementLevel.MANDATORY)
    request = proto.ConfigureAnalyzerRequest()
    for rule in RULES:
        config = rule_config(rule, (overrides or {}).get(rule.name))
        request.policyConfig[rule.name].CopyFrom(
            proto.PolicyConfig(enforcementLevel=LEVELS[levels], properties=struct(config))
        )
    servicer.Configure(request, None)
    return servicer


def analyze(
    servicer: _PolicyAnalyzerServicer, props: dict[str, Any], type_: str = "kubernetes:apps/v1:Deployment"
) -> list[Any]:
    request = proto.AnalyzeRequest(
        type=type_, name="agent-api", urn=f"urn:pulumi:dev::somaagenthub::{type_}::agent-api", properties=struct(props)
    )
    return list(servicer.Analyze(request, None).diagnostics)


def test_hardened_deployment_has_no_diagnostics() -> None:
    assert analyze(configured(), deployment()) == []


def test_violation_is_reported_with_level_and_remediation() -> None:
    container = hardened_container()
    container["securityContext"]["runAsNonRoot"] = False
    diagnostics = analyze(configured(), deployment(container))
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("non-root", proto.MANDATORY)]
    assert "runAsNonRoot must be true" in diagnostics[0].message
    assert "Remediation: Build the workload with kit.workload" in diagnostics[0].message


def test_numbers_arrive_as_floats_and_uid_zero_is_still_root() -> None:
    props = deployment()
    props["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    diagnostics = analyze(configured(), props)
    assert any("runAsUser must not be 0" in d.message for d in diagnostics)


def test_unknown_image_is_neither_passed_nor_blocking_during_preview() -> None:
    diagnostics = analyze(configured(), deployment(hardened_container(image=UNKNOWN_STRING_VALUE)))
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("digest-pinned-images", proto.ADVISORY)]
    assert "can't run policy 'digest-pinned-images'" in diagnostics[0].message
    assert "containers[0].image can't be known during preview" in diagnostics[0].message


def test_unknown_image_does_not_hide_a_known_bad_one() -> None:
    props = deployment(hardened_container(image=UNKNOWN_STRING_VALUE), hardened_container("sidecar", "busybox:1.36"))
    diagnostics = analyze(configured(), props)
    levels = sorted((d.policyName, d.enforcementLevel) for d in diagnostics)
    assert levels == [("digest-pinned-images", proto.ADVISORY), ("digest-pinned-images", proto.MANDATORY)]
    assert any("container 'sidecar': image 'busybox:1.36' is not pinned" in d.message for d in diagnostics)


def test_unknown_container_list_defers_every_container_rule() -> None:
    props = deployment()
    props["spec"]["template"]["spec"]["containers"] = UNKNOWN_ARRAY_VALUE
    diagnostics = analyze(configured(), props)
    assert {d.policyName for d in diagnostics} == POD_RULES
    assert {d.enforcementLevel for d in diagnostics} == {proto.ADVISORY}


STRIMZI_KAFKA_BY_TAG = "quay.io/strimzi/kafka:1.2.0-kafka-4.3.1"


def operator_container(env: Any = None, args: Any = None) -> dict[str, Any]:
    """A hardened operator container that names the images it starts in its env and arguments."""
    return {**hardened_container("operator"), "env": env or [], "args": args or []}


def test_operator_default_images_are_checked_through_the_service() -> None:
    container = operator_container(
        env=[
            {"name": "OPERATOR_IMAGE_NAME", "value": AGENT},
            {"name": "IMAGE_PULL_POLICY", "value": "IfNotPresent"},
            {"name": "STRIMZI_KAFKA_IMAGES", "value": f"4.2.0={AGENT}\n4.3.1={STRIMZI_KAFKA_BY_TAG}\n"},
        ],
        args=[
            "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
            "--config-reloader-cpu-limit=100m",
        ],
    )
    diagnostics = analyze(configured(), deployment(container))
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("digest-pinned-images", proto.MANDATORY)] * 2
    messages = " ".join(d.message for d in diagnostics)
    assert f"env STRIMZI_KAFKA_IMAGES: image '{STRIMZI_KAFKA_BY_TAG}' is not pinned" in messages
    assert (
        "args[0]: image 'quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1' is not pinned" in messages
    )


def test_operator_with_pinned_catalog_default_images_passes_through_the_service() -> None:
    container = operator_container(
        env=[{"name": "STRIMZI_DEFAULT_TOPIC_OPERATOR_IMAGE", "value": AGENT}],
        args=[f"--prometheus-config-reloader={AGENT}"],
    )
    assert analyze(configured(), deployment(container)) == []


def test_waiver_outside_the_prod_allow_list_still_blocks() -> None:
    props = deployment(annotations={"waivers.somaagenthub.io/non-root": "legacy image runs as root"})
    props["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    prod = {"non-root": {"waivers": "allow-list"}}
    diagnostics = analyze(configured(overrides=prod), props)
    assert [d.enforcementLevel for d in diagnostics] == [proto.MANDATORY]
    assert "waiver not on the prod allow list" in diagnostics[0].message

    allowed = {
        "non-root": {
            "waivers": "allow-list",
            "allowedWaivers": [{"resource": "Deployment/agents/agent-api", "reason": "legacy image runs as root"}],
        }
    }
    assert analyze(configured(overrides=allowed), props) == []


def test_stack_rule_names_the_namespace_urn() -> None:
    servicer = configured()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agents"}}
    request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type="kubernetes:core/v1:Namespace", name="agents", urn="urn:ns", properties=struct(namespace)
            ),
            proto.AnalyzerResource(
                type="kubernetes:apps/v1:Deployment",
                name="agent-api",
                urn="urn:deploy",
                properties=struct(deployment()),
            ),
        ]
    )
    diagnostics = list(servicer.AnalyzeStack(request, None).diagnostics)
    assert [(d.policyName, d.urn) for d in diagnostics] == [("default-deny-network-policy", "urn:ns")]


def test_stack_rule_with_unknown_namespace_does_not_crash() -> None:
    props = deployment()
    props["metadata"]["namespace"] = UNKNOWN_STRING_VALUE
    request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type="kubernetes:apps/v1:Deployment", name="agent-api", urn="urn:deploy", properties=struct(props)
            ),
        ]
    )
    diagnostics = list(configured().AnalyzeStack(request, None).diagnostics)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [
        ("default-deny-network-policy", proto.ADVISORY)
    ]


def test_disabled_rule_is_not_run() -> None:
    container = hardened_container()
    container["securityContext"]["runAsNonRoot"] = False
    assert analyze(configured(levels="disabled"), deployment(container)) == []


def test_analyzer_info_declares_every_rule_with_schema_severity_and_remediation() -> None:
    info = configured().GetAnalyzerInfo(None, None)
    policies = {p.name: p for p in info.policies}
    assert list(policies) == [rule.name for rule in RULES]
    for rule in RULES:
        policy = policies[rule.name]
        assert policy.remediation_steps == rule.remediation
        assert policy.severity != proto.POLICY_SEVERITY_UNSPECIFIED
        assert set(policy.configSchema.properties) == set(rule.full_config_schema)
        expected_type = (
            proto.PolicyType.POLICY_TYPE_STACK if rule.is_stack_rule else proto.PolicyType.POLICY_TYPE_RESOURCE
        )
        assert policy.policy_type == expected_type


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_config_files_validate_against_the_declared_schemas(stack: str) -> None:
    """The CLI validates each policy's block against {type: object, properties: <configSchema>}."""
    document = load_config_file(stack_config_path(stack))
    for rule in RULES:
        block = document.get(rule.name, {})
        properties = {k: v for k, v in block.items() if k != "enforcementLevel"}
        schema = {"type": "object", "properties": rule.full_config_schema}
        jsonschema.validate({**rule.defaults(), **properties}, schema)


def test_prod_config_through_the_service_blocks_upstream_images() -> None:
    document = with_fixture_catalog(load_config_file(stack_config_path("prod")))
    settings = resolve_settings(document, RULES)
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "1.0.0", build_policies(), EnforcementLevel.MANDATORY)
    request = proto.ConfigureAnalyzerRequest()
    for name, rule_settings in settings.items():
        request.policyConfig[name].CopyFrom(
            proto.PolicyConfig(
                enforcementLevel=LEVELS[rule_settings.level], properties=struct(dict(rule_settings.config))
            )
        )
    servicer.Configure(request, None)
    diagnostics = analyze(servicer, deployment())
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("digest-pinned-images", proto.MANDATORY)]
    assert (
        "is not pulled from an allowed registry (allowed: registry.soma.example.com/mirror)" in diagnostics[0].message
    )


def test_unknown_sentinels_match_pulumi_policy() -> None:
    from pulumi_policy import proxy

    upstream = {value for name, value in vars(proxy).items() if name.startswith("UNKNOWN_") and name.endswith("_VALUE")}
    assert upstream == model.UNKNOWN_SENTINELS


def test_rules_do_not_mutate_the_engine_properties() -> None:
    props = deployment()
    before = copy.deepcopy(props)
    analyze(configured(), props)
    assert props == before


def test_unknown_operator_env_image_is_not_passed_silently() -> None:
    container = operator_container(env=[{"name": "OPERATOR_IMAGE_NAME", "value": UNKNOWN_STRING_VALUE}])
    diagnostics = analyze(configured(), deployment(container))
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("digest-pinned-images", proto.ADVISORY)]
    assert "containers[0].env[0].value can't be known during preview" in diagnostics[0].message


@pytest.mark.parametrize("field", ["env", "args"])
def test_unknown_operator_env_or_args_list_is_deferred_not_passed(field: str) -> None:
    """A whole env or args list unknown during preview could name any image: digest-pinned-images defers."""
    container = operator_container(**{field: UNKNOWN_ARRAY_VALUE})
    diagnostics = analyze(configured(), deployment(container))
    signed = [d for d in diagnostics if d.policyName == "digest-pinned-images"]
    assert [d.enforcementLevel for d in signed] == [proto.ADVISORY]
    assert f"containers[0].{field} can't be known during preview" in signed[0].message
    assert all(d.enforcementLevel == proto.ADVISORY for d in diagnostics)


def chart(**changes: Any) -> dict[str, Any]:
    return {"chart": "./charts/vault", "version": "0.31.0", "namespace": "vault", "values": {}, **changes}


def test_vendored_chart_passes_and_a_repository_chart_is_refused_through_the_service() -> None:
    assert analyze(configured(), chart(), "kubernetes:helm.sh/v4:Chart") == []
    fetched = chart(chart="vault", repositoryOpts={"repo": "https://helm.example.test/hashicorp"})
    diagnostics = analyze(configured(), fetched, "kubernetes:helm.sh/v4:Chart")
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("pinned-charts", proto.MANDATORY)]
    assert "chart 'vault' is fetched from a repository" in diagnostics[0].message


def test_unknown_chart_path_is_deferred_not_passed() -> None:
    diagnostics = analyze(configured(), chart(chart=UNKNOWN_STRING_VALUE), "kubernetes:helm.sh/v4:Chart")
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("pinned-charts", proto.ADVISORY)]
    assert "chart can't be known during preview" in diagnostics[0].message


KEEPER = "kubernetes:clickhouse-keeper.altinity.com/v1:ClickHouseKeeperInstallation"


def keeper(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "clickhouse-keeper.altinity.com/v1",
        "kind": "ClickHouseKeeperInstallation",
        "metadata": {"name": "audit", "namespace": "soma-data"},
        "spec": {"templates": {"podTemplates": [{"name": "keeper", "spec": pod_spec}]}},
    }


def hardened_keeper_pod() -> dict[str, Any]:
    return copy.deepcopy(deployment()["spec"]["template"]["spec"])


def test_custom_resource_pod_templates_pass_when_hardened() -> None:
    assert analyze(configured(), keeper(hardened_keeper_pod()), KEEPER) == []


def test_root_privileged_host_keeper_with_unpinned_image_is_blocked_by_every_pod_rule() -> None:
    """The reviewer's case: a Keeper pod template made root, privileged, host-networked, hostPath, unpinned."""
    pod = hardened_keeper_pod()
    pod["securityContext"]["runAsUser"] = 0
    pod["hostNetwork"] = True
    pod["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    container = pod["containers"][0]
    container["image"] = "clickhouse/clickhouse-keeper:latest"
    container["securityContext"]["privileged"] = True
    diagnostics = analyze(configured(), keeper(pod), KEEPER)
    assert {d.policyName for d in diagnostics} == {"digest-pinned-images", "non-root", "no-host-access"}
    assert {d.enforcementLevel for d in diagnostics} == {proto.MANDATORY}
    messages = " ".join(d.message for d in diagnostics)
    for expected in (
        "podTemplate 'keeper': container 'api': privileged must not be true",
        "podTemplate 'keeper': container 'api': runAsUser must not be 0",
        "hostNetwork must not be true",
        "volume 'root' must not use hostPath",
        "spec.templates.podTemplates[0].spec.containers[0].image: image 'clickhouse/clickhouse-keeper:latest'",
    ):
        assert expected in messages


def test_unknown_pod_template_list_defers_the_pod_rules() -> None:
    props = keeper(hardened_keeper_pod())
    props["spec"]["templates"]["podTemplates"] = UNKNOWN_ARRAY_VALUE
    diagnostics = analyze(configured(), props, KEEPER)
    assert {d.policyName for d in diagnostics} == POD_RULES
    assert {d.enforcementLevel for d in diagnostics} == {proto.ADVISORY}


def test_unknown_operator_image_is_deferred_not_passed() -> None:
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "app-db", "namespace": "soma-data"},
        "spec": {
            "imageName": UNKNOWN_STRING_VALUE,
            "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "securityContext": hardened_container()["securityContext"],
            "resources": hardened_container()["resources"],
        },
    }
    diagnostics = analyze(configured(), cluster, "kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("digest-pinned-images", proto.ADVISORY)]
    assert "spec.imageName can't be known during preview" in diagnostics[0].message
