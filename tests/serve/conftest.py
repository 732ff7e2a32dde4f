"""A real Ray Serve instance, started in-process once per test module, on a free HTTP port.

The fixtures (`ray_serve`, `embedded_model_path`) live in `tests/conftest.py`, shared with
`tests/browser/`; the helpers are re-exported here for the modules that import them from this file.
"""

from tests.conftest import EMBEDDED_DEFAULT, free_port, started_serve_run, stop_serve_run, wait_until_healthy

__all__ = ["EMBEDDED_DEFAULT", "free_port", "started_serve_run", "stop_serve_run", "wait_until_healthy"]
