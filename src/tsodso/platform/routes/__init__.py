"""The service's routes, one module per resource group; :func:`register` mounts them."""

from __future__ import annotations

from fastapi import FastAPI

from tsodso.platform.routes import auth, offers, operations, results, sessions, web

__all__ = ["register"]


def register(app: FastAPI) -> None:
    """Mount every router and the web page on ``app``."""
    for module in (auth, sessions, offers, results, operations):
        app.include_router(module.router)
    web.mount(app)
