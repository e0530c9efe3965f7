"""The web UI: server-rendered pages (Jinja2), hand-written CSS and ES modules, the step-graph layout.

Served by the same Starlette app as the REST API; `ui_routes(settings)` is mounted at
the base path after the API. Pages read through `web.ui.data`; every action in the
browser goes through the REST API, which enforces permissions.
"""

from web.ui.routes import ui_routes

__all__ = ["ui_routes"]
