"""Routes of the consent API."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
