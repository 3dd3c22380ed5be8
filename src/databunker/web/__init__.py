"""Server-rendered pages: the privacy portal for data subjects (``portal``) and the admin
portal for DPOs (``admin``)."""

from databunker.web import admin, portal

routes = [*portal.routes, *admin.routes]

__all__ = ["routes"]
