"""SomaAgentHub's audit shipper: the platform's decision points (OPA-Envoy's decision logs, Gatekeeper's and
Argo CD's Kubernetes Events) mapped to audit events (``mapping``) and delivered to the audit topic."""
