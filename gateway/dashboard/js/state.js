// What the panels share: the signed-in viewer, the reference data, and a tiny event bus.

import { data } from "./api.js";

export const state = {
  viewer: null,      // { username, displayName, roles }
  streets: [],       // [{ id, name, code, location, children: communities }]
  channels: [],      // [{ key, name }]
  categories: [],    // the five top classes [{ id, name }]
};

const bus = new EventTarget();

export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

export function on(name, listener) {
  bus.addEventListener(name, (event) => listener(event.detail));
}

// Roles as the rights policy names them (auth/rights.py): who may do what decides which buttons appear;
// the graph enforces it again on every mutation.
const DISPATCHERS = ["district", "street", "open"];
const HANDLERS = ["department", "service", "open"];

export function hasRole(...roles) {
  return (state.viewer?.roles || []).some((role) => roles.includes(role));
}

export const canDispatch = () => hasRole(...DISPATCHERS);
export const canHandle = () => hasRole(...HANDLERS);
export const isStaff = () => hasRole("district", "street", "community", "department", "service", "petition_staff", "open");

const REFERENCE = `query Reference {
  me { username displayName roles authenticated }
  regions { id name level children { id name code level location { lat lng }
    children { id name code level } } }
  channels { key name }
  categories { id name }
}`;

export async function loadReference() {
  const found = await data(REFERENCE);
  state.viewer = found.me;
  const district = found.regions[0];
  state.streets = district ? district.children : [];
  state.channels = found.channels;
  state.categories = found.categories;
  return state;
}

/** The street or community with this global id. */
export function regionById(id) {
  for (const street of state.streets) {
    if (street.id === id) return street;
    const community = street.children.find((child) => child.id === id);
    if (community) return community;
  }
  return null;
}
