"""Deployment: the local stack, the run script, benchmarks, Docker and Kubernetes files."""
