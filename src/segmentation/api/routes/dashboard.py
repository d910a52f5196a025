"""The analysts' dashboard and the API docs, served from the package with no network.

The pages are shells rendered from `segmentation/web/templates`; their scripts
(`web/static/*.js`) call the HTTP API like any other client (jobs, stored analyses, charts,
recommendations, assign), so the dashboard holds no copy of the service's logic and needs no
access of its own when the API asks for keys. Swagger UI (npm `swagger-ui-dist`) and ReDoc
(npm `redoc`, the standalone bundle) are vendored under `web/static/vendor` (versions in its
README), so `/docs` and `/redoc` render where the service has no internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from segmentation import __version__

__all__ = ["DOCS_URL", "REDOC_URL", "WEB", "install"]

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC_URL = "/static"
VENDOR = f"{STATIC_URL}/vendor"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = f"{DOCS_URL}/oauth2-redirect"

templates = Jinja2Templates(directory=WEB / "templates")
# every page's assets are versioned, so that a new release is never served stale from cache
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str, title: str, **context: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"title": title, "page": template.removesuffix(".html"), **context}
    )


@router.get("/", response_class=HTMLResponse)
async def new_analysis(request: Request) -> HTMLResponse:
    return _page(request, "new.html", "New analysis")


@router.get("/analyses", response_class=HTMLResponse)
async def analyses(request: Request) -> HTMLResponse:
    return _page(request, "analyses.html", "Analyses")


@router.get("/analyses/{analysisId}", response_class=HTMLResponse)
async def analysis(request: Request, analysisId: str) -> HTMLResponse:
    # any id: the page loads the analysis itself, so an unknown or malformed id is reported
    # there in the API's words rather than as a bare JSON error
    return _page(request, "analysis.html", "Analysis", analysis_id=analysisId)


def _docs_router(openapi_url: str, title: str) -> APIRouter:
    docs = APIRouter(include_in_schema=False)

    @docs.get(DOCS_URL, response_class=HTMLResponse)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
            # the online validator badge would call validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )

    @docs.get(OAUTH2_REDIRECT_URL, response_class=HTMLResponse)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @docs.get(REDOC_URL, response_class=HTMLResponse)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.svg",
            with_google_fonts=False,
        )

    return docs


def install(app: FastAPI) -> None:
    """The dashboard pages, their static files, and /docs and /redoc on vendored assets.

    The app is created with `docs_url=None, redoc_url=None`, whose defaults load from a CDN."""
    app.include_router(router)
    if app.openapi_url:
        app.include_router(_docs_router(app.openapi_url, app.title))
    app.mount(STATIC_URL, StaticFiles(directory=WEB / "static"), name="static")
