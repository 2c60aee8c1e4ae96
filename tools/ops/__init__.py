"""Phase 5 tooling: what a release is, the evidence a stage leaves, promotion and upkeep (docs/runbooks/ops.md)."""
