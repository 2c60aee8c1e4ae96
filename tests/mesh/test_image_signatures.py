"""Signed images only (issue 11 point 4): what the rendered plans of every stack ask admission to verify.

Every image a plan runs (pods, pod templates, operator-started pods and the images operators name, custom
resources' images: the references the gate's digest-pinned-images rule reads) must be covered by exactly
one generated ClusterImagePolicy, the one its catalog signer names for that stack: in dev (upstream pulls)
the keyless identity or the platform key as the catalog says, in prod (mirrored copies) the platform key.
An image whose signer is unknown fails the gate.
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from components import catalog as program_catalog
from components import settings as platform_settings
from components.config_schema import SettingsError
from components.mesh.signatures import KUBERNETES_API, WEBHOOK_PORT
from components.mesh.signatures import policies as generated
from policies import image_policies
from policies.evaluate import check_stack
from policies.model import ResourceView
from policies.rules import signed_images
from policies.rules.digest_pinned_images import image_references
from tests.helpers import objects
from tools.render import ROOT, stack_config

STACKS = ("dev", "staging", "prod")
POLICY_TYPE = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"


def views(plan: dict) -> list[ResourceView]:
    return [ResourceView.of(r["type"], r["name"], r["urn"], r["inputs"]) for r in plan["resources"]]


def gate_config(stack: str) -> dict:
    rule_block = json.loads((ROOT / "policies" / "config" / f"{stack}.json").read_text())["signed-images"]
    return {**signed_images.RULE.defaults(), **rule_block, "catalogPath": str(ROOT / "platform.lock.yaml")}


def settings_of(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def plan_images(plan: dict) -> dict[str, str]:
    """Every catalog-pinned image reference of the plan, with where it is named."""
    found = {}
    for view in views(plan):
        if view.type == POLICY_TYPE:
            continue
        for where, ref in image_references(view):
            if isinstance(ref, str) and "@sha256:" in ref:
                found.setdefault(ref, f"{view.resource_id} {where}")
    return found


def policies_of(plan: dict) -> list[dict]:
    return [r["inputs"] for r in plan["resources"] if r["type"] == POLICY_TYPE]


def expected_policy(stack: str, reference: str) -> str:
    """The policy the image's catalog signer names, for this stack (independent of the generator's grouping)."""
    catalog = program_catalog.load()
    digest = reference.split("@", 1)[1]
    (image,) = [i for i in catalog.images.values() if i.digest == digest and reference.split("@")[0].rsplit(":", 1)[0].endswith(i.repository)]
    if settings_of(stack).mesh.signatures.verify_by == "platformKey" or image.signer.kind == "platform":
        return "platform-key"
    return generated.policy_name(generated.Authority("keyless", image.signer.issuer, image.signer.subject))


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_of_the_plan_is_covered_by_exactly_the_policy_its_signer_names(plans, stack):
    plan = plans[stack]
    images = plan_images(plan)
    policies = policies_of(plan)
    assert len(images) >= 25 and policies
    operator_named = [ref for ref, where in images.items() if " env " in where or "args[" in where]
    assert operator_named, "operator-started images (env, arguments) are part of what admission must verify"
    for reference, where in images.items():
        covering = [p["metadata"]["name"] for p in policies
                    if any(image_policies.glob_matches(g["glob"], reference) for g in p["spec"]["images"])]
        assert covering == [expected_policy(stack, reference)], (where, reference, covering)


@pytest.mark.parametrize("stack", STACKS)
def test_policies_trust_exactly_the_signers_and_key_the_settings_name(plans, stack):
    signatures = settings_of(stack).mesh.signatures
    catalog = program_catalog.load()
    policies = {p["metadata"]["name"]: p["spec"] for p in policies_of(plans[stack])}
    platform = policies["platform-key"]["authorities"]
    assert platform == [{"name": "platform", "key": {"data": signatures.platform_key.public_key_pem, "hashAlgorithm": "sha256"}}]
    keyless = {name: spec for name, spec in policies.items() if name != "platform-key"}
    if signatures.verify_by == "platformKey":
        assert keyless == {}, "prod trusts the platform key alone"
    else:
        identities = {(i.signer.issuer, i.signer.subject) for i in catalog.images.values() if i.signer.kind == "keyless"}
        assert {tuple(s["authorities"][0]["keyless"]["identities"][0].values()) for s in keyless.values()} == identities
    assert {spec["mode"] for spec in policies.values()} == {signatures.mode}
    assert signatures.mode == ("enforce" if settings_of(stack).policy_enforcement == "mandatory" else "warn")


@pytest.mark.parametrize("stack", STACKS)
def test_an_image_with_an_unknown_signer_fails_the_gate(plans, stack, tmp_path):
    plan = copy.deepcopy(plans[stack])
    config = gate_config(stack)
    assert not [o for o in check_stack(signed_images.RULE, views(plan), config) if not o.waived]
    # one image whose catalog entry loses its signer
    lock = yaml.safe_load((ROOT / "platform.lock.yaml").read_text())
    del lock["images"]["policy-controller"]["signer"]
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(lock))
    messages = [o.message for o in check_stack(signed_images.RULE, views(plan), {**config, "catalogPath": str(tmp_path / "lock.yaml")})
                if not o.waived]
    assert messages and all("images.policy-controller" in m and "no complete signer" in m for m in messages)
    # one pod running a digest the catalog does not know
    deployment = next(r for r in plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment" and r["inputs"]["metadata"]["name"] == "policy-controller-webhook")
    container = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = container["image"].split("@")[0] + "@sha256:" + "0123456789abcdef" * 4
    messages = [o.message for o in check_stack(signed_images.RULE, views(plan), config) if not o.waived]
    assert len(messages) == 1 and "is not in platform.lock.yaml, so its signer is unknown" in messages[0]


@pytest.mark.parametrize("stack", STACKS)
def test_gate_config_says_what_the_settings_say(stack):
    signatures = settings_of(stack).mesh.signatures
    config = gate_config(stack)
    assert config["verifyBy"] == signatures.verify_by
    assert config["platformKey"] == signatures.platform_key.public_key_pem.strip()
    assert config["mode"] == signatures.mode
    settings = settings_of(stack)
    assert config["exemptNamespaces"] == sorted(settings.namespace_named_by(p) for p in signatures.exempt_namespaces)


def test_program_and_pack_match_images_as_policy_controller_does():
    catalog = program_catalog.load()
    for registry in ("upstream", "registry.soma.example.com/mirror"):
        for key in catalog.images:
            ref = catalog.for_registry(registry).image(key).reference
            name = image_policies.admission_name(ref)
            assert "@sha256:" in name and f":{catalog.images[key].tag}@" not in name
    assert image_policies.admission_name("docker.io/library/busybox:1.37@sha256:" + "ab" * 32) == "index.docker.io/library/busybox@sha256:" + "ab" * 32
    assert image_policies.admission_name("busybox:1.37") == "index.docker.io/library/busybox"
    assert image_policies.glob_matches("ghcr.io/*", "ghcr.io/a/b:1") is False
    assert image_policies.glob_matches("ghcr.io/**", "ghcr.io/a/b:1") is True


@pytest.mark.parametrize("stack", STACKS)
def test_every_platform_namespace_is_verified_but_the_exempt_one(plans, stack):
    signatures = settings_of(stack).mesh.signatures
    labelled = {ns["metadata"]["name"]: ns["metadata"]["labels"].get("policy.sigstore.dev/include") for ns in objects(plans[stack], "Namespace")}
    assert set(signatures.exempt_namespaces) == {"mesh.admission"}
    assert {n for n, v in labelled.items() if v != "true"} == {"soma-admission"}
    assert set(labelled) == set(settings_of(stack).all_namespaces())


def webhook(plan: dict) -> dict:
    (deployment,) = [d for d in objects(plan, "Deployment") if d["metadata"]["name"] == "policy-controller-webhook"]
    return deployment


@pytest.mark.parametrize("stack", STACKS)
def test_verifier_runs_hardened_and_fails_closed_in_prod(plans, stack):
    plan = plans[stack]
    deployment = webhook(plan)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["memory"] and container["resources"]["limits"]["cpu"]
    assert container["image"] == program_catalog.load().for_registry(settings_of(stack).registry).image("policy-controller").reference
    pod_webhooks = [w for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
                    for c in objects(plan, kind) if c["metadata"]["name"] == "policy.sigstore.dev" for w in c["webhooks"]]
    assert len(pod_webhooks) == 2
    config = next(c for c in objects(plan, "ConfigMap") if c["metadata"]["name"] == "config-policy-controller")
    if settings_of(stack).policy_enforcement == "mandatory":
        assert deployment["spec"]["replicas"] >= 2
        assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
        assert [w["failurePolicy"] for w in pod_webhooks] == ["Fail", "Fail"]
        assert config["data"]["no-match-policy"] == "deny"
        assert any(p["metadata"]["name"] == "policy-controller-webhook" for p in objects(plan, "PodDisruptionBudget"))
    else:
        assert config["data"]["no-match-policy"] == "warn"
    monitors = [m for m in objects(plan, "ServiceMonitor") if m["metadata"]["namespace"] == "soma-admission"]
    assert monitors and monitors[0]["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize("stack", STACKS)
def test_verifier_talks_only_to_the_api_server_and_the_declared_destinations(plans, stack):
    settings = settings_of(stack)
    policies = [p for p in objects(plans[stack], "NetworkPolicy") if p["metadata"]["namespace"] == "soma-admission"
                and p["spec"]["podSelector"].get("matchLabels", {}).get("control-plane") == "policy-controller-webhook"]
    ingress = {(peer.get("ipBlock", {}).get("cidr") or peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
               for p in policies for rule in p["spec"].get("ingress", []) for peer in rule["from"] for port in rule["ports"]}
    egress = {(peer["ipBlock"]["cidr"], port["port"])
              for p in policies for rule in p["spec"].get("egress", []) for peer in rule["to"] for port in rule["ports"]}
    api = settings.core.api_server_cidr
    assert ingress == {(api, WEBHOOK_PORT), (settings.core.namespaces.observability.name, 9090)}
    assert egress == {(api, p) for p in KUBERNETES_API} | {(d.cidr, d.port) for d in settings.mesh.signatures.egress}


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_post_delete_lease_cleanup_hook_is_dropped(plans, stack):
    (chart,) = [c for c in plans[stack]["charts"] if c["name"] == "policy-controller"]
    assert all("(post-delete)" in hook for hook in chart["hooksDropped"]) and any("Job/leases-cleanup" in h for h in chart["hooksDropped"])


def signature_problems(stack: str, **changes) -> list[str]:
    config = stack_config(stack)
    mesh = json.loads(config["somaagenthub:mesh"])
    mesh["signatures"].update(changes)
    config["somaagenthub:mesh"] = json.dumps(mesh)
    with pytest.raises(SettingsError) as err:
        platform_settings.parse(config, stack)
    return err.value.problems


def test_prod_settings_refuse_a_verifier_that_does_not_fail_closed():
    problems = signature_problems("prod", mode="warn", failurePolicy="Ignore", noMatchPolicy="warn", replicas=1)
    for key in ("mesh.signatures.mode", "mesh.signatures.failurePolicy", "mesh.signatures.noMatchPolicy", "mesh.signatures.replicas"):
        assert any(key in p for p in problems), (key, problems)


def test_settings_refuse_a_private_key_two_keys_and_a_stray_exemption():
    problems = signature_problems("dev", platformKey={"publicKeyPem": "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\n"})
    assert any("platformKey.publicKeyPem" in p and "never a private key" in p for p in problems)
    problems = signature_problems("dev", platformKey={"publicKeyPem": "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n", "kms": "hashivault://platform"})
    assert any("exactly one of publicKeyPem or kms" in p for p in problems)
    problems = signature_problems("dev", exemptNamespaces={"kube-system": "not ours"})
    assert any("exemptNamespaces.kube-system: names no platform namespace" in p for p in problems)
    problems = signature_problems("dev", verifyBy="platformKey")
    assert any("verifyBy" in p and "upstream" in p for p in problems)
