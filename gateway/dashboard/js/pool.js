// 民声云 · 派单池: clusters (one per real-world incident, cases from every channel) waiting for dispatch and
// in progress, filtered by street, category, channel, status and overdue. A cluster opens to its cases,
// merge reasons, suggested department, deadline and history; the actions come from actions.js.

import { gql } from "./api.js";
import { clusterActions, mergeBar, splitButton } from "./actions.js";
import { canDispatch, on, state } from "./state.js";
import { failure, h, meta, replace, statusTag, unavailable, when } from "./util.js";

const OPEN = ["ACCEPTED", "DISPATCHED", "SIGNED", "IN_PROGRESS"];

const POOL = `query Pool($filter: ClusterFilter, $first: Int) {
  dispatchView(filter: $filter, first: $first) {
    totalCount
    nodes { id title status caseCount overdue deadline lastReceivedAt risk
      channels { key name } region { name } category { name }
      suggestedDepartment { id name } }
  }
}`;

const CLUSTER = `query Cluster($id: ID!) {
  node(id: $id) {
    ... on Cluster {
      id title status caseCount overdue deadline risk firstReceivedAt lastReceivedAt
      region { name } category { path } channels { name }
      suggestedDepartment { id name }
      mergeReasons { caseId reason score }
      cases { id title status receivedAt channel { name } content }
    }
  }
}`;

let timer = null;
let selected = new Set();

export function poolFilter() {
  const form = document.getElementById("pool-filter");
  const value = (name) => form.elements[name].value;
  const filter = { statuses: value("status") ? [value("status")] : OPEN };
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

function clusterItem(node) {
  const pick = canDispatch()
    ? h("input", { type: "checkbox", "aria-label": "选择以合并", checked: selected.has(node.id), onclick: (event) => {
      event.stopPropagation();
      if (event.target.checked) selected.add(node.id); else selected.delete(node.id);
      mergeBar(selected, renderPool);
    } })
    : null;
  return h("div", { class: "item cluster", dataset: { id: node.id, status: node.status } },
    h("span", { class: "title" }, pick, " ",
      h("button", { type: "button", class: "link open", onclick: () => openCluster(node.id) }, node.title)),
    meta(statusTag(node.status), node.overdue ? h("span", { class: "tag overdue" }, "超期") : null,
      `${node.caseCount} 件`, (node.channels || []).map((channel) => channel.name).join("、"), node.region?.name,
      node.category?.name, node.suggestedDepartment ? `建议：${node.suggestedDepartment.name}` : null,
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

export async function openCluster(id) {
  const dialog = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  replace(body, "加载中…");
  if (!dialog.open) dialog.showModal();
  try {
    const { data } = await gql(CLUSTER, { id });
    const cluster = data.node;
    if (!cluster) { replace(body, "无此诉求组或无权查看"); return; }
    replace(body, h("div", { class: "cluster-detail", dataset: { id: cluster.id, status: cluster.status } },
      h("h3", {}, cluster.title), statusTag(cluster.status),
      cluster.overdue ? h("span", { class: "tag overdue" }, "超期") : null,
      h("dl", {},
        h("dt", {}, "渠道"), h("dd", {}, cluster.channels.map((channel) => channel.name).join("、")),
        h("dt", {}, "分类"), h("dd", {}, (cluster.category?.path || []).join(" / ") || "—"),
        h("dt", {}, "地点"), h("dd", {}, cluster.region?.name || "—"),
        h("dt", {}, "建议部门"), h("dd", {}, cluster.suggestedDepartment?.name || "—"),
        h("dt", {}, "办理时限"), h("dd", {}, when(cluster.deadline)),
        h("dt", {}, "首报 / 最近"), h("dd", {}, `${when(cluster.firstReceivedAt)} / ${when(cluster.lastReceivedAt)}`)),
      clusterActions(cluster, () => { openCluster(id); renderPool(); }),
      h("h4", {}, `各渠道诉求（${cluster.caseCount}）`),
      h("ol", { class: "members" }, cluster.cases.map((member) => memberItem(member, cluster))),
      h("h4", {}, "合并依据"),
      h("ul", {}, (cluster.mergeReasons || []).map((reason) =>
        h("li", {}, `${reason.reason}${reason.score === null || reason.score === undefined ? "" : `（${Number(reason.score).toFixed(2)}）`}`)))));
  } catch (error) {
    replace(body, failure(error));
  }
}

function memberItem(member, cluster) {
  return h("li", { dataset: { case: member.id } }, statusTag(member.status), " ", member.channel.name, " · ",
    h("b", {}, member.title), " ", h("small", {}, when(member.receivedAt)), h("br"),
    h("small", {}, member.content), splitButton(member, cluster, () => { openCluster(cluster.id); renderPool(); }));
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
