"""The reference point: a bare Starlette JSON route with two path parameters, served by
uvicorn exactly as ``databunker serve`` serves the vault (same options, same number of
worker processes): ``minimal_app.py PORT [WORKERS]``."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def record(request: Request) -> JSONResponse:
    params = request.path_params
    return JSONResponse({"status": "ok", "mode": params["mode"], "identity": params["identity"]})


app = Starlette(routes=[Route("/v1/user/{mode}/{identity}", record, methods=["GET"])])

if __name__ == "__main__":
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    uvicorn.run(
        "minimal_app:app" if workers > 1 else app,
        workers=workers,
        app_dir=str(Path(__file__).parent),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        server_header=False,
    )
