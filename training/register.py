"""Register a finished adapter into a running app: `POST /v1/adapters` with an admin key from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import requests

ADMIN_KEY_ENV = "T2S_ADMIN_KEY"


class RegistrationError(RuntimeError):
    pass


def register_adapter(
    app_url: str, *, name: str, base: str, path: Path, prompt_template: str, timeout_s: float = 600
) -> dict:
    """The app's answer (the registered adapter). The path must be readable where the app's replicas run: the same
    machine, a shared volume, or an s3:// copy."""
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(ADMIN_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {"name": name, "base": base, "path": str(path), "prompt_template": prompt_template}
    try:
        response = requests.post(f"{app_url.rstrip('/')}/v1/adapters", json=body, headers=headers, timeout=timeout_s)
    except requests.RequestException as e:
        raise RegistrationError(f"cannot reach {app_url}: {e}") from e
    if response.status_code >= 400:
        hint = f" (set {ADMIN_KEY_ENV} to an admin key)" if response.status_code in (401, 403) else ""
        raise RegistrationError(f"{app_url} refused the adapter: {response.status_code} {response.text[:500]}{hint}")
    return response.json()
