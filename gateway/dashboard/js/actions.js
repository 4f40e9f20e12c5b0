// The writes a dashboard user may make on a cluster, shown only to the roles that may make them (the graph
// checks again): a dispatcher dispatches, merges and splits; a department signs and resolves.

import { gql } from "./api.js";
import { canDispatch, canHandle, emit } from "./state.js";
import { h, replace } from "./util.js";

const DEPARTMENTS = `query Departments { departments { id name shortName } }`;
const DISPATCH = `mutation Dispatch($input: DispatchInput!) {
  dispatchCluster(input: $input) { dispatch { status } assignment { id status } }
}`;
const MERGE = `mutation Merge($ids: [ID!]!) { mergeClusters(ids: $ids) { cluster { id caseCount } } }`;
const SPLIT = `mutation Split($caseId: ID!) { splitCase(caseId: $caseId) { cluster { id } } }`;
const SIGN = `mutation Sign($id: ID!) { signAssignment(id: $id) { dispatch { status } } }`;
const RESOLVE = `mutation Resolve($input: ResolveInput!) {
  resolveCluster(input: $input) { dispatch { status } }
}`;

let departments = null;

async function departmentOptions(suggested) {
  if (!departments) departments = (await gql(DEPARTMENTS)).data.departments;
  return departments.map((department) =>
    h("option", { value: department.id, selected: department.id === suggested?.id, title: department.name },
      department.shortName || department.name));
}

/** Run a mutation; show its error next to the buttons; call `done` after success. */
async function run(status, query, variables, done) {
  status.textContent = "提交中…";
  try {
    const { data, errors } = await gql(query, variables);
    if (errors.length) throw new Error(errors[0].message);
    status.textContent = "已完成";
    done(data);
  } catch (error) {
    status.textContent = `未能完成：${error.message}`;
  }
}

function dispatchForm(cluster, status, done) {
  const select = h("select", { name: "department", "aria-label": "承办部门" });
  departmentOptions(cluster.suggestedDepartment).then((options) => replace(select, options));
  const note = h("input", { name: "note", placeholder: "派单意见（可选）" });
  return h("form", { class: "dispatch", onsubmit: (event) => {
    event.preventDefault();
    const input = { clusterId: cluster.id, departmentId: select.value };
    if (note.value) input.note = note.value;
    run(status, DISPATCH, { input }, done);
  } }, select, note, h("button", { type: "submit", class: "primary", dataset: { action: "dispatch" } }, "派单"));
}

export function clusterActions(cluster, done) {
  const status = h("span", { class: "action-status", role: "status" });
  const box = h("div", { class: "actions" });
  if (canDispatch() && ["ACCEPTED", "RETURNED", "SUBMITTED"].includes(cluster.status)) {
    box.append(dispatchForm(cluster, status, done));
  }
  if (canHandle() && cluster.assignment?.status === "DISPATCHED") {
    box.append(h("button", { type: "button", dataset: { action: "sign" },
      onclick: () => run(status, SIGN, { id: cluster.assignment.id }, done) }, "签收"));
  }
  if (canHandle() && ["SIGNED", "IN_PROGRESS"].includes(cluster.status)) {
    const reply = h("input", { name: "reply", placeholder: "办理结果", required: true });
    box.append(h("form", { class: "resolve", onsubmit: (event) => {
      event.preventDefault();
      run(status, RESOLVE, { input: { clusterId: cluster.id, resolution: reply.value } }, done);
    } }, reply, h("button", { type: "submit", class: "primary", dataset: { action: "resolve" } }, "办结")));
  }
  box.append(status);
  return box;
}

export function splitButton(member, cluster, done) {
  if (!canDispatch() || cluster.caseCount < 2) return null;
  const status = h("small", { role: "status" });
  return h("span", {}, " ", h("button", { type: "button", class: "link", dataset: { action: "split" },
    onclick: () => run(status, SPLIT, { caseId: member.id }, done) }, "拆分出去"), " ", status);
}

/** The merge bar above the pool: appears when a dispatcher has ticked two or more clusters. */
export function mergeBar(selected, done) {
  const bar = document.getElementById("merge-bar") || h("div", { id: "merge-bar", class: "actions" });
  if (!bar.isConnected) document.getElementById("pool-body").before(bar);
  if (selected.size < 2) { replace(bar); return; }
  const status = h("span", { role: "status" });
  replace(bar, h("button", { type: "button", class: "primary", dataset: { action: "merge" }, onclick: () =>
    run(status, MERGE, { ids: [...selected] }, () => { selected.clear(); emit("reset"); replace(bar); done(); }) },
  `合并所选 ${selected.size} 组`), status);
}
