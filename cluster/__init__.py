"""Tooling for running the app on a cluster: KubeRay manifests' generated parts (rayservice_config)."""
