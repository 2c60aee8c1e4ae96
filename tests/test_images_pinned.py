"""Every image either stack runs is digest-pinned and in the catalog: in every pod the plan renders
(the program's own and every chart's children, init containers included), in every custom resource,
and every default image an operator names in its environment or arguments for what it starts.

The images are read with the digest-pinned-images rule's own reader (``image_references``), so this test
and the gate cannot disagree about which images exist; a second, independent walk over the rendered
pod specs proves the reader misses no container. The only exceptions are the image-scoped waivers
in ``policies/config/<stack>.json`` (``digest-pinned-images.allowedWaivers``): each names the object and
the exact image it excuses, with a reason; each must excuse something, and none may excuse an
image a pod actually runs.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from components import catalog
from policies.catalog import load_catalog
from policies.config import load_config_file, stack_config_path
from policies.images import ImageRef, image_problem
from policies.model import ResourceView
from policies.podspec import is_custom_resource, required_images
from policies.rules.digest_pinned_images import image_references
from tests.helpers import pod_specs
from tools.gate import plan_views

STACKS = ("dev", "staging", "prod")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def images_of(plan: dict) -> list[tuple[ResourceView, str, str]]:
    """(resource, where, reference) for every image the digest-pinned-images reader finds in the plan."""
    found = []
    for view in plan_views(plan):
        for where, reference in image_references(view):
            found.append((view, where, reference if isinstance(reference, str) else repr(reference)))
    return found


def image_waivers(stack: str) -> dict[tuple[str, str], str]:
    """``(<kind>/<namespace>/<name>, image) -> reason`` for the stack's image-scoped digest-pinned-images waivers."""
    entries = load_config_file(stack_config_path(stack))["digest-pinned-images"].get("allowedWaivers", [])
    return {(e["resource"], e["image"]): e.get("reason", "") for e in entries if e.get("image")}


def pinning_problems(plan: dict, stack: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """Findings no waiver excuses, and where each waiver excused one."""
    lock = load_catalog(None)
    registry = plan["settings"]["registry"]
    waivers = image_waivers(stack)
    problems, excused = [], defaultdict(list)
    for view, where, reference in images_of(plan):
        problem = image_problem(reference, lock, [registry])
        if problem is None:
            continue
        if (view.resource_id, reference) in waivers:
            excused[(view.resource_id, reference)].append(where)
        else:
            problems.append(f"{view.urn} {where}: {problem}")
    return problems, excused


ADMISSION_ALLOW_LISTS = (":ClusterImagePolicy", ":SomaCatalogImages")
"""Objects that list the catalog's digests to admit them (sigstore's ClusterImagePolicies, Gatekeeper's
catalog-images constraint)."""


def catalog_digests_in(plan: dict) -> set[str]:
    """Catalog digests written anywhere in the plan, found by text search, independent of the reader."""
    catalogued = {image.digest.removeprefix("sha256:") for image in load_catalog(None).images}
    # admission's allow lists name every catalog digest they admit, run or not: they are not where images run
    running = [r for r in plan["resources"] if not r["type"].endswith(ADMISSION_ALLOW_LISTS)]
    return {f"sha256:{hex_}" for hex_ in HEX_DIGEST.findall(json.dumps(running))} & {
        f"sha256:{c}" for c in catalogued
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned_and_catalogued(plans, stack):
    problems, excused = pinning_problems(plans[stack], stack)
    assert not problems, "\n".join(problems)
    waivers = image_waivers(stack)
    stale = sorted(set(waivers) - set(excused))
    assert not stale, f"waivers that excuse nothing (remove them from policies/config/{stack}.json): {stale}"
    assert all(reason.strip() for reason in waivers.values()), "every waiver says why"
    # every excused finding is a default image an operator names (env or argument), never a container's own
    places = [where for wheres in excused.values() for where in wheres]
    assert len(places) >= len(waivers)
    assert all(" env " in where or " args[" in where for where in places), places


@pytest.mark.parametrize("stack", STACKS)
def test_no_waiver_excuses_an_image_a_pod_runs(plans, stack):
    """Waived images are defaults an operator would start for a resource the platform does not declare;
    every container that actually runs has a pinned catalog image."""
    waived = {image for _, image in image_waivers(stack)}
    running = {c.get("image") for _, spec in pod_specs(plans[stack]) for key in CONTAINER_LISTS for c in spec.get(key) or []}
    assert running and not (waived & running)


def test_a_waiver_excuses_only_the_image_it_names_on_the_object_it_names(plans):
    """The checks above are not vacuous: the same operator under another name is not excused, its
    default Thanos image is reported again, and the waiver naming the old object excuses nothing."""
    import copy

    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "Deployment" and r["inputs"]["metadata"]["name"] == "kps-operator":
            r["inputs"]["metadata"]["name"] = "prometheus-operator"
    problems, excused = pinning_problems(broken, "prod")
    assert [p for p in problems if "quay.io/thanos/thanos:v0.42.4" in p] and len(problems) == 1, problems
    assert set(image_waivers("prod")) - set(excused) == {("Deployment/soma-observability/kps-operator", "quay.io/thanos/thanos:v0.42.4")}


@pytest.mark.parametrize("stack", STACKS)
def test_the_reader_sees_every_container_of_every_rendered_pod(plans, stack):
    """An independent walk over every pod spec in the plan (kit workloads and chart children alike):
    each container's image is among those the reader reports for that object."""
    read: dict[str, set[str]] = {}
    for view, _, reference in images_of(plans[stack]):
        read.setdefault(view.resource_id, set()).add(reference)
    missed, seen = [], 0
    for obj, spec in pod_specs(plans[stack]):
        meta = obj["metadata"]
        resource_id = f"{obj['kind']}/{meta['namespace']}/{meta['name']}"
        for key in CONTAINER_LISTS:
            for container in spec.get(key) or []:
                seen += 1
                if container.get("image") not in read.get(resource_id, set()):
                    missed.append(f"{resource_id} {key} {container['name']}: {container.get('image')}")
    assert not missed, missed
    chart_pods = [obj for obj, _ in pod_specs(plans[stack]) if obj["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "Helm"]
    assert seen > len(chart_pods) >= 10, "the chart children's pods are part of the plan, beside the program's own"


@pytest.mark.parametrize("stack", STACKS)
def test_the_reader_finds_every_catalog_image_the_stack_uses(plans, stack):
    """Guards the test above from passing vacuously: every catalog digest in the plan was read as an image."""
    used = catalog_digests_in(plans[stack])
    found = images_of(plans[stack])
    read = {ImageRef.parse(reference).digest for _, _, reference in found}
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
