"""An Open311 GeoReport v2 endpoint (城市服务, sandbox stand-in), as the public spec has it
(http://wiki.open311.org/GeoReport_v2). Contract: ``openapi.yaml``.

Every resource answers in ``.json`` or ``.xml``; ``jurisdiction_id`` is optional (this endpoint serves one
jurisdiction) and a different one is 404:

* ``GET /discovery.{format}`` — service discovery;
* ``GET /services.{format}`` — the service list; ``GET /services/{service_code}.{format}`` — the
  definition of a service with ``metadata: true``;
* ``GET /requests.{format}`` — ``service_request_id`` (comma-separated; overrides every other filter),
  ``service_code`` (comma-separated), ``start_date``/``end_date`` (on requested_datetime, W3C, inclusive,
  at most 90 days apart; default the last 90 days), ``status`` (open, closed; comma-separated). At most
  ``max_results`` (1,000) requests per answer, the most recently requested first;
* ``GET /requests/{service_request_id}.{format}`` — one request (as a one-element list);
* ``POST /requests.{format}`` — create (form fields; ``api_key`` required): ``service_code``, a location
  (``lat`` + ``long``, ``address_string`` or ``address_id``), ``attribute[code]``, ``description`` …;
  realtime: answers the ``service_request_id`` at once (no tokens);
* ``POST /servicerequestupdates.{format}`` — the servicerequestupdates extension (mySociety's): ``api_key``,
  ``service_request_id``, ``update_id`` (a repeated one changes nothing and answers ``duplicate: true``),
  ``status`` (OPEN/CLOSED, any case), ``description``, ``account_id``; ``GET`` lists updates by
  ``start_date``/``end_date``. Off with ``create_app(..., updates=False)``: then the routes do not exist.

Errors are GeoReport errors, ``[{"code": 400, "description": "…"}]`` (or ``<errors>``), with 400, 403
(api_key) or 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.open311.book import RequestBook, UpdateRefused
from sandbox.open311.formats import FORMATS, answer, error
from sandbox.open311.services import Catalogue
from sandbox.world import Ticket

__all__ = ["API_KEY", "JURISDICTION_ID", "MAX_RESULTS", "MAX_SPAN", "create_app"]

API_KEY = "sandbox-open311-key"
JURISDICTION_ID = "guangming.sz.gov.cn"
MAX_RESULTS = 1000
MAX_SPAN = timedelta(days=90)

Handler = Callable[[Request, str], Awaitable[Response]]


class Refused(Exception):
    def __init__(self, status: int, description: str) -> None:
        self.status, self.description = status, description
        super().__init__(description)


def _w3c(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refused(400, f"{name} must be a W3C datetime, e.g. 2026-11-20T09:30:00+08:00") from None
    if moment.tzinfo is None:
        raise Refused(400, f"{name} must carry a time zone (Z or an offset)")
    return moment.astimezone(UTC)


def _window(params: dict[str, str]) -> tuple[datetime, datetime]:
    start = _w3c(params["start_date"], "start_date") if params.get("start_date") else None
    end = _w3c(params["end_date"], "end_date") if params.get("end_date") else None
    if start is None:
        end = end or datetime.now(UTC)
        start = end - MAX_SPAN
    elif end is None:
        end = min(start + MAX_SPAN, datetime.now(UTC))
    if end < start:
        raise Refused(400, "end_date must not be before start_date")
    if end - start > MAX_SPAN:
        raise Refused(400, "start_date and end_date may not span more than 90 days")
    return start, end


def _split(value: str | None) -> set[str] | None:
    parts = {part.strip() for part in (value or "").split(",") if part.strip()}
    return parts or None


def _location(form: FormData) -> tuple[str | None, float | None, float | None]:
    address = str(form.get("address_string") or form.get("address_id") or "").strip() or None
    try:
        lat = float(str(form["lat"])) if form.get("lat") else None
        lng = float(str(form["long"])) if form.get("long") else None
    except ValueError:
        raise Refused(400, "lat and long must be numbers") from None
    if (lat is None) != (lng is None) or (
            lat is not None and lng is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180)):
        raise Refused(400, "lat and long must be given together, as WGS84 degrees")
    if address is None and lat is None:
        raise Refused(400, "a location is required: lat and long, address_string or address_id")
    return address, lat, lng


class GeoReport:
    """The route handlers over one :class:`RequestBook`."""

    def __init__(self, book: RequestBook, api_key: str, jurisdiction_id: str, max_results: int) -> None:
        self.book = book
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.max_results = max_results

    def route(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Format, jurisdiction and GeoReport errors around ``handler``."""

        async def run(request: Request) -> Response:
            fmt = request.path_params["format"]
            if fmt not in FORMATS:
                return error("json", 404, f"format {fmt!r} is not supported (json, xml)")
            given = request.query_params.get("jurisdiction_id")
            if request.method == "POST":
                given = str((await request.form()).get("jurisdiction_id") or "") or given
            if given and given != self.jurisdiction_id:
                return error(fmt, 404, f"jurisdiction_id {given} not found")
            try:
                return await handler(request, fmt)
            except Refused as refused:
                return error(fmt, refused.status, refused.description)

        return run

    async def _keyed_form(self, request: Request) -> FormData:
        form = await request.form()
        if form.get("api_key") != self.api_key:
            raise Refused(403, "api_key is missing or invalid")
        return form

    async def discovery(self, request: Request, fmt: str) -> Response:
        base = str(request.url).rsplit("/discovery.", 1)[0]
        payload = {"changeset": "2026-11-01T00:00:00+08:00", "contact": "光明区政务服务数据管理局 12345",
                   "key_service": f"{base}/ (api_key: ask the 政务服务数据管理局)",
                   "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                                  "changeset": "2026-11-01T00:00:00+08:00", "type": "production",
                                  "formats": ["application/json", "text/xml"]}]}
        return answer(fmt, "discovery", None, payload)

    async def services(self, request: Request, fmt: str) -> Response:
        return answer(fmt, "services", "service", [s.listing() for s in self.book.catalogue.all()])

    async def definition(self, request: Request, fmt: str) -> Response:
        code = request.path_params["service_code"]
        service = self.book.catalogue.by_code.get(code)
        if service is None or not service.metadata:
            raise Refused(404, f"no service definition for service_code {code}")
        return answer(fmt, "service_definition", None, service.definition())

    async def requests(self, request: Request, fmt: str) -> Response:
        params = dict(request.query_params)
        ids = _split(params.get("service_request_id"))
        if ids is not None:
            found = [r for i in sorted(ids) if (r := self.book.get(i)) is not None]
        else:
            statuses = _split(params.get("status"))
            if statuses is not None and not statuses <= {"open", "closed"}:
                raise Refused(400, "status must be open or closed (comma-separated)")
            start, end = _window(params)
            found = self.book.search(start, end, _split(params.get("service_code")), statuses)
        rows = [r.render() for r in found[:self.max_results]]
        return answer(fmt, "service_requests", "request", rows)

    async def one(self, request: Request, fmt: str) -> Response:
        found = self.book.get(request.path_params["service_request_id"])
        if found is None:
            raise Refused(404, f"service_request_id {request.path_params['service_request_id']} not found")
        return answer(fmt, "service_requests", "request", [found.render()])

    async def create(self, request: Request, fmt: str) -> Response:
        form = await self._keyed_form(request)
        service = self.book.catalogue.by_code.get(str(form.get("service_code") or ""))
        if service is None:
            raise Refused(400 if not form.get("service_code") else 404, "service_code is missing or unknown")
        missing = [a.code for a in service.attributes if a.required and not form.get(f"attribute[{a.code}]")]
        if missing:
            raise Refused(400, f"required attribute missing: {', '.join(missing)}")
        description = str(form.get("description") or "")
        if len(description) > 4000:
            raise Refused(400, "description may not exceed 4,000 characters")
        address, lat, lng = _location(form)
        media_url = str(form.get("media_url") or "") or None
        created = self.book.create(service, description, address, lat, lng, media_url)
        row = {"service_request_id": created.service_request_id, "service_notice": service.notice,
               "account_id": str(form.get("account_id") or "") or None}
        return answer(fmt, "service_requests", "request", [row])

    async def post_update(self, request: Request, fmt: str) -> Response:
        form = await self._keyed_form(request)
        fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        request_id, update_id = fields.get("service_request_id", ""), fields.get("update_id", "")
        status = fields.get("status", "").lower()
        if not request_id or not update_id or status not in ("open", "closed"):
            raise Refused(400, "service_request_id, update_id and status (OPEN or CLOSED) are required")
        try:
            duplicate, update = self.book.update(request_id, update_id, status, fields)
        except UpdateRefused as refused:
            raise Refused(refused.status, refused.description) from None
        return answer(fmt, "service_request_updates", "request_update", [{**update, "duplicate": duplicate}])

    async def list_updates(self, request: Request, fmt: str) -> Response:
        start, end = _window(dict(request.query_params))
        return answer(fmt, "service_request_updates", "request_update", self.book.updates_between(start, end))


def create_app(tickets: list[Ticket], *, seed: int = 7, api_key: str = API_KEY,
               jurisdiction_id: str = JURISDICTION_ID, max_results: int = MAX_RESULTS,
               updates: bool = True) -> ASGIApp:
    """The GeoReport v2 endpoint's ASGI app over ``tickets`` (the world's ``open311`` tickets).

    Args:
        max_results: the most requests one ``GET /requests`` answers with.
        updates: offer the servicerequestupdates extension.
    """
    sandbox = ChannelSandbox("open311", tickets, seed=seed)
    book = RequestBook(sandbox, Catalogue(t.category_path for t in tickets))
    api = GeoReport(book, api_key, jurisdiction_id, max_results)
    routes: list[BaseRoute] = [
        Route("/discovery.{format}", api.route(api.discovery), methods=["GET"]),
        Route("/services.{format}", api.route(api.services), methods=["GET"]),
        Route("/services/{service_code}.{format}", api.route(api.definition), methods=["GET"]),
        Route("/requests.{format}", api.route(api.requests), methods=["GET"]),
        Route("/requests.{format}", api.route(api.create), methods=["POST"]),
        Route("/requests/{service_request_id}.{format}", api.route(api.one), methods=["GET"]),
    ]
    if updates:
        routes += [Route("/servicerequestupdates.{format}", api.route(api.post_update), methods=["POST"]),
                   Route("/servicerequestupdates.{format}", api.route(api.list_updates), methods=["GET"])]
    return sandbox.build(routes)
