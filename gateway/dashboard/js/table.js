// 一张表: 受理量, 办结量, 化解率, 按期办结率, 满意率 and overdue counts by street, department, category or
// channel for a chosen period (the `stats` query), and the same figures for the whole scope as the
// headline strip at the top of the board.

import { gql } from "./api.js";
import { on } from "./state.js";
import { count, failure, h, percent, replace, unavailable } from "./util.js";

const STATS = `query Stats($filter: StatsFilter, $groupBy: [StatsDimension!]!) {
  stats(filter: $filter, groupBy: $groupBy) {
    key label received resolved resolutionRate onTimeRate satisfactionRate overdue
  }
}`;
// Before the stats query exists the strip still shows what the case index can count.
const RECEIVED = `query Received($after: DateTime) { cases(first: 1, filter: { receivedAfter: $after }) { totalCount } }`;

const COLUMNS = [
  ["received", "受理量", count], ["resolved", "办结量", count], ["resolutionRate", "化解率", percent],
  ["onTimeRate", "按期办结率", percent], ["satisfactionRate", "满意率", percent], ["overdue", "超期", count],
];

let timer = null;

export function period() {
  const days = Number(document.getElementById("period").value);
  const now = new Date();
  return { from: new Date(now.getTime() - days * 86400000).toISOString(), to: now.toISOString(), days };
}

// Statistics count by day (Beijing time): the period is whole days, today included.
const DAY = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });

function statsFilter() {
  const { days } = period();
  const today = new Date();
  return { fromDay: DAY.format(new Date(today.getTime() - (days - 1) * 86400000)), toDay: DAY.format(today) };
}

function kpi(label, value, key) {
  return h("div", { class: "kpi", dataset: { kpi: key } }, h("b", {}, value), h("span", {}, label));
}

async function renderKpis() {
  const strip = document.getElementById("kpis");
  const label = `（近${period().days}天）`;
  try {
    const { data } = await gql(STATS, { filter: statsFilter(), groupBy: [] });
    const total = data.stats[0] || {};
    replace(strip, COLUMNS.map(([key, name, format]) => kpi(name + label, format(total[key]), key)));
  } catch (error) {
    if (!error.missingApi) { replace(strip, failure(error)); return; }
    const { data } = await gql(RECEIVED, { after: period().from });
    replace(strip, kpi(`受理量${label}`, count(data.cases.totalCount), "received"),
      h("div", { class: "kpi" }, h("span", {}, "办结量、化解率、按期办结率、满意率：统计接口（stats）尚未上线")));
  }
}

async function renderTable() {
  const body = document.getElementById("table-body");
  const dimension = document.getElementById("group").value;
  try {
    const { data, errors } = await gql(STATS, { filter: statsFilter(), groupBy: [dimension] });
    const rows = [...data.stats].sort((a, b) => (b.received ?? 0) - (a.received ?? 0));
    replace(body, h("div", { class: "table-wrap" }, h("table", { class: "stats", dataset: { dimension } },
      h("thead", {}, h("tr", {}, h("th", {}, document.getElementById("group").selectedOptions[0].text.slice(1)),
        COLUMNS.map(([, name]) => h("th", {}, name)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, h("td", {}, row.label || row.key || "（未归类）"),
        COLUMNS.map(([key, , format]) => h("td", {}, format(row[key])))))))),
    errors.length ? failure({ message: errors[0].message }) : null);
  } catch (error) {
    replace(body, error.missingApi ? unavailable("一张表（stats）") : failure(error));
  }
}

export function renderStats() {
  return Promise.all([renderKpis(), renderTable()]);
}

export function startStats() {
  renderStats().catch(() => {});
  document.getElementById("period").addEventListener("change", renderStats);
  document.getElementById("group").addEventListener("change", renderTable);
  on("live", () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; renderStats().catch(() => {}); }, 5000);
  });
}
