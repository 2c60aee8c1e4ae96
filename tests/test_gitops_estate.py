"""One owner per object across the estate (docs/architecture/gitops.md, "Which clusters"): every environment whose
services go through Argo CD is driven by exactly one Argo CD, the hub, and the hub and that environment's stack agree
on where its applications live.

Every other Argo CD test looks at one stack; two Argo CDs syncing the same folder into the same namespace of one
cluster (dev's own and prod's, before dev became a spoke) are only visible across the stack files. Read through
``components.settings.parse``, nothing rendered.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from components import settings
from components.settings import IN_CLUSTER, PlatformSettings
from tests.governance import standalone
from tests.helpers import config_with, stack_document
from tools.render import stack_config

STACKS = ("dev", "staging", "prod")


def estate_problems(stacks: Mapping[str, PlatformSettings]) -> list[str]:
    """What breaks "one Argo CD per environment" in an estate of stacks (stack name -> its settings).

    For each stack with ``agents.delivery.mode: argocd`` (its environment: ``agents.delivery.environment``):
    exactly one stack's ``governance.argocd.environments`` names that environment (the driver); the driver's wave
    is in-cluster exactly when the driver is that stack itself (a hub's own wave; any other is a spoke, reached
    through its API) and then deploys into the stack's agents namespace; a spoke's ``paths`` are the driver's
    ``applications`` paths, and each service the spoke enables is one of the driver's applications. And every wave an
    Argo CD drives is some stack's environment (else it syncs a folder nobody renders)."""
    drivers: dict[str, list[str]] = {}
    for name, s in stacks.items():
        for env in s.governance.argocd.environments if s.governance.argocd else ():
            drivers.setdefault(env.name, []).append(name)
    problems: list[str] = []
    delivered = {s.agents.delivery.environment: name for name, s in stacks.items() if s.agents.delivery.mode == "argocd"}
    for env, name in delivered.items():
        spoke, who = stacks[name], drivers.get(env, [])
        if len(who) != 1:
            problems.append(f"{env} (stack {name}): driven by {len(who)} Argo CDs {who}, not exactly one")
            continue
        hub = stacks[who[0]].governance.argocd
        wave = next(e for e in hub.environments if e.name == env)
        if (wave.server == IN_CLUSTER) != (who[0] == name):
            problems.append(f"{env} (stack {name}): {who[0]}'s Argo CD deploys it to {wave.server}: "
                            f"{f'its own cluster, not stack {name}' if wave.server == IN_CLUSTER else 'another cluster, not its own'}")
        agents = spoke.agents.namespaces["agents"].name
        if wave.namespace not in (None, agents):
            problems.append(f"{env} (stack {name}): {who[0]}'s Argo CD deploys into {wave.namespace}, the stack's agents "
                            f"namespace is {agents}")
        if who[0] == name:
            continue
        folders = {app: a.path for app, a in hub.applications.items()}
        if dict(spoke.agents.delivery.paths) != folders:
            problems.append(f"{env} (stack {name}): agents.delivery.paths {dict(spoke.agents.delivery.paths)} are not "
                            f"{who[0]}'s governance.argocd.applications paths {folders}")
        missing = [svc for svc in spoke.agents.services.enabled() if svc not in hub.applications]
        if missing:
            problems.append(f"{env} (stack {name}): enables {missing}, which {who[0]}'s Argo CD does not deploy")
    for env, who in sorted(drivers.items()):
        if env not in delivered:
            problems.append(f"{env}: {who}'s Argo CD drives it, but no stack renders its folders (agents.delivery)")
    return problems


def parsed(**configs: dict[str, str]) -> dict[str, PlatformSettings]:
    """The three stack files through settings, with some stacks' config replaced."""
    return {s: settings.parse(configs.get(s) or stack_config(s), s) for s in STACKS}


def test_the_stack_files_make_one_estate_with_prod_as_its_hub():
    estate = parsed()
    assert estate_problems(estate) == []
    assert [s for s, p in estate.items() if p.governance.argocd] == ["prod"]
    assert {p.agents.delivery.environment for p in estate.values()} == {"dev", "staging", "prod"}


def test_dev_with_an_argo_cd_of_its_own_is_two_owners():
    """The layout before the hub: dev's Argo CD and prod's both sync <path>/dev into dev's soma-agents."""
    found = estate_problems(parsed(dev=standalone.config()))
    assert found == ["dev (stack dev): driven by 2 Argo CDs ['dev', 'prod'], not exactly one"]


def test_a_spoke_missing_from_the_hubs_waves_is_driven_by_nobody():
    governance = stack_document("prod")["somaagenthub:governance"]
    argocd = {**governance["argocd"], "environments": [e for e in governance["argocd"]["environments"] if e["name"] != "staging"]}
    found = estate_problems(parsed(prod=config_with("prod", governance={**governance, "argocd": argocd})))
    assert found == ["staging (stack staging): driven by 0 Argo CDs [], not exactly one"]


def test_a_wave_nobody_renders_is_reported():
    estate = parsed()
    estate.pop("staging")
    assert estate_problems(estate) == ["staging: ['prod']'s Argo CD drives it, but no stack renders its folders (agents.delivery)"]


def test_a_spoke_whose_folders_or_services_the_hub_does_not_list():
    """staging renders gateway elsewhere than prod syncs it, and enables the tool service prod does not deploy."""
    estate = parsed()
    staging = estate["staging"]
    services = replace(staging.agents.services, tools=replace(staging.agents.services.tools, enabled=True))
    delivery = replace(staging.agents.delivery, paths={**staging.agents.delivery.paths, "gateway": "deploy/api-gateway"})
    estate["staging"] = replace(staging, agents=replace(staging.agents, services=services, delivery=delivery))
    found = estate_problems(estate)
    assert len(found) == 2
    assert found[0].startswith("staging (stack staging): agents.delivery.paths ") and "'gateway': 'deploy/api-gateway'" in found[0]
    assert found[1] == "staging (stack staging): enables ['tools'], which prod's Argo CD does not deploy"


def test_a_hub_that_deploys_a_spoke_into_another_namespace_is_reported():
    governance = stack_document("prod")["somaagenthub:governance"]
    argocd = {**governance["argocd"], "environments": [
        {**e, "namespace": "soma-apps"} if e["name"] == "dev" else e for e in governance["argocd"]["environments"]]}
    found = estate_problems(parsed(prod=config_with("prod", governance={**governance, "argocd": argocd})))
    assert found == ["dev (stack dev): prod's Argo CD deploys into soma-apps, the stack's agents namespace is soma-agents"]


def test_a_single_cluster_estate_is_its_own_hub():
    """One stack, one Argo CD, one in-cluster wave (tests/governance/standalone.py): still a valid estate."""
    assert estate_problems({"dev": settings.parse(standalone.config(), "dev")}) == []


def test_a_hub_that_deploys_a_spokes_wave_into_its_own_cluster_is_reported():
    """prod's dev wave without a server would land in prod's own soma-agents: dev's folder on the wrong cluster."""
    governance = stack_document("prod")["somaagenthub:governance"]
    argocd = {**governance["argocd"], "environments": [
        {"name": "dev"} if e["name"] == "dev" else e for e in governance["argocd"]["environments"]]}
    found = estate_problems(parsed(prod=config_with("prod", governance={**governance, "argocd": argocd})))
    assert found == [f"dev (stack dev): prod's Argo CD deploys it to {IN_CLUSTER}: its own cluster, not stack dev"]
