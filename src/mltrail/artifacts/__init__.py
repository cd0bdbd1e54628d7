"""Artifact repositories: where a run's files live (local directory, S3, proxied through a server...)."""
