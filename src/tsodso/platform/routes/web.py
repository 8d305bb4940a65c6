"""The web page: one static page (``/``) and its script, served by the service, plus the
Plotly library from the installed ``plotly`` package (no network at run time)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.exists() else None


def mount(app: FastAPI) -> None:
    """Serve the page, its script and Plotly."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name == "plotly.min.js":
            path = _plotly_js()
            if path is None:
                return PlainTextResponse("charts need the plot extra", status_code=404)
            return FileResponse(path, media_type="text/javascript")
        allowed = {p.name: p for p in WEB_DIR.iterdir() if p.suffix in (".js", ".css")}
        if name not in allowed:
            return PlainTextResponse("not found", status_code=404)
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(allowed[name], media_type=media)
