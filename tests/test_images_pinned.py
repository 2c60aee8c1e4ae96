"""Every image either stack runs, in a manifest or in chart values, is digest-pinned and in the catalog."""
from __future__ import annotations

import pytest

from components import catalog
from policies.catalog import load_catalog
from policies.images import image_problem
from policies.rules.signed_images import image_references
from tools.gate import plan_views

STACKS = ("dev", "prod")


def images_of(plan: dict) -> list[tuple[str, str]]:
    found = []
    for view in plan_views(plan):
        for where, reference in image_references(view):
            found.append((f"{view.urn} {where}", reference if isinstance(reference, str) else repr(reference)))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned_and_catalogued(plans, stack):
    lock = load_catalog(None)
    registry = plans[stack]["settings"]["registry"]
    found = images_of(plans[stack])
    problems = [f"{where}: {problem}" for where, ref in found if (problem := image_problem(ref, lock, [registry]))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_the_stacks_run_catalogued_images_at_all(plans, stack):
    """Guards the test above from passing vacuously once components exist."""
    phases_with_components = {r["type"] for r in plans[stack]["resources"]} & {
        "kubernetes:helm.sh/v4:Chart", "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"
    }
    if phases_with_components:
        assert images_of(plans[stack]), "the plan deploys workloads or charts but no image was found in them"


def test_an_unpinned_or_unknown_image_is_caught():
    lock = load_catalog(None)
    vault = catalog.load().image("vault")
    assert image_problem(vault.reference, lock, ["upstream"]) is None
    assert "not pinned by digest" in image_problem(f"{vault.name}:{vault.tag}", lock, ["upstream"])
    other = "docker.io/library/nginx:1.27@sha256:" + "0123456789abcdef" * 4
    assert "not in platform.lock.yaml" in image_problem(other, lock, ["upstream"])
