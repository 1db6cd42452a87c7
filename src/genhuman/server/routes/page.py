"""The web page (``/``, ``/static``) and the offline API docs (``/docs``, ``/docs-assets``).

The page gets a session cookie on its first visit: the jobs it makes belong to that
session (genhuman.server.auth)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from genhuman.server.auth import SESSION_COOKIE, new_session_id, session_id

STATIC = Path(str(files("genhuman.server") / "static"))
SESSION_DAYS = 30

router = APIRouter(include_in_schema=False)


def page_with_session(request: Request, name: str) -> FileResponse:
    """A static page, with a session cookie on the browser's first visit."""
    page = FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
    if session_id(request) is None:
        page.set_cookie(SESSION_COOKIE, new_session_id(), max_age=SESSION_DAYS * 86400, httponly=True,
                        samesite="strict", path="/")
    return page


@router.get("/")
def index(request: Request) -> FileResponse:
    return page_with_session(request, "index.html")


def mount(app: FastAPI) -> None:
    """The page's router and static files, and the docs viewer from the swagger-ui-bundle
    package (FastAPI's default /docs loads it from a CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the offline /docs page needs the app's OpenAPI schema (openapi_url)")
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return docs_page(openapi_url)


def docs_page(openapi_url: str) -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url=openapi_url, title="GenHuman API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon-32x32.png")
