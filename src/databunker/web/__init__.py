"""Server-rendered pages: the privacy portal for data subjects (see ``portal``)."""

from databunker.web.portal import routes

__all__ = ["routes"]
