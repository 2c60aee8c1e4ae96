"""Names: which Qdrant collection holds a tenant's collection, derived only from the verified tenant.

A caller names a collection by its id (``acme-handbook``); the tenant comes from the gateway's verified
``X-Soma-Tenant``. The Qdrant name is ``t_<tenant>__<collection id>``: a tenant is a DNS label (no ``_``),
so the first ``__`` splits every name one way only, and no collection id a caller can send reaches
another tenant's collection (``globex__x`` as an id of acme's is ``t_acme__globex__x``, not globex's ``x``).
Every point also carries its tenant and collection and every read and delete filters on them too.
"""
from __future__ import annotations

import re

TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# OpenFGA object ids as the gateway accepts them (memory_collection:<id>); document ids follow the same rule,
# since they are one path segment of the public API too (DELETE .../records/{document_id})
COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")
DOCUMENT = COLLECTION
PREFIX = "t_"


class NameError_(ValueError):
    """A tenant, collection or document id that cannot be used (the message names which and why)."""


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT.match(tenant):
        raise NameError_(f"tenant {tenant!r} is not a DNS label ([a-z0-9-], at most 63 characters)")
    return tenant


def check_collection(collection: str) -> str:
    if not isinstance(collection, str) or not COLLECTION.match(collection):
        raise NameError_(f"collection id {collection!r} must match {COLLECTION.pattern}")
    return collection


def check_document(document_id: str) -> str:
    if not isinstance(document_id, str) or not DOCUMENT.match(document_id):
        raise NameError_(f"document_id {document_id!r} must match {DOCUMENT.pattern}")
    return document_id


def qdrant_collection(tenant: str, collection: str) -> str:
    return f"{PREFIX}{check_tenant(tenant)}__{check_collection(collection)}"
