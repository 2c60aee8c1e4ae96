"""Readers over a rendered plan for the Argo CD tests: the AppProjects, the ApplicationSet, and the checks
that the tests apply to the plan and to deliberately broken copies of it."""
from __future__ import annotations

import fnmatch
from typing import Iterable, Mapping

from components.settings import ENVIRONMENTS, IN_CLUSTER
from tests.helpers import objects

ARGOCD_NAMESPACE = "soma-gitops"
HUBS = ["prod"]
"""The stacks that run Argo CD: prod's is the hub of the three waves; dev and staging are its spokes
(docs/architecture/gitops.md, "Which clusters"; tests/test_gitops_estate.py checks the stack files say so)."""
SPOKES = ["dev", "staging"]


def app_projects(plan: dict) -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"] for o in objects(plan, "AppProject")}


def application_set(plan: dict) -> dict:
    (found,) = [o["spec"] for o in objects(plan, "ApplicationSet")]
    return found


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def permitted(projects: Mapping[str, dict], namespace: str | None, group: str, kind: str) -> list[str]:
    """The projects that let Argo CD manage an object of (group, kind) in ``namespace`` of this cluster
    (None: cluster-scoped), by Argo CD's rules: an in-cluster destination whose namespace glob matches, and
    the kind in the namespace (or cluster) whitelist, ``*`` matching anything."""
    found = []
    for name, spec in projects.items():
        if namespace is None:
            whitelist = spec.get("clusterResourceWhitelist") or []
            places = True
        else:
            whitelist = spec.get("namespaceResourceWhitelist") or []
            places = any(d.get("server") in (IN_CLUSTER, "*") and fnmatch.fnmatchcase(namespace, d.get("namespace", ""))
                         for d in spec.get("destinations") or [])
        kinds = any(fnmatch.fnmatchcase(group, w.get("group", "")) and fnmatch.fnmatchcase(kind, w.get("kind", ""))
                    for w in whitelist)
        if places and kinds:
            found.append(name)
    return found


def owned_by_both(rendered: Iterable[dict], projects: Mapping[str, dict]) -> list[str]:
    """Every object Pulumi renders that an AppProject would also let Argo CD manage."""
    clashes = []
    for obj in rendered:
        namespace = (obj.get("metadata") or {}).get("namespace")
        by = permitted(projects, namespace, group_of(obj["apiVersion"]), obj["kind"])
        if by:
            clashes.append(f"{obj['kind']}/{namespace or ''}/{obj['metadata'].get('name')} (projects {by})")
    return clashes


def wave_problems(appset: dict, depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """What is wrong with the promotion order an ApplicationSet declares, read only from its spec:

    * RollingSync is the strategy, and its steps take the environments in the order dev, staging, prod,
      finishing one environment before the next starts;
    * every generated Application is selected by exactly one step;
    * inside an environment, an application's step comes after the steps of everything it depends on;
    * the sync-wave annotation the Applications get is their wave label."""
    problems: list[str] = []
    strategy = appset.get("strategy") or {}
    if strategy.get("type") != "RollingSync":
        return [f"strategy is {strategy.get('type')!r}, not RollingSync: nothing waits for anything"]
    steps = strategy["rollingSync"]["steps"]
    template = appset["template"]["metadata"]
    labels = template["labels"]
    env_key = next(k for k, v in labels.items() if v == "{{.env}}")
    wave_key = next(k for k, v in labels.items() if v == "{{.wave}}")
    if template.get("annotations", {}).get("argocd.argoproj.io/sync-wave") != "{{.wave}}":
        problems.append("the Applications' argocd.argoproj.io/sync-wave is not their wave")
    (generator,) = appset["generators"]
    elements = generator["list"]["elements"]

    def selects(step: dict, element: dict) -> bool:
        values = {env_key: element["env"], wave_key: element["wave"]}
        return all((values.get(e["key"]) in e["values"]) == (e["operator"] == "In") for e in step["matchExpressions"])

    position: dict[tuple[str, str], int] = {}
    for element in elements:
        chosen = [i for i, step in enumerate(steps) if selects(step, element)]
        if len(chosen) != 1:
            problems.append(f"{element['app']} in {element['env']} is selected by steps {chosen}, not exactly one")
            continue
        position[(element["env"], element["app"])] = chosen[0]
    envs_in_order = [env for env in ENVIRONMENTS if any(e == env for e, _ in position)]
    for earlier, later in zip(envs_in_order, envs_in_order[1:]):
        last_earlier = max(p for (e, _), p in position.items() if e == earlier)
        first_later = min(p for (e, _), p in position.items() if e == later)
        if first_later <= last_earlier:
            problems.append(f"{later} starts (step {first_later}) before {earlier} is done (step {last_earlier})")
    for (env, app), step in position.items():
        for needed in depends_on.get(app, ()):
            if (env, needed) in position and position[(env, needed)] >= step:
                problems.append(f"in {env}, {app} (step {step}) does not wait for {needed} (step {position[(env, needed)]})")
    return problems
