"""Promotion waves: the order in which Argo CD brings the first-party applications to each environment.

One ApplicationSet generates one Application per (application, environment). Its RollingSync strategy
(Argo CD progressive syncs, enabled on the ApplicationSet controller by the chart value
``configs.params."applicationsetcontroller.enable.progressive.syncs"``) syncs them step by step and starts a
step only when every Application of the previous steps is Healthy: the environments in order (dev, then
staging, then prod), and inside an environment the applications in their dependency order (``dependsOn``
in the stack file, turned into waves here: an application's wave is one more than the highest wave of
what it needs). The same wave is written on each Application as ``argocd.argoproj.io/sync-wave``, so the
order reads the same in Argo CD's UI. Nothing here is numbered by hand.

The generated Applications have no automated sync policy: the ApplicationSet controller starts each sync
when the Application's step is reached (Argo CD docs, operator-manual/applicationset/Progressive-Syncs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from components.settings import ArgoCdApplication, ArgoCdSettings

ENVIRONMENT_LABEL = "somaagenthub.io/environment"
WAVE_LABEL = "somaagenthub.io/wave"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
APPLICATION_SET = "first-party-apps"


def waves(applications: Mapping[str, ArgoCdApplication]) -> dict[str, int]:
    """Application -> wave: 0 with no dependencies, else one more than the highest wave it depends on.

    Settings refuse unknown dependencies and cycles before this runs (``_argocd_problems``)."""
    found: dict[str, int] = {}

    def wave(name: str) -> int:
        if name not in found:
            found[name] = 1 + max((wave(d) for d in applications[name].depends_on), default=-1)
        return found[name]

    for name in applications:
        wave(name)
    return found


def project_name(environment: str) -> str:
    return f"apps-{environment}"


@dataclass(frozen=True)
class Step:
    environment: str
    wave: int

    def as_spec(self) -> dict:
        return {"matchExpressions": [
            {"key": ENVIRONMENT_LABEL, "operator": "In", "values": [self.environment]},
            {"key": WAVE_LABEL, "operator": "In", "values": [str(self.wave)]},
        ]}


def steps(settings: ArgoCdSettings) -> list[Step]:
    """Every environment in promotion order, inside each every wave in dependency order."""
    ordered = sorted(set(waves(settings.applications).values()))
    return [Step(env.name, wave) for env in settings.environments for wave in ordered]


def elements(settings: ArgoCdSettings) -> list[dict]:
    """The list generator's elements: one per (environment, application)."""
    wave_of = waves(settings.applications)
    return [
        {"app": name, "env": env.name, "server": env.server, "namespace": env.namespace,
         "path": f"{app.path}/{env.name}", "project": project_name(env.name), "wave": str(wave_of[name])}
        for env in settings.environments for name, app in sorted(settings.applications.items(), key=lambda a: (wave_of[a[0]], a[0]))
    ]


def application_set_spec(settings: ArgoCdSettings) -> dict:
    return {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"list": {"elements": elements(settings)}}],
        "strategy": {"type": "RollingSync", "rollingSync": {"steps": [s.as_spec() for s in steps(settings)]}},
        "template": {
            "metadata": {
                "name": "{{.app}}-{{.env}}",
                "labels": {ENVIRONMENT_LABEL: "{{.env}}", WAVE_LABEL: "{{.wave}}", "app.kubernetes.io/name": "{{.app}}",
                           "app.kubernetes.io/part-of": "somaagenthub"},
                "annotations": {SYNC_WAVE: "{{.wave}}"},
            },
            "spec": {
                "project": "{{.project}}",
                # recurse: the services' manifests sit in <path>/<env>/1-manifest/, where pulumi-kubernetes' render
                # provider writes them (components/agents/services.py manifests_provider); Argo CD reads only the
                # folder's own files otherwise (user-guide/directory, "Enabling Recursive Resource Detection")
                "source": {"repoURL": settings.repository, "targetRevision": settings.target_revision, "path": "{{.path}}",
                           "directory": {"recurse": True}},
                "destination": {"server": "{{.server}}", "namespace": "{{.namespace}}"},
                # no automated policy: the RollingSync strategy starts each sync when its step is reached
                "syncPolicy": {"syncOptions": ["ServerSideApply=true"], "retry": {"limit": 3}},
            },
        },
    }
