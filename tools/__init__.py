"""Offline tooling: render a stack without engine or cluster, and run the promotion gate."""
