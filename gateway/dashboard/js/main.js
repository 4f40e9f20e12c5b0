// The board's entry point: sign-in, then the panels, then the live feed that keeps them current.

import { onSignedOut, signIn, signOut, token, useToken } from "./api.js";
import { startCases } from "./cases.js";
import { LiveFeed } from "./live.js";
import { startMap } from "./map.js";
import { openCluster, startPool } from "./pool.js";
import { emit, hasRole, isStaff, loadReference, state } from "./state.js";
import { startStats } from "./table.js";
import { failure, globalId, h, keyOf, replace, when } from "./util.js";

const $ = (id) => document.getElementById(id);
const FEED_LIMIT = 100;
const EVENT_WORDS = {
  CASE_CREATED: "新诉求", CASE_UPDATED: "诉求更新", CLUSTER_CREATED: "新诉求组", CLUSTER_UPDATED: "诉求组更新",
  CLUSTER_MERGED: "合并", CLUSTER_SPLIT: "拆分", CLUSTER_ESCALATED: "升级", ASSIGNMENT_DISPATCHED: "派单",
  ASSIGNMENT_SIGNED: "签收", ASSIGNMENT_PROGRESSED: "办理进展", ASSIGNMENT_RETURNED: "退单", ASSIGNMENT_RESOLVED: "办结",
  WHISTLE_ISSUED: "吹哨", WHISTLE_REPORTED: "报到", CARD_ISSUED: "督办亮牌", EVALUATION_ADDED: "评价",
  WRITEBACK_DELIVERED: "已回写渠道", WRITEBACK_FAILED: "回写失败",
};

const LIVE_WORDS = { connecting: "连接中", on: "已连接", retry: "重连中", unavailable: "未上线" };

function showLogin(message) {
  $("login").hidden = false;
  $("board").hidden = true;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
  $("username").focus();
}

async function submitLogin(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    await signIn($("username").value.trim(), $("password").value, $("totp").value.trim());
    location.reload();  // a clean board for the new viewer: nothing of the previous one stays in memory
  } catch (error) {
    if (error.code === "mfa_required" || /动态口令|totp/i.test(error.message)) $("login-form").querySelector(".totp").hidden = false;
    $("login-error").textContent = error.message;
  } finally {
    $("login-submit").disabled = false;
  }
}

/** The cluster's global id (the event log names clusters by their key). */
function clusterGlobalId(id) {
  return keyOf(id) === id ? globalId("Cluster", id) : id;
}

function feedItem(event) {
  const word = EVENT_WORDS[event.type] || event.type;
  const title = event.title || "";
  const clusterId = event.clusterId ? clusterGlobalId(event.clusterId) : null;
  return h("li", { dataset: { type: event.type, cursor: event.cursor, cluster: clusterId || "" } },
    h("time", {}, when(event.at)), h("b", {}, word), " ", clusterId
      ? h("button", { type: "button", class: "link", onclick: () => openCluster(clusterId) }, title || "查看")
      : title);
}

function startLive() {
  const list = $("feed-body");
  const badge = $("live");
  const feed = new LiveFeed((event) => {
    list.prepend(feedItem(event));
    while (list.children.length > FEED_LIMIT) list.lastChild.remove();
    emit("live", event);
  }, (status, detail) => {
    badge.className = `live ${status === "on" ? "on" : status === "retry" ? "retry" : "off"}`;
    badge.dataset.state = status;
    badge.textContent = `● 实时：${LIVE_WORDS[status] || status}`;
    badge.title = detail || "";
    if (status === "unavailable") replace(list, h("li", {}, "实时推送（caseEvents）尚未上线"));
  }, () => emit("live", { type: "RESYNC" }));
  window.__minsheng = { feed, state, openCluster };  // for the browser tests and for curious operators
  feed.start();
}

function activateTab() {
  const tab = (location.hash || "#pool").slice(1);
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === tab);
  for (const panel of document.querySelectorAll("[data-panel]")) panel.classList.toggle("active", panel.dataset.panel === tab);
}

async function showBoard() {
  $("login").hidden = true;
  try {
    await loadReference();
  } catch (error) {
    if (!token()) { showLogin(); return; }
    replace($("board"), failure(error));
    $("board").hidden = false;
    return;
  }
  const viewer = state.viewer;
  $("who").textContent = `${viewer.displayName}（${viewer.username}）`;
  $("logout").hidden = false;
  $("board").hidden = false;
  $("tabs").hidden = false;
  document.body.dataset.roles = viewer.roles.join(" ");
  // A resident sees their own appeals across channels and their progress, not the district's boards.
  const resident = hasRole("resident") && !isStaff();
  document.body.classList.toggle("resident", resident);
  if (resident) {
    if (!location.hash) location.hash = "#cases";
    document.querySelector("#cases h2").firstChild.textContent = "我的诉求 ";
  } else {
    startPool();
    startMap();
    startStats();
  }
  activateTab();
  startCases();
  startLive();
}

function boot() {
  $("login-form").addEventListener("submit", submitLogin);
  $("use-bearer").addEventListener("click", () => {
    if ($("bearer").value.trim()) { useToken($("bearer").value); location.reload(); }
  });
  $("logout").addEventListener("click", () => { signOut(); location.reload(); });
  addEventListener("hashchange", activateTab);
  onSignedOut(() => showLogin("登录已失效，请重新登录"));
  if (token()) showBoard(); else showLogin();
}

boot();
