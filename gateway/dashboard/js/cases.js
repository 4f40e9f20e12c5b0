// 最新诉求: the newest cases from every channel, the channels' health, and one case's detail.

import { gql } from "./api.js";
import { on } from "./state.js";
import { failure, h, meta, replace, statusTag, when } from "./util.js";

const CASES = `query LatestCases($first: Int) {
  channels { key name health { status lagSeconds lastSyncAt } }
  cases(first: $first) {
    totalCount
    nodes { id title status receivedAt channel { key name } street { name } community { name }
      category { name } }
  }
}`;

const CASE = `query CaseDetail($id: ID!) {
  case(id: $id) {
    id title content address status sourceStatus receivedAt updatedAt
    channel { name } category { path } street { name } community { name }
    citizen { name phone }
    timeline { at kind description status }
  }
}`;

let timer = null;

export function caseItem(node, onOpen) {
  return h("button", { class: "item case", type: "button", dataset: { id: node.id }, onclick: () => onOpen(node.id) },
    h("span", { class: "title" }, node.title),
    meta(statusTag(node.status), node.channel?.name, node.street?.name, node.community?.name, node.category?.name,
      when(node.receivedAt)));
}

function channelChip(channel) {
  const lag = channel.health.lagSeconds;
  const title = `最近同步 ${when(channel.health.lastSyncAt)}${lag === null ? "" : `，滞后 ${Math.round(lag)} 秒`}`;
  const word = { UP: "正常", DEGRADED: "降级", DOWN: "中断" }[channel.health.status] || channel.health.status;
  return h("span", { class: `health ${channel.health.status}`, title, dataset: { channel: channel.key } },
    `${channel.name} · ${word}`);
}

export async function renderCases() {
  const body = document.getElementById("cases-body");
  try {
    const { data, errors } = await gql(CASES, { first: 30 });
    replace(document.getElementById("channels"), data.channels.map(channelChip));
    document.getElementById("cases-count").textContent = `共 ${data.cases.totalCount} 件`;
    replace(body, data.cases.nodes.map((node) => caseItem(node, openCase)),
      errors.length ? failure({ message: errors[0].message }) : null);
  } catch (error) {
    replace(body, failure(error));
  }
}

/** Refresh after live events, at most once every two seconds (a burst of events is one refresh). */
function scheduleRefresh() {
  if (timer) return;
  timer = setTimeout(() => { timer = null; renderCases(); }, 2000);
}

export async function openCase(id) {
  const dialog = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  replace(body, "加载中…");
  if (!dialog.open) dialog.showModal();
  try {
    const { data } = await gql(CASE, { id });
    const found = data.case;
    if (!found) { replace(body, "无此诉求或无权查看"); return; }
    replace(body,
      h("h3", {}, found.title), statusTag(found.status), " ", h("small", {}, `渠道状态：${found.sourceStatus}`),
      h("dl", {},
        h("dt", {}, "渠道"), h("dd", {}, found.channel.name),
        h("dt", {}, "分类"), h("dd", {}, (found.category?.path || []).join(" / ") || "—"),
        h("dt", {}, "地点"), h("dd", {}, [found.street?.name, found.community?.name, found.address].filter(Boolean).join(" · ")),
        h("dt", {}, "诉求人"), h("dd", {}, found.citizen ? `${found.citizen.name || "—"} ${found.citizen.phone || ""}` : "—"),
        h("dt", {}, "受理时间"), h("dd", {}, when(found.receivedAt))),
      h("p", {}, found.content),
      h("h4", {}, "经过"),
      h("ol", {}, found.timeline.map((entry) => h("li", {}, `${when(entry.at)} ${entry.description}`))));
  } catch (error) {
    replace(body, failure(error));
  }
}

export function startCases() {
  renderCases();
  on("live", scheduleRefresh);
}
