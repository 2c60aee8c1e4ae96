"""no-plaintext-secrets: no secret value is written into the program.

Secrets reach pods through External Secrets (an ExternalSecret pulls them from the secret
store at runtime), so a Secret with literal data, or a ConfigMap/env value under a key that
names a credential, means a secret has leaked into code, state and the rendered plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..model import Finding, ResourceView, Unresolved, Violation, dig, is_unknown
from ..podspec import ContainerRef, pod_templates
from ..rule import Rule, RuleConfig, Severity

SENSITIVE_WORDS = frozenset(
    {"password", "passwd", "pwd", "token", "secret", "key", "apikey", "credential", "credentials", "privatekey"}
)
REFERENCE_SUFFIXES = frozenset({"file", "path", "name", "ref", "dir", "mount", "url", "id"})
LIFETIME_SUFFIXES = frozenset({"ttl", "lifetime"})
"""How long a secret lives (ztunnel's ``SECRET_TTL``, istiod's ``MAX_WORKLOAD_CERT_TTL``): a duration, never the secret."""
WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_sensitive_key(key: str) -> bool:
    """``DB_PASSWORD``, ``apiKey``, ``client-secret``: yes.

    ``TOKEN_FILE``, ``SECRET_NAME``: no, they name where a secret is, not the secret; ``SECRET_TTL``: no,
    it says how long one lives.
    """
    words = [word.lower() for word in WORD_RE.findall(key)]
    return (bool(words) and words[-1] not in REFERENCE_SUFFIXES | LIFETIME_SUFFIXES
            and any(w in SENSITIVE_WORDS for w in words))


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    if resource.type == "kubernetes:core/v1:Secret":
        yield from _secret(resource)
    elif resource.type == "kubernetes:core/v1:ConfigMap":
        yield from _config_map(resource)
    else:
        yield from _env(resource)


def _secret(resource: ResourceView) -> Iterator[Finding]:
    for section in ("data", "stringData"):
        value = resource.props.get(section)
        # A non-empty mapping, or a masked one ("[secret]" in an offline plan, where the data was a
        # Pulumi secret): either way the Secret carries literal data.
        if is_unknown(value) or (isinstance(value, (dict, str)) and value):
            yield Violation(
                f"Secret '{resource.object_name}' carries literal {section}; deliver it with an ExternalSecret"
            )


def _config_map(resource: ResourceView) -> Iterator[Finding]:
    for section in ("data", "binaryData"):
        entries = resource.props.get(section)
        if is_unknown(entries):
            yield Unresolved(section, entries.sentinel)
            continue
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if is_sensitive_key(key) and _is_literal(value):
                yield Violation(f"ConfigMap '{resource.object_name}' key '{key}' holds a literal credential")


def _env(resource: ResourceView) -> Iterator[Finding]:
    for pod in pod_templates(resource):
        yield from pod.unresolved
        for c in pod.containers:
            yield from _container_env(c)


def _container_env(c: ContainerRef) -> Iterator[Finding]:
    env = c.get("env")
    if is_unknown(env):
        yield Unresolved(c.where("env"), env.sentinel)
    for index, item in enumerate(env if isinstance(env, list) else []):
        name, value = dig(item, "name"), dig(item, "value")
        if is_unknown(name):
            yield Unresolved(f"{c.where('env')}[{index}].name", name.sentinel)
        elif isinstance(name, str) and is_sensitive_key(name) and _is_literal(value):
            yield Violation(f"{c.label}: env '{name}' has a literal value; use valueFrom.secretKeyRef{c.hint('env')}")


def _is_literal(value: Any) -> bool:
    """Unknown values count: a credential computed at deploy time is still written in plain text."""
    return is_unknown(value) or (value is not None and value != "")


RULE = Rule(
    name="no-plaintext-secrets",
    description=(
        "No Secret with literal data in the program, and no ConfigMap entry or container env "
        "value under a key that names a password, token, secret or key holds a literal value."
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Store the value in the secret store and create an ExternalSecret for it; reference it "
        "from the pod with env.valueFrom.secretKeyRef or a secret volume. Never pass a secret "
        "value to a Secret, ConfigMap or env literal, even a Pulumi secret."
    ),
    check_resource=check,
)
