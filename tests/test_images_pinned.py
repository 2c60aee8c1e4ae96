"""Every image either stack runs, in a manifest, in chart values or in a custom resource, is
digest-pinned and in the catalog.

The images are read with the signed-images rule's own reader (``image_references``), which covers
pod templates, Helm chart values and every ``image``/``imageName`` under a custom resource's spec,
so this test and the gate cannot disagree about which images exist.
"""
from __future__ import annotations

import json
import re

import pytest

from components import catalog
from policies.catalog import load_catalog
from policies.images import ImageRef, image_problem
from policies.podspec import is_custom_resource, required_images
from policies.rules.signed_images import image_references
from tools.gate import plan_views

STACKS = ("dev", "prod")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def images_of(plan: dict) -> list[tuple[str, str]]:
    found = []
    for view in plan_views(plan):
        for where, reference in image_references(view):
            found.append((f"{view.urn} {where}", reference if isinstance(reference, str) else repr(reference)))
    return found


def catalog_digests_in(plan: dict) -> set[str]:
    """Catalog digests written anywhere in the plan, found by text search, independent of the reader."""
    catalogued = {image.digest.removeprefix("sha256:") for image in load_catalog(None).images}
    return {f"sha256:{hex_}" for hex_ in HEX_DIGEST.findall(json.dumps(plan["resources"]))} & {
        f"sha256:{c}" for c in catalogued
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned_and_catalogued(plans, stack):
    lock = load_catalog(None)
    registry = plans[stack]["settings"]["registry"]
    found = images_of(plans[stack])
    problems = [f"{where}: {problem}" for where, ref in found if (problem := image_problem(ref, lock, [registry]))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_the_reader_finds_every_catalog_image_the_stack_uses(plans, stack):
    """Guards the test above from passing vacuously: every catalog digest in the plan was read as an image."""
    used = catalog_digests_in(plans[stack])
    found = images_of(plans[stack])
    read = {ImageRef.parse(reference).digest for _, reference in found}
    assert used, "the plan names no catalog image at all"
    assert len(found) >= len(used)
    assert used <= read, f"catalog images in the plan the reader did not see: {sorted(used - read)}"


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resource_images_are_read(plans, stack):
    """Every custom resource whose operator runs an image it names (ClickHouse, Keeper, Kafka,
    CloudNativePG) has that image read; the test fails if the plan holds none of them."""
    checked = 0
    for view in plan_views(plans[stack]):
        if is_custom_resource(view.type) and required_images(view):
            assert list(image_references(view)), view.urn
            checked += 1
    assert checked, "no custom resource that names an image"


def test_an_unpinned_or_unknown_image_is_caught():
    lock = load_catalog(None)
    vault = catalog.load().image("vault")
    assert image_problem(vault.reference, lock, ["upstream"]) is None
    assert "not pinned by digest" in image_problem(f"{vault.name}:{vault.tag}", lock, ["upstream"])
    other = "docker.io/library/nginx:1.27@sha256:" + "0123456789abcdef" * 4
    assert "not in platform.lock.yaml" in image_problem(other, lock, ["upstream"])
