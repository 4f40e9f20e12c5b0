// 民声云 · 派单池: clusters (one per real-world incident, cases from every channel) waiting for dispatch and
// in progress, filtered by street, category, channel, status and overdue. A cluster opens to its cases,
// merge reasons, suggested department, deadline and history; the actions come from actions.js.

import { gql } from "./api.js";
import { clusterActions, mergeBar, splitButton } from "./actions.js";
import { canDispatch, on, state } from "./state.js";
import { failure, h, meta, replace, statusTag, unavailable, when } from "./util.js";

const WAITING = ["SUBMITTED", "ACCEPTED", "RETURNED"];
const STATUS_CHOICES = {
  "": [...WAITING, "DISPATCHED", "SIGNED", "IN_PROGRESS"], WAITING, RESOLVED: ["RESOLVED", "CLOSED"],
};

const POOL = `query Pool($filter: ClusterFilter, $first: Int) {
  dispatchView(filter: $filter, first: $first) {
    totalCount
    nodes { id title status caseCount overdue deadline lastReceivedAt risk channels
      region { name } category { name } suggestedDepartment { name } assignment { department { name } } }
  }
}`;

const CLUSTER = `query Cluster($id: ID!) {
  cluster(id: $id) {
    id title status caseCount overdue deadline risk manual firstReceivedAt lastReceivedAt channels
    region { name } category { path }
    mergeReasons { caseId matchedCaseId score by at signals { text place category resident days } }
    cases { id title status receivedAt channel { name } content timeline { at description } }
  }
}`;

// The dispatch side of a cluster (issue 5's API): asked separately so the pool works without it.
const DISPATCH = `query ClusterDispatch($id: ID!) {
  clusterDispatch(id: $id) {
    status deadline overdue nearDue card resolution returns escalated
    suggestedDepartment { reason tier department { id name } }
    assignment { id status deadline signDeadline department { id name } }
    progress { at actor kind message }
  }
}`;

let timer = null;
let selected = new Set();

export function poolFilter() {
  const form = document.getElementById("pool-filter");
  const value = (name) => form.elements[name].value;
  const filter = { statuses: STATUS_CHOICES[value("status")] || [value("status")] };
  if (value("street")) filter.regionId = value("street");
  if (value("category")) filter.categoryId = value("category");
  if (value("channel")) filter.channels = [value("channel")];
  if (form.elements.overdue.checked) filter.overdue = true;
  return filter;
}

function fillFilters() {
  const form = document.getElementById("pool-filter");
  const options = (select, items, label) => select.append(...items.map((item) => h("option", { value: item.id ?? item.key }, label(item))));
  options(form.elements.street, state.streets.flatMap((street) => [street, ...street.children]),
    (region) => (region.level === "COMMUNITY" ? `　${region.name}` : region.name));
  options(form.elements.category, state.categories, (category) => category.name);
  options(form.elements.channel, state.channels, (channel) => channel.name);
  form.addEventListener("change", () => renderPool());
}

function channelNames(keys) {
  return (keys || []).map((key) => state.channels.find((channel) => channel.key === key)?.name || key).join("、");
}

function clusterItem(node) {
  const pick = canDispatch()
    ? h("input", { type: "checkbox", "aria-label": "选择以合并", checked: selected.has(node.id), onclick: (event) => {
      event.stopPropagation();
      if (event.target.checked) selected.add(node.id); else selected.delete(node.id);
      mergeBar(selected, renderPool);
    } })
    : null;
  return h("div", { class: "item cluster", dataset: { id: node.id, status: node.status, cases: node.caseCount } },
    h("span", { class: "title" }, pick, " ",
      h("button", { type: "button", class: "link open", onclick: () => openCluster(node.id) }, node.title)),
    meta(statusTag(node.status), node.overdue ? h("span", { class: "tag overdue" }, "超期") : null,
      `${node.caseCount} 件`, channelNames(node.channels), node.region?.name, node.category?.name,
      node.assignment?.department ? `承办：${node.assignment.department.name}`
        : node.suggestedDepartment ? `建议：${node.suggestedDepartment.name}` : null,
      node.deadline ? `时限 ${when(node.deadline)}` : null));
}

export async function renderPool() {
  const body = document.getElementById("pool-body");
  try {
    const { data, errors } = await gql(POOL, { filter: poolFilter(), first: 50 });
    document.getElementById("pool-count").textContent = `共 ${data.dispatchView.totalCount} 组`;
    replace(body, data.dispatchView.nodes.map(clusterItem),
      errors.length ? failure({ message: errors[0].message }) : null);
  } catch (error) {
    replace(body, error.missingApi ? unavailable("民声云派单池（dispatchView）") : failure(error));
  }
}

/** The cluster's dispatch record, or null when the graph has none (yet) or the viewer may not see it. */
async function loadDispatch(id) {
  try {
    return (await gql(DISPATCH, { id })).data.clusterDispatch;
  } catch (error) {
    if (error.missingApi) return null;
    throw error;
  }
}

function reasonText(reason) {
  if (!reason.matchedCaseId && reason.by === "auto") return `首报（建立本组），${when(reason.at)}`;
  const signals = Object.entries(reason.signals || {}).filter(([, value]) => value !== null && value !== undefined)
    .map(([name, value]) => `${SIGNALS[name] || name} ${Number(value).toFixed(2)}`);
  const who = reason.by === "auto" ? "系统合并" : `人工（${reason.by.replace(/^manual:/, "")}）`;
  return `${who}，得分 ${Number(reason.score).toFixed(2)}${signals.length ? `：${signals.join("，")}` : ""}`;
}

const SIGNALS = { text: "文本", place: "地点", category: "分类", resident: "同一居民", days: "相隔天数" };

function history(cluster, dispatch) {
  const entries = [
    ...cluster.cases.flatMap((member) => member.timeline.map((entry) => ({ at: entry.at, text: `${member.channel.name}：${entry.description}` }))),
    ...(dispatch?.progress || []).map((note) => ({ at: note.at, text: `${note.actor}：${note.message}` })),
  ].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  return h("ol", { class: "history" }, entries.map((entry) => h("li", {}, `${when(entry.at)} ${entry.text}`)));
}

export async function openCluster(id) {
  const dialog = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  replace(body, "加载中…");
  if (!dialog.open) dialog.showModal();
  try {
    const [{ data }, dispatch] = await Promise.all([gql(CLUSTER, { id }), loadDispatch(id)]);
    const cluster = data.cluster;
    if (!cluster) { replace(body, "无此诉求组或无权查看"); return; }
    const refresh = () => { openCluster(id); renderPool(); };
    const suggestion = dispatch?.suggestedDepartment;
    const assignment = dispatch?.assignment;
    replace(body, h("div", { class: "cluster-detail", dataset: { id: cluster.id, status: dispatch?.status || cluster.status } },
      h("h3", {}, cluster.title), statusTag(dispatch?.status || cluster.status),
      (dispatch?.overdue ?? cluster.overdue) ? h("span", { class: "tag overdue" }, "超期") : null,
      h("dl", {},
        h("dt", {}, "渠道"), h("dd", {}, channelNames(cluster.channels)),
        h("dt", {}, "分类"), h("dd", {}, (cluster.category?.path || []).join(" / ") || "—"),
        h("dt", {}, "地点"), h("dd", {}, cluster.region?.name || "—"),
        h("dt", {}, "建议部门"), h("dd", {}, dispatch === null ? "（派单接口未上线）"
          : suggestion?.department ? `${suggestion.department.name}${suggestion.reason ? `（${suggestion.reason}）` : ""}` : "—"),
        h("dt", {}, "承办部门"), h("dd", {}, assignment?.department?.name || "—"),
        h("dt", {}, "办理时限"), h("dd", {}, when(dispatch?.deadline || cluster.deadline)),
        h("dt", {}, "首报 / 最近"), h("dd", {}, `${when(cluster.firstReceivedAt)} / ${when(cluster.lastReceivedAt)}`),
        h("dt", {}, "风险"), h("dd", {}, Number(cluster.risk).toFixed(2))),
      clusterActions({ ...cluster, status: dispatch?.status || cluster.status, assignment }, refresh),
      h("h4", {}, cluster.cases.length < cluster.caseCount  // a mass incident: its oldest reports you may see
        ? `各渠道诉求（共 ${cluster.caseCount} 件，显示 ${cluster.cases.length} 件）` : `各渠道诉求（${cluster.caseCount}）`),
      h("ol", { class: "members" }, cluster.cases.map((member) => memberItem(member, cluster, refresh))),
      h("h4", {}, "合并依据"),
      h("ul", { class: "reasons" }, cluster.mergeReasons.map((reason) => h("li", {}, reasonText(reason)))),
      h("h4", {}, "经过"), history(cluster, dispatch)));
  } catch (error) {
    replace(body, failure(error));
  }
}

function memberItem(member, cluster, refresh) {
  return h("li", { dataset: { case: member.id } }, statusTag(member.status), " ", member.channel.name, " · ",
    h("b", {}, member.title), " ", h("small", {}, when(member.receivedAt)), h("br"),
    h("small", {}, member.content), splitButton(member, cluster, refresh));
}

export function startPool() {
  fillFilters();
  renderPool();
  on("region", (id) => {
    document.getElementById("pool-filter").elements.street.value = id;
    renderPool();
    location.hash = "#pool";
  });
  on("live", () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; renderPool(); }, 1000);
  });
  on("reset", () => { selected = new Set(); });
}
