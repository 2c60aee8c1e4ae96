"""digest-pinned-images: every image is a digest-pinned, signed catalog image from an allowed registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..catalog import catalog_or_problem
from ..images import image_problem, looks_like_image
from ..model import Finding, ResourceView, Unresolved, Violation, is_unknown
from ..podspec import POD_SPEC_PATHS, is_custom_resource, pod_templates, required_images
from ..rule import Rule, RuleConfig, Severity

CR_IMAGE_KEYS = ("image", "imageName")
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HIDING_SENTINELS = frozenset(
    {"6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"}
)
"""Unknown arrays and objects: either could hold an image the rule cannot see during preview."""


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    references = list(image_references(resource))
    if not references:
        return
    catalog, problem = catalog_or_problem(config)
    if catalog is None:
        yield Violation(problem)
        return
    allowed = [str(prefix) for prefix in config.get("allowedRegistries", [])]
    for where, reference in references:
        if not isinstance(reference, str):
            yield reference
            continue
        problem = image_problem(reference, catalog, allowed)
        if problem:
            yield Violation(f"{where}: {problem}")


def image_references(resource: ResourceView) -> Iterator[tuple[str, str | Finding]]:
    """Every image the resource names, with where it was found."""
    if resource.type in POD_SPEC_PATHS:
        for pod in pod_templates(resource):
            yield from (("pod template", finding) for finding in pod.unresolved)
            for container in pod.containers:
                image = container.get("image")
                if is_unknown(image):
                    yield container.label, Unresolved(f"{container.path}.image", image.sentinel)
                else:
                    yield container.label, image if isinstance(image, str) else ""
                yield from _named_images(container.spec, container.label, container.path)
    elif is_custom_resource(resource.type):
        yield from _custom_resource_images(resource)
    elif resource.type == CONFIG_MAP:
        yield from _config_map_images(resource)


def _config_map_images(resource: ResourceView) -> Iterator[tuple[str, str | Finding]]:
    """``*IMAGE*`` keys of a ConfigMap: an operator reads the image it injects from there.

    The Barman Cloud plugin takes its sidecar's image from ``SIDECAR_IMAGE`` in a ConfigMap
    (``env[].valueFrom.configMapKeyRef``), so the pod spec alone never shows it.
    """
    data = resource.props.get("data")
    if is_unknown(data):
        yield "data", Unresolved("data", data.sentinel)
        return
    for key, value in (data or {}).items() if isinstance(data, dict) else ():
        if "IMAGE" not in str(key).upper():
            continue
        if is_unknown(value):
            yield f"data.{key}", Unresolved(f"data.{key}", value.sentinel)
        elif isinstance(value, str):
            yield from ((f"data.{key}", ref) for ref in _references_in(value, host_required=False))


def _custom_resource_images(resource: ResourceView) -> Iterator[tuple[str, str | Finding]]:
    """Every ``image``/``imageName`` string under ``spec``, whatever the kind, plus missing images.

    Generic on purpose: a new custom resource that names an image is checked without teaching
    the pack its layout. Where the pack does know the layout (``podspec``), an image the resource
    leaves out is reported too: its operator would run a default no catalog entry vouches for.
    """
    for pod in pod_templates(resource):
        yield from (("pod template", finding) for finding in pod.unresolved)
    for label, path, value in required_images(resource):
        if value is None:
            yield path, Violation(
                f"{label}: no image is set at {path}, so the operator would run its default image, "
                "which is not a pinned catalog image"
            )
    spec = resource.props.get("spec")
    if is_unknown(spec):
        yield "spec", Unresolved("spec", spec.sentinel)
    yield from _spec_images(spec, "spec")


def _spec_images(node: Any, path: str) -> Iterator[tuple[str, str | Finding]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _spec_images(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        child = f"{path}.{key}"
        if key in CR_IMAGE_KEYS and is_unknown(value):
            yield child, Unresolved(child, value.sentinel)
        elif key in CR_IMAGE_KEYS and isinstance(value, str):
            yield child, value
        elif is_unknown(value) and value.sentinel in HIDING_SENTINELS:
            yield child, Unresolved(child, value.sentinel)
        else:
            yield from _spec_images(value, child)


def _named_images(container: Any, label: str, path: str) -> Iterator[tuple[str, str | Finding]]:
    """Images an operator container names for what it starts: ``*IMAGE*`` (and Strimzi's ``*_BUILDER``) env values and image
    arguments (``--prometheus-config-reloader=<ref>``), each ``<version>=<ref>`` list entry included.

    An operator runs these when a custom resource names no image of its own, so they are held
    to the same catalog as the images of pods.
    """
    envs, args = container.get("env"), container.get("args")
    for key, value in (("env", envs), ("args", args)):
        if is_unknown(value):
            yield label, Unresolved(f"{path}.{key}", value.sentinel)
    for index, env in enumerate(envs if isinstance(envs, list) else []):
        raw = env.get("name") if isinstance(env, dict) else env
        if is_unknown(raw):
            yield label, Unresolved(f"{path}.env[{index}]" + (".name" if isinstance(env, dict) else ""), raw.sentinel)
            continue
        name = str(raw or "").upper() if isinstance(env, dict) else ""
        if "IMAGE" not in name and not name.endswith("_BUILDER"):
            continue
        value = env.get("value")
        if is_unknown(value):
            yield label, Unresolved(f"{path}.env[{index}].value", value.sentinel)
        elif isinstance(value, str):
            yield from ((f"{label} env {env['name']}", ref) for ref in _references_in(value, host_required=False))
    for index, arg in enumerate(args if isinstance(args, list) else []):
        flag, _, value = arg.partition("=") if isinstance(arg, str) else ("", "", "")
        if flag.startswith("-") and ("image" in flag.lower() or "reloader" in flag.lower()):
            yield from ((f"{label} args[{index}]", ref) for ref in _references_in(value))


def _references_in(text: str, host_required: bool = True) -> Iterator[str]:
    """Image references in a value such as ``4.2.0=quay.io/a/b:1@sha256:..`` lists, one per token.

    In an ``*IMAGE*`` env value any image-shaped token counts (``busybox:latest`` too); in an
    argument only one with a registry host, so that other ``key=value`` flags are not mistaken for one.
    """
    for token in text.replace(",", " ").split():
        candidate = token.rsplit("=", 1)[-1].strip()
        first = candidate.split("/", 1)[0]
        has_host = "/" in candidate and ("." in first or ":" in first)
        if (has_host or not host_required) and looks_like_image(candidate):
            yield candidate


RULE = Rule(
    name="digest-pinned-images",
    description=(
        "Every container image (init and ephemeral containers, the images operators name in their env and "
        "arguments for what they start, and every image/imageName of a custom resource's spec included) is "
        "pinned by sha256 digest, listed in platform.lock.yaml with a signer, and pulled from a registry the stack allows. "
        "Helm charts are judged by the objects they render."
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Name the image through components.catalog (catalog.image('<key>')), which writes "
        "<registry>/<repository>:<tag>@<digest> for the stack's registry. A new image first goes "
        "into platform.lock.yaml with its digest, the source the digest was read from, and its "
        "signer (the keyless identity the upstream documents, or 'platform' once the release "
        "pipeline has copied and signed it into the platform registry). In prod, images come "
        "only from the platform registry."
    ),
    check_resource=check,
    config_schema={
        "catalogPath": {
            "type": "string",
            "default": "platform.lock.yaml",
            "description": "Catalog file; relative paths are relative to the repository root.",
        },
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Registry prefixes images may come from; 'upstream' means the catalog entry's own registry.",
        },
    },
)
