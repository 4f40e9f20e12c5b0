// Small DOM and formatting helpers. Text always goes in as text nodes (never innerHTML): appeals are
// written by the public, so everything shown is untrusted.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const STATUS = {
  SUBMITTED: "已提交", ACCEPTED: "待派单", DISPATCHED: "已派单", SIGNED: "已签收", IN_PROGRESS: "办理中",
  RESOLVED: "已办结", CLOSED: "已关闭", RETURNED: "已退单", REJECTED: "不予受理",
};

/** A row of small facts; each its own box so the row's gap separates them. */
export function meta(...parts) {
  return h("span", { class: "meta" }, parts.flat().filter((part) => part !== null && part !== undefined && part !== "")
    .map((part) => (part instanceof Node ? part : h("span", {}, part))));
}

export function statusTag(status) {
  return h("span", { class: `tag ${status}` }, STATUS[status] || status || "—");
}

const TIME = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : TIME.format(date);
}

export function percent(value) {
  if (value === null || value === undefined) return "—";
  return `${(Number(value) * 100).toFixed(1)}%`;
}

export function count(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("zh-CN");
}

/** A panel's note that the API it needs is not in this gateway yet (never stand-in data). */
export function unavailable(what) {
  return h("p", { class: "unavailable" }, `${what}：本网关尚未提供该接口，待上线后自动显示。`);
}

export function failure(error) {
  if (error.code === "FORBIDDEN") return h("p", { class: "unavailable" }, "当前账号无权查看此项。");
  return h("p", { class: "error", role: "alert" }, `加载失败：${error.message || error}`);
}

/** The graph's global id of `type` and `key` (URL-safe base64 of "Type:key", unpadded; resolvers/ids.py). */
export function globalId(type, key) {
  const bytes = new TextEncoder().encode(`${type}:${key}`);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The key inside a global id ("Region:440311005" → "440311005"); the id itself when it is not one. */
export function keyOf(id) {
  try {
    const text = new TextDecoder().decode(Uint8Array.from(atob(id.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)));
    const split = text.indexOf(":");
    return split > 0 ? text.slice(split + 1) : id;
  } catch {
    return id;
  }
}
