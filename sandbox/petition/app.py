"""The petition system's web service (信访信息系统 PetitionService, sandbox stand-in). Contract:
``PetitionService.wsdl``.

SOAP 1.1, document/literal, one endpoint; the ``SOAPAction`` header names the operation
(``"urn:xinfang:petition:v1/<Operation>"``) and must agree with the body:

* ``POST /ws/PetitionService`` — ``QueryPetitions`` (modifiedFrom, modifiedTo as Beijing ``yyyyMMddHHmmss``,
  both inclusive; pageNo from 1; pageSize 1–50 → ``totalCount`` and ``items``, by (更新时间, 信访件编号)),
  ``GetPetitions`` (≤ 30 ``ids`` → ``items`` with their 办理记录, and ``notFound``), ``SubmitFeedback``
  (petitionNo, serialNo — the idempotency key —, action 受理/转办/答复/办结/退回, content, operator,
  optional department);
* ``GET /ws/PetitionService?wsdl`` — the WSDL, with the address of the server it was asked from;
* ``GET /__sandbox/operations`` — request counts per SOAP operation (every operation shares one route, so
  the kit's per-route stats cannot tell them apart).

Every request carries a WS-Security UsernameToken with PasswordDigest (see :mod:`sandbox.petition.security`).
Faults are SOAP 1.1 faults on HTTP 500: ``wsse:FailedAuthentication`` (credentials), ``soap:Client`` (the
request is wrong), ``soap:Server`` (the service failed), ``soap:VersionMismatch`` (a SOAP 1.2 envelope).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.kit import ChannelSandbox
from sandbox.petition.petitions import ACTIONS, PetitionBook, parse_beijing
from sandbox.petition.security import UsernameTokenGate
from sandbox.petition.soap import (
    XF_NS,
    SoapFault,
    answer,
    child_text,
    fault_response,
    parse_envelope,
    sub,
    xf,
)
from sandbox.world import Ticket

__all__ = ["BATCH_LIMIT", "MAX_PAGE_SIZE", "PASSWORD", "SOAP_ACTION_PREFIX", "USERNAME", "WSDL_PATH",
           "create_app"]

log = logging.getLogger(__name__)

USERNAME = "minsheng"
PASSWORD = "sandbox-petition-pass"
MAX_PAGE_SIZE = 50
BATCH_LIMIT = 30
SOAP_ACTION_PREFIX = f"{XF_NS}/"
WSDL_PATH = Path(__file__).with_name("PetitionService.wsdl")
WSDL_ADDRESS = "http://localhost:8080/ws/PetitionService"  # the placeholder in the file
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

Operation = Callable[[Element], Awaitable[Element]]


def _beijing_param(operation: Element, name: str, default: datetime) -> datetime:
    text = child_text(operation, name)
    if text is None:
        return default
    try:
        return parse_beijing(text)
    except ValueError:
        raise SoapFault("soap:Client", f"{name}须为yyyyMMddHHmmss（北京时间）：{text}") from None


def _int_param(operation: Element, name: str, default: int, low: int, high: int) -> int:
    text = child_text(operation, name)
    try:
        value = default if text is None else int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SoapFault("soap:Client", f"{name}取值须在{low}-{high}之间")
    return value


class PetitionService:
    """The SOAP endpoint: envelope, WS-Security, SOAPAction, then the operation."""

    def __init__(self, book: PetitionBook, gate: UsernameTokenGate) -> None:
        self.book = book
        self.gate = gate
        self.operations: Counter[str] = Counter()
        self.handlers: dict[str, Operation] = {"QueryPetitions": self.query, "GetPetitions": self.get,
                                               "SubmitFeedback": self.feedback}

    async def endpoint(self, request: Request) -> Response:
        try:
            header, operation = parse_envelope(await request.body())
            self.gate.check(header)
            name = self._operation(request, operation)
            self.operations[name] += 1
            return answer(await self.handlers[name](operation))
        except SoapFault as fault:
            return fault_response(fault)
        except Exception:  # the service's own failure: a soap:Server fault, never a stack trace
            log.exception("petition sandbox: operation failed")
            return fault_response(SoapFault("soap:Server", "服务器内部错误，请稍后重试"))

    def _operation(self, request: Request, operation: Element) -> str:
        action = request.headers.get("SOAPAction")
        if action is None:
            raise SoapFault("soap:Client", "缺少SOAPAction请求头")
        name = operation.tag.rpartition("}")[2]
        if operation.tag != xf(name) or name not in self.handlers:
            raise SoapFault("soap:Client", f"未知操作：{name}")
        if re.split(r"[/#:]", action.strip().strip('"'))[-1] != name:
            raise SoapFault("soap:Client", f"SOAPAction（{action}）与请求体操作（{name}）不一致")
        return name

    async def query(self, operation: Element) -> Element:
        start = _beijing_param(operation, "modifiedFrom", EARLIEST)
        end = _beijing_param(operation, "modifiedTo", datetime.now(UTC))
        page_no = _int_param(operation, "pageNo", 1, 1, 1_000_000)
        size = _int_param(operation, "pageSize", 20, 1, MAX_PAGE_SIZE)
        if end < start:
            raise SoapFault("soap:Client", "modifiedTo不能早于modifiedFrom")
        total, items = self.book.query(start, end, page_no, size)
        response = ET.Element(xf("QueryPetitionsResponse"))
        sub(response, "totalCount", str(total))
        sub(response, "pageNo", str(page_no))
        sub(response, "pageSize", str(size))
        sub(response, "items").extend(items)
        return response

    async def get(self, operation: Element) -> Element:
        ids = [(e.text or "").strip() for e in operation.findall(f"{xf('ids')}/{xf('id')}")]
        if not ids or not all(ids):
            raise SoapFault("soap:Client", "ids须为非空的信访件编号列表")
        if len(ids) > BATCH_LIMIT:
            raise SoapFault("soap:Client", f"单次最多查询{BATCH_LIMIT}件，本次{len(ids)}件")
        found, missing = self.book.get(ids)
        response = ET.Element(xf("GetPetitionsResponse"))
        sub(response, "items").extend(found)
        not_found = sub(response, "notFound")
        for petition_no in missing:
            sub(not_found, "id", petition_no)
        return response

    async def feedback(self, operation: Element) -> Element:
        fields = {name: child_text(operation, name) for name in
                  ("petitionNo", "serialNo", "action", "content", "operator", "department")}
        petition_no, serial, action = fields["petitionNo"], fields["serialNo"], fields["action"]
        if not petition_no or not serial or not fields["operator"] or action not in ACTIONS:
            raise SoapFault("soap:Client",
                            "petitionNo、serialNo、operator必填，action须为受理/转办/答复/办结/退回")
        entry = {"内容": fields["content"] or "", "操作人": fields["operator"] or "",
                 "承办单位": fields["department"] or ""}
        duplicate, status = self.book.feedback(petition_no, serial, action, entry)
        response = ET.Element(xf("SubmitFeedbackResponse"))
        sub(response, "resultCode", "0")
        sub(response, "message", "重复提交，已忽略" if duplicate else "成功")
        sub(response, "duplicate", "true" if duplicate else "false")
        sub(response, "status", status)
        return response

    async def wsdl(self, request: Request) -> Response:
        if "wsdl" not in {key.lower() for key in request.query_params}:
            return PlainTextResponse("PetitionService：SOAP 1.1服务，请以POST提交请求；服务描述见 ?wsdl")
        address = str(request.url.replace(query=""))
        text = WSDL_PATH.read_text(encoding="utf-8").replace(WSDL_ADDRESS, address)
        return Response(text, media_type="text/xml; charset=utf-8")

    async def operation_counts(self, request: Request) -> Response:
        return JSONResponse({"operations": dict(self.operations)})


def create_app(tickets: list[Ticket], *, seed: int = 7, username: str = USERNAME,
               password: str = PASSWORD) -> ASGIApp:
    """The petition service's ASGI app over ``tickets`` (the world's ``petition`` tickets)."""
    sandbox = ChannelSandbox("petition", tickets, seed=seed)
    service = PetitionService(PetitionBook(sandbox), UsernameTokenGate({username: password}))
    routes: list[BaseRoute] = [
        Route("/ws/PetitionService", service.endpoint, methods=["POST"]),
        Route("/ws/PetitionService", service.wsdl, methods=["GET"]),
        Route("/__sandbox/operations", service.operation_counts, methods=["GET"]),
    ]
    return sandbox.build(routes)
