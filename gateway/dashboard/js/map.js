// 一张图: 光明区 as a schematic tile map — each street a block placed by its centroid on a 3×3 grid, its
// communities as tiles inside — coloured by risk (riskMap). Drawn from the `regions` query alone: no map
// tiles, nothing fetched from the internet. A click opens the 民声云 pool filtered to that region.

import { gql } from "./api.js";
import { emit, on, state } from "./state.js";
import { failure, h, replace } from "./util.js";

const COLUMNS = 3;
const ROWS = 3;
const LEVELS = 5;

const RISK = `query RiskMap($level: RegionLevel) {
  riskMap(level: $level) { region { id name } score level received overdue repeats groupPetitions }
}`;

const RISK_WORDS = { LOW: "低", MEDIUM: "中", HIGH: "高" };

let timer = null;

/** Grid cells for streets: the cell nearest each centroid (north up, west left) that is still free. */
export function placeStreets(streets) {
  const located = streets.filter((street) => street.location);
  const lats = located.map((street) => street.location.lat);
  const lngs = located.map((street) => street.location.lng);
  const [minLat, maxLat, minLng, maxLng] = [Math.min(...lats), Math.max(...lats), Math.min(...lngs), Math.max(...lngs)];
  const cell = (value, low, high, cells) => (high > low ? Math.min(cells - 1, Math.floor(((value - low) / (high - low)) * cells)) : 1);
  const taken = new Map();
  const order = [...streets].sort((a, b) => (b.location?.lat ?? 0) - (a.location?.lat ?? 0));
  for (const street of order) {
    const want = street.location
      ? [cell(maxLat - street.location.lat, 0, maxLat - minLat, ROWS), cell(street.location.lng, minLng, maxLng, COLUMNS)]
      : [ROWS - 1, COLUMNS - 1];
    taken.set(street.id, nearestFree(want, new Set([...taken.values()].map((rc) => rc.join()))));
  }
  return taken;
}

function nearestFree([row, col], used) {
  let best = null;
  for (let r = 0; r < ROWS + 2; r += 1) {
    for (let c = 0; c < COLUMNS; c += 1) {
      if (used.has([r, c].join())) continue;
      const distance = Math.abs(r - row) + Math.abs(c - col) + r * 0.001;
      if (!best || distance < best.distance) best = { rc: [r, c], distance };
    }
  }
  return best.rc;
}

/** Shading per region id: {level 0..4, label}. riskMap when the graph has it. */
async function loadShading() {
  const shading = new Map();
  const [streets, communities] = await Promise.all([
    gql(RISK, { level: "STREET" }), gql(RISK, { level: "COMMUNITY" })]);
  for (const row of [...streets.data.riskMap, ...communities.data.riskMap]) {
    if (!row.region) continue;
    const score = Number(row.score ?? 0);  // 0–1
    shading.set(row.region.id, { level: Math.min(LEVELS - 1, Math.floor(score * LEVELS)),
      label: `风险${RISK_WORDS[row.level] || row.level}（${score.toFixed(2)}），受理 ${row.received}，超期 ${row.overdue}，重复 ${row.repeats}，集体访 ${row.groupPetitions}` });
  }
  return shading;
}

function legend() {
  return h("span", { class: "legend" }, "低",
    Array.from({ length: LEVELS }, (_, level) => h("i", { class: `risk${level}` })), "高");
}

function tile(region, shading, className) {
  const shade = shading.get(region.id) || { level: 0, label: "暂无数据" };
  return h("button", { type: "button", class: `${className} risk${shade.level}`, title: `${region.name}：${shade.label}`,
    dataset: { region: region.id, risk: shade.level }, onclick: () => emit("region", region.id) }, region.name);
}

export async function renderMap() {
  const body = document.getElementById("map-body");
  const cells = placeStreets(state.streets);
  let shading = new Map();
  let note = "按风险着色";
  try {
    shading = await loadShading();
  } catch (error) {
    note = error.missingApi ? "风险指数（riskMap）尚未上线，暂不着色" : `风险数据加载失败：${error.message}`;
  }
  replace(document.getElementById("map-legend"), note, " ", legend());
  body.style.gridTemplateRows = `repeat(${Math.max(...[...cells.values()].map(([r]) => r)) + 1}, auto)`;
  replace(body, state.streets.map((street) => {
    const [row, col] = cells.get(street.id);
    const block = h("div", { class: "street", style: `grid-row:${row + 1};grid-column:${col + 1}` },
      tile(street, shading, "street-name"),
      h("div", { class: "communities" }, street.children.map((community) => tile(community, shading, "tile"))));
    block.classList.add(`risk-border${(shading.get(street.id) || { level: 0 }).level}`);
    return block;
  }));
}

export function startMap() {
  renderMap().catch((error) => replace(document.getElementById("map-body"), failure(error)));
  on("live", () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; renderMap(); }, 5000);
  });
}
