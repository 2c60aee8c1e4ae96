"""SomaAgentHub hardening baseline: CrossGuard policy pack and the rules behind the promotion gate.

The rules are plain functions (``policies.rules``) over a read-only view of one resource.
Two drivers run the same rule list: ``policies.pack`` wraps them as pulumi-policy policies
for ``pulumi preview --policy-pack policies``, and ``tools.gate`` runs them offline over
``build/<stack>/plan.json``.
"""
