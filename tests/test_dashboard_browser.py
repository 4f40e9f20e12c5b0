"""The dashboard at ``/`` in a real browser: Debian's chromium, driven by Playwright (``executable_path``).

A gateway of its own (sync on, its own Redis database) serves the board; each test signs in through the
page's own form and looks at what a person would see. Screenshots go to ``test-artifacts/``.

Parts that need an API another issue delivers (``dispatchView``, the dispatch mutations, ``stats``,
``riskMap``, ``caseEvents``) are skipped, with the reason, while the graph does not have it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright, expect

from resolvers.ids import decode_global_id
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import (
    SCRATCH_DBS,
    Graph,
    SandboxServer,
    gateway_settings,
    redis_db_url,
    start_gateway,
    write_channels_file,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
WALL: ViewportSize = {"width": 1920, "height": 1080}
PHONE: ViewportSize = {"width": 390, "height": 844}


def chromium_path() -> str:
    found = os.environ.get("MINSHENG_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise RuntimeError("chromium not found: run `make test` (it installs Debian's chromium)")
    return found


@pytest.fixture(scope="module")
def board(sandbox: SandboxServer, redis_url: str, e2e_dir: Path) -> Iterator[Graph]:
    """A gateway with sync on, on a database of its own: the tests dispatch and resolve."""
    directory = e2e_dir / "dashboard"
    directory.mkdir(exist_ok=True)
    settings = gateway_settings(redis_db_url(redis_url, SCRATCH_DBS[4]),
                                write_channels_file(directory, sandbox.url, poll_interval=1.0), sandbox.url)
    with start_gateway(settings) as graph:
        yield graph


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(viewport=WALL, locale="zh-CN", timezone_id="Asia/Shanghai")
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    await opened.close()


def has_api(graph: Graph, type_name: str, field: str) -> bool:
    """Whether the graph's ``type_name`` has ``field`` (introspection is on outside production)."""
    answer = graph.query('query($t: String!) { __type(name: $t) { fields { name } } }', {"t": type_name})
    found = (answer.get("data") or {}).get("__type") or {}
    return field in {entry["name"] for entry in found.get("fields") or []}


def needs(graph: Graph, type_name: str, field: str, issue: int) -> None:
    if not has_api(graph, type_name, field):
        pytest.skip(f"{type_name}.{field} is not in the graph yet (issue {issue})")


def needs_login(graph: Graph) -> None:
    answer = httpx.post(f"{graph.base_url}/auth/token", data={"username": "center", "password": "demo"})
    if answer.status_code == 404:
        pytest.skip("POST /auth/token is not served yet (issue 3)")


def token(graph: Graph, username: str) -> str:
    answer = httpx.post(f"{graph.base_url}/auth/token", data={"username": username, "password": "demo"})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def data_as(graph: Graph, username: str, query: str, variables: dict[str, Any] | None = None,
            ) -> dict[str, Any]:
    """The data of ``query`` asked as ``username`` through the public API; fails the test on errors."""
    answer = httpx.post(graph.url, json={"query": query, "variables": variables or {}}, timeout=30,
                        headers={"Authorization": f"Bearer {token(graph, username)}"}).json()
    assert not answer.get("errors"), answer
    return dict(answer["data"])


def total_cases(graph: Graph, username: str) -> int:
    return int(data_as(graph, username, "{ cases(first: 1) { totalCount } }")["cases"]["totalCount"])


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


async def sign_in(context: BrowserContext, graph: Graph, username: str) -> Page:
    page = await context.new_page()
    await page.goto(graph.base_url + "/")
    await page.fill("#username", username)
    await page.fill("#password", "demo")
    await page.click("#login-submit")
    await expect(page.locator("#who")).to_contain_text(username)
    return page


async def test_the_board_fetches_nothing_remote(board: Graph, context: BrowserContext) -> None:
    page = await context.new_page()
    remote: list[str] = []
    page.on("request", lambda request: remote.append(request.url)
            if not request.url.startswith((board.base_url, "data:")) else None)
    await page.goto(board.base_url + "/")
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("h1")).to_contain_text("民声")
    await shot(page, "sign-in")
    assert remote == [], f"the board fetched from elsewhere: {remote}"


async def test_wrong_password_is_refused_on_the_form(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    page = await context.new_page()
    await page.goto(board.base_url + "/")
    await page.fill("#username", "center")
    await page.fill("#password", "not-the-password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).not_to_be_empty()
    await expect(page.locator("#board")).to_be_hidden()


async def test_center_sees_cases_channels_and_the_map(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    page = await sign_in(context, board, "center")
    channels = data_as(board, "center", "{ channels { key } }")["channels"]
    await expect(page.locator("#channels .health")).to_have_count(len(channels))
    await expect(page.locator("#cases-body .item").first).to_be_visible()
    streets = board.data("{ regions { children { name children { name } } } }")["regions"][0]["children"]
    await expect(page.locator("#map-body .street")).to_have_count(len(streets))
    await expect(page.locator("#map-body .tile")).to_have_count(sum(len(s["children"]) for s in streets))
    await expect(page.locator("#map-body")).to_contain_text("玉塘街道")
    await page.locator("#cases-body .item").first.click()
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#detail-body dl")).to_contain_text("渠道")
    await shot(page, "center-wall")


async def test_a_street_officer_sees_only_its_street(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    if total_cases(board, "yutang") == total_cases(board, "center"):
        pytest.skip("the graph does not restrict cases to the viewer's scope yet (issue 3)")
    page = await sign_in(context, board, "yutang")
    await expect(page.locator("#cases-body .item").first).to_be_visible()
    metas = await page.locator("#cases-body .item .meta").all_inner_texts()
    assert metas
    assert all("玉塘街道" in text for text in metas), metas


async def test_on_a_phone_one_panel_at_a_time(board: Graph, browser: Browser) -> None:
    needs_login(board)
    phone = await browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        page = await sign_in(phone, board, "center")
        await expect(page.locator("#tabs")).to_be_visible()
        await expect(page.locator("#pool")).to_be_visible()
        await expect(page.locator("#map")).to_be_hidden()
        await page.click("#tabs a[data-tab=map]")
        await expect(page.locator("#map")).to_be_visible()
        await expect(page.locator("#pool")).to_be_hidden()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
        await shot(page, "phone-map")
    finally:
        await phone.close()


async def test_a_resident_gets_no_dispatch_controls(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    page = await sign_in(context, board, "citizen")
    await expect(page.locator("#cases h2")).to_contain_text("我的诉求")
    await expect(page.locator("#cases-body .item").first).to_be_visible()
    await expect(page.locator("#pool")).to_be_hidden()
    await shot(page, "citizen")
    await expect(page.locator("#pool-body input[type=checkbox]")).to_have_count(0)
    await expect(page.locator("[data-action=dispatch]")).to_have_count(0)


async def pool_cluster(page: Page) -> Any:
    await page.select_option("#pool-filter select[name=status]", "WAITING")
    first = page.locator("#pool-body .cluster").first
    await expect(first).to_be_visible()
    return first


async def test_dispatch_shows_live_in_the_departments_session(board: Graph, browser: Browser) -> None:
    needs_login(board)
    needs(board, "Query", "dispatchView", 4)
    needs(board, "Mutation", "dispatchCluster", 5)
    needs(board, "Subscription", "caseEvents", 6)
    center_context = await browser.new_context(viewport=WALL, locale="zh-CN")
    labor_context = await browser.new_context(viewport=WALL, locale="zh-CN")
    for opened in (center_context, labor_context):
        opened.set_default_timeout(TIMEOUT_MS)
    try:
        labor = await sign_in(labor_context, board, "labor")
        await expect(labor.locator("#live")).to_have_attribute("data-state", "on")
        before = await labor.locator("#pool-body .cluster").count()

        center = await sign_in(center_context, board, "center")
        cluster = await pool_cluster(center)
        cluster_id = await cluster.get_attribute("data-id")
        await cluster.locator("button.open").click()
        await center.select_option("#detail select[name=department]", label="区人力资源局")
        await center.click("#detail [data-action=dispatch]")
        await expect(center.locator("#detail .cluster-detail")).to_have_attribute("data-status", "DISPATCHED")
        await expect(center.locator("#detail dl")).to_contain_text("区人力资源局")
        await shot(center, "center-dispatched")

        # No reload: the department's board learns of it through the subscription.
        await expect(labor.locator(f"#pool-body .cluster[data-id='{cluster_id}']")).to_be_visible()
        await expect(labor.locator("#feed-body li").first).to_be_visible()
        assert await labor.locator("#pool-body .cluster").count() >= before
        await shot(labor, "labor-live")
    finally:
        await center_context.close()
        await labor_context.close()


def pool_ids(graph: Graph, username: str, first: int = 2) -> list[str]:
    """Clusters waiting in the pool, as the API lists them."""
    query = ("query($f: Int) { dispatchView(first: $f, filter: {statuses: [SUBMITTED, ACCEPTED]}) "
             "{ nodes { id } } }")
    return [node["id"] for node in data_as(graph, username, query, {"f": first})["dispatchView"]["nodes"]]


def untouched_pool_ids(graph: Graph, count: int) -> list[str]:
    """Waiting single-case clusters from the back of the pool, which the other tests leave alone.

    The dispatch test takes the pool's first cluster and the merge test merges and splits near the
    front; a cluster another test merged would already have CLUSTER_MERGED events in the feed.
    """
    query = ("query($f: Int) { dispatchView(first: $f, filter: {statuses: [SUBMITTED, ACCEPTED]}) "
             "{ nodes { id caseCount } } }")
    nodes = data_as(graph, "center", query, {"f": 100})["dispatchView"]["nodes"]
    singles = [node["id"] for node in nodes if node["caseCount"] == 1]
    assert len(singles) >= count + 20, "the pool is too small for an untouched pick"
    return singles[-count:]


async def case_count(cluster: Any) -> int:
    return int(await cluster.get_attribute("data-cases"))


async def test_a_dispatcher_merges_and_splits_from_the_pool(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    needs(board, "Mutation", "mergeClusters", 4)
    page = await sign_in(context, board, "center")
    await page.select_option("#pool-filter select[name=status]", "WAITING")
    clusters = page.locator("#pool-body .cluster")
    await expect(clusters.nth(1)).to_be_visible()
    total = await clusters.count()
    picks = (total - 2, total - 1)  # from the end of the page: the dispatch test takes the first
    ids = [await clusters.nth(i).get_attribute("data-id") for i in picks]
    # By id from here on: live reports re-render the pool, so the n-th row may be another cluster by now
    # (the selection itself is kept by id across re-renders).
    rows = [page.locator(f"#pool-body .cluster[data-id='{cluster_id}']") for cluster_id in ids]
    counts = [await case_count(row) for row in rows]
    for row in rows:
        await row.locator("input[type=checkbox]").check()
    await page.click("#merge-bar [data-action=merge]")
    await expect(page.locator("#merge-bar [data-action=merge]")).to_have_count(0)
    # The routing rules may dispatch the merged cluster at once, off this filter: open it by its id.
    found = data_as(board, "center", "query($a: ID!, $b: ID!) { a: cluster(id: $a) { id caseCount } "
                    "b: cluster(id: $b) { id caseCount } }", {"a": ids[0], "b": ids[1]})
    left = [c for c in (found["a"], found["b"]) if c]
    assert len(left) == 1, f"merging {ids} left {found}"
    survivor = left[0]
    # a live report may join the survivor meanwhile: never fewer cases than the two had
    assert survivor["caseCount"] >= sum(counts), (counts, survivor)
    await page.evaluate("id => window.__minsheng.openCluster(id)", survivor["id"])
    await expect(page.locator("#detail .members li")).to_have_count(survivor["caseCount"])
    await expect(page.locator("#detail .reasons")).to_contain_text("人工")
    await shot(page, "center-merged")
    await page.locator("#detail [data-action=split]").last.click()
    await expect(page.locator("#detail .members li")).to_have_count(survivor["caseCount"] - 1)


RECORD_FEED = """() => {
  const feed = window.__minsheng.feed, show = feed.onEvent;
  window.__merged = [];
  feed.onEvent = (event) => {
    if (event.type === "CLUSTER_MERGED") window.__merged.push(event.clusterId);
    show(event);
  };
}"""


async def test_live_feed_resumes_after_a_drop(board: Graph, context: BrowserContext) -> None:
    needs_login(board)
    needs(board, "Subscription", "caseEvents", 6)
    needs(board, "Mutation", "mergeClusters", 4)
    page = await sign_in(context, board, "center")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    await page.evaluate("window.__minsheng.feed.drop()")  # a drop: it reconnects by itself
    await page.wait_for_function("window.__minsheng.feed.reconnects >= 1")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")

    # What the feed hands the page, counted as well as shown: the list keeps the newest 100 rows, and
    # a burst of live reports (the sandbox keeps receiving) may push a row out before it is looked at.
    await page.evaluate(RECORD_FEED)
    merge = "mutation($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id } } }"
    waiting = untouched_pool_ids(board, 4)
    seen = data_as(board, "center", merge, {"ids": waiting[:2]})["mergeClusters"]["cluster"]["id"]
    await page.wait_for_function(f"window.__merged.includes({decode_global_id(seen)[1]!r})")

    await page.evaluate("window.__merged = []")  # from here: what arrives after the pause
    await page.evaluate("window.__minsheng.feed.pause()")  # offline while a change happens
    await expect(page.locator("#live")).to_have_attribute("data-state", "retry")
    missed = data_as(board, "center", merge, {"ids": waiting[2:]})["mergeClusters"]["cluster"]["id"]
    await page.evaluate("window.__minsheng.feed.resume()")  # back online: resumes after its last cursor
    await page.wait_for_function(f"window.__merged.includes({decode_global_id(missed)[1]!r})")
    merges = await page.evaluate("window.__merged")
    assert merges.count(decode_global_id(missed)[1]) == 1, merges
    assert decode_global_id(seen)[1] not in merges, merges  # not replayed after the resume
    await shot(page, "center-live-resumed")
