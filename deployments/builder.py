"""`build_app`: the `import_path` of serve_config.yaml.

    applications:
      - name: text2sql
        import_path: deployments.builder:build_app
        args: {models: [...], default_model: ..., limits: {...}}

`args` is validated as an `AppConfig` before anything is built, so a typo fails `serve run` at once
with the field's name, instead of a replica failing later.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve import Application

from deployments.adapters.catalog_deployment import CATALOG_DEPLOYMENT_NAME, AdapterCatalogServer
from deployments.config import AppConfig
from deployments.ingress import INGRESS_DEPLOYMENT_NAME, Ingress, IngressASGI
from deployments.model_server import ModelServer
from text2sql.pipeline.engine import Engine


class ConfigError(ValueError):
    """serve_config.yaml's args are invalid; the message lists every problem with its field path."""


def parse_app_config(args: dict[str, Any] | AppConfig) -> AppConfig:
    if isinstance(args, AppConfig):
        return args
    try:
        config = AppConfig.model_validate(args)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"invalid application args: {problems}") from e
    for reserved in (INGRESS_DEPLOYMENT_NAME, CATALOG_DEPLOYMENT_NAME):
        if reserved in config.model_names:
            raise ConfigError(f"model name {reserved!r} is reserved for the app's own deployments")
    return config


def build_app(args: dict[str, Any]) -> Application:
    """Bind one deployment per model and the ingress that routes to them (Serve passes one dict)."""
    return build_app_with_engines(args, engines={})


def build_app_with_engines(args: dict[str, Any] | AppConfig, *, engines: dict[str, Engine]) -> Application:
    """`build_app`, where a test may hand some model servers their own engine instead of loading weights."""
    config = parse_app_config(args)
    catalog = serve.deployment(AdapterCatalogServer, **AdapterCatalogServer.get_deployment_options()).bind(
        config.base_templates, config.adapters, watch_dir=config.adapter_watch_dir,
        watch_interval_s=config.adapter_watch_interval_s,
    )
    # Replicas ask the ingress which databases to prefill when they start, when there are any to prefill.
    warm_from = INGRESS_DEPLOYMENT_NAME if config.databases and config.ingress.warm_up_databases else None
    model_apps = {
        model.name: serve.deployment(ModelServer, **ModelServer.get_deployment_options(model)).bind(
            model, engines.get(model.name), pipeline=config.pipeline, catalog=catalog, warm_from=warm_from
        )
        for model in config.models
    }
    ingress = serve.deployment(IngressASGI, **Ingress.get_deployment_options(config))
    return ingress.bind(config, model_apps, catalog)
