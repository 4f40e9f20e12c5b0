// The public API, as any dashboard would use it: a bearer token from the identity provider's token
// endpoint (POST /auth/token, OAuth2 password grant) and GraphQL over HTTP at /graphql.

const TOKEN_KEY = "minsheng.token";
const listeners = new Set();

export class GraphQLError extends Error {
  constructor(errors, status) {
    super(errors.map((error) => error.message).join("；") || `HTTP ${status}`);
    this.errors = errors;
    this.status = status;
    this.code = errors[0]?.extensions?.code || null;
  }

  /** Whether the graph does not have the field or type asked for (an API that has not landed). */
  get missingApi() {
    return this.errors.some((error) =>
      /Cannot query field|Unknown type|Unknown argument|Unknown enum|does not exist|not defined by type/
        .test(error.message || ""));
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Called with no argument when the token is refused: the page goes back to the sign-in form. */
export function onSignedOut(listener) {
  listeners.add(listener);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  for (const listener of listeners) listener();
}

/** Password sign-in at the embedded identity provider; throws an Error with a message to show. */
export async function signIn(username, password, totp) {
  const form = new URLSearchParams({ grant_type: "password", username, password });
  if (totp) form.set("totp", totp);
  let answer;
  try {
    answer = await fetch("/auth/token", { method: "POST", body: form,
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" } });
  } catch (error) {
    throw new Error(`无法连接网关：${error.message}`);
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok || !body.access_token) {
    if (answer.status === 404) throw new Error("本网关未启用内置身份提供方（/auth/token）");
    const error = new Error(body.error_description || body.error || `登录失败（HTTP ${answer.status}）`);
    error.code = body.error;
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  return body;
}

/** A token obtained elsewhere (the configured OIDC provider's own sign-in); the graph validates it. */
export function useToken(bearer) {
  sessionStorage.setItem(TOKEN_KEY, bearer.replace(/^Bearer\s+/i, "").trim());
}

export function authHeaders() {
  const bearer = token();
  return bearer ? { authorization: `Bearer ${bearer}` } : {};
}

/**
 * One GraphQL operation. Resolves to `{data, errors}` (partial data is normal: one channel down never
 * fails a whole answer); throws GraphQLError when there is no data at all.
 */
export async function gql(query, variables = {}) {
  const answer = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json",
      ...authHeaders() },
    body: JSON.stringify({ query, variables }),
  });
  const body = await answer.json().catch(() => ({ errors: [{ message: `HTTP ${answer.status}` }] }));
  const errors = body.errors || [];
  if (answer.status === 401 || errors.some((error) => error.extensions?.code === "UNAUTHENTICATED")) {
    if (token()) signOut();
    throw new GraphQLError(errors.length ? errors : [{ message: "请先登录" }], answer.status);
  }
  if (!body.data) throw new GraphQLError(errors, answer.status);
  return { data: body.data, errors };
}

/** The data of a query; throws on any error (for small reference queries where partial data is useless). */
export async function data(query, variables = {}) {
  const { data: found, errors } = await gql(query, variables);
  if (errors.length) throw new GraphQLError(errors, 200);
  return found;
}
