// A real OAuth2 authorization server for the tests: oauth2-mock-server's OAuth2Server (real RS256 keys, JWKS,
// discovery, a token endpoint for every grant), behind a small front that the tests steer. tests/oauth_server.py
// starts it; README, "Development", says what it is for.
//
//     node server.mjs <node_modules folder holding oauth2-mock-server>
//
// The front listens on 127.0.0.1 (a free port) and is the issuer: tokens, discovery and JWKS all name it. It
// passes every request on to the library's server (another free loopback port, advertised nowhere) except
//   - /_harness/...: the control API (JSON; `OAuthServer` in tests/oauth_server.py wraps each call);
//   - POST /token, which it records (headers and form) and may answer itself, as the test asked: an OAuth error
//     (invalid_client 401, server_error 500, ...), a body that is not JSON, or no answer until released. The
//     library's event hooks can only change a JSON answer, so these must be answered here;
//   - GET /.well-known/oauth-authorization-server (RFC 8414), which the library lacks: the same metadata as its
//     OpenID discovery document, as identity providers serve it;
//   - POST /introspect (RFC 7662) and POST /revoke (RFC 7009), answered here for real: the library's introspection
//     says every token is active and its revocation does nothing. A token is active when this server issued it
//     (through /token, /_harness/issue or /_harness/opaque), it has not expired and it was not revoked. With
//     required clients (`/_harness/clients`), introspection takes only their credentials.
//
// The secrets scan: stdout carries one JSON object a line. First {"issuer": url}; then {"secrets": [...]} for
// every client credential received and every token issued, and the front waits for a line on stdin (the
// acknowledgement that the test process registered them) before it answers. So a token is a known secret before
// the server under test holds it. When stdin closes (the test process is done or gone), the server exits.

import { randomBytes } from "node:crypto";
import { createServer, request } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const entry = createRequire(join(process.argv[2], "harness.js")).resolve("oauth2-mock-server");
const { Events, OAuth2Issuer, OAuth2Server } = await import(pathToFileURL(entry).href);

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding"]);
const FAILURES = {
  invalid_client: [401, { "www-authenticate": 'Basic realm="oauth2-mock-server"' }],
  server_error: [500, {}],
  // any other RFC 6749 section 5.2 error code is a 400
};
const NOT_JSON = "<html><body><h1>502 Bad Gateway</h1></body></html>";

const requests = []; // every token request, as received
// How token requests are answered instead of by the library (a mode), and what issued tokens say (settings:
// expires_in, audience, scope, claims): `always`, unless a one-off in `next` ({value, times}) comes first.
const faults = { always: null, next: [] };
const tokens = { always: {}, next: [] };
let clients = null; // {client_id: secret}: when set, the token endpoint checks client credentials
const issued = new Map(); // every access token issued -> {claims, revoked}
const introspections = []; // every introspection request: {client_id, token_type_hint} (never the token)
const held = []; // releases of the token requests a "hang" holds
const waiters = []; // long polls waiting for a number of token requests
let settled = 0; // token requests whose secrets are registered and that are held or being answered

// --- the library's server, its keys and its hooks ------------------------------------------------------------

const library = new OAuth2Server();
const keys = library.issuer.keys;
let current = (await keys.generate("RS256")).kid;
const retired = new Set();
// The library signs with its keys in turn and publishes every key it ever had; an identity provider signs with
// its newest key and drops retired ones from its JWKS. These two overrides make it do that.
const pick = keys.get.bind(keys);
const publish = keys.toJSON.bind(keys);
keys.get = (kid) => pick(kid ?? current);
keys.toJSON = (withPrivate) => publish(withPrivate).filter((key) => !retired.has(key.kid));
// Tokens "signed with a different key": an issuer whose key is in no JWKS.
const foreign = new OAuth2Issuer();
await foreign.keys.generate("RS256");

library.service.on(Events.BeforeWellKnownOpenIdConfiguration, (metadata) => {
  // The library says "none"; its token endpoint (and the front) take client secrets both ways.
  metadata.body.token_endpoint_auth_methods_supported = ["client_secret_basic", "client_secret_post"];
});
library.service.on(Events.BeforeTokenSigning, (token, req) => {
  const record = requests[Number(req.headers["x-harness-request"])];
  // The access token is signed first; an id_token (code and password grants) after it is left alone.
  if ((record.signed = (record.signed ?? 0) + 1) > 1) return;
  const { expires_in, audience, scope, claims } = record.settings;
  const payload = token.payload;
  if (expires_in !== undefined) payload.exp = payload.iat + expires_in;
  // The library reads only a non-standard `aud` parameter; servers read RFC 8707 `resource` or `audience`.
  payload.aud = audience ?? record.form.audience ?? record.form.resource ?? payload.aud;
  if (scope !== undefined) payload.scope = scope;
  // RFC 9068: client_id always; sub is the client's own id when no user is involved.
  if (record.client_id !== null) {
    payload.client_id ??= record.client_id;
    payload.sub ??= record.client_id;
  }
  setClaims(payload, claims);
});
library.service.on(Events.BeforeResponse, (response, req) => {
  const { expires_in, scope } = requests[Number(req.headers["x-harness-request"])].settings;
  if (expires_in !== undefined) response.body.expires_in = expires_in;
  if (scope !== undefined) response.body.scope = scope;
});
await library.start(0, "127.0.0.1");

// --- the front -----------------------------------------------------------------------------------------------

const front = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error("oauth harness:", error);
    if (!res.headersSent) reply(res, 500, { error: "harness_error", error_description: String(error) });
  });
});
await new Promise((resolve) => front.listen(0, "127.0.0.1", resolve));
library.issuer.url = foreign.url = `http://127.0.0.1:${front.address().port}`;

async function handle(req, res) {
  const body = await readBody(req);
  const path = new URL(req.url, library.issuer.url).pathname;
  if (path.startsWith("/_harness/")) return reply(res, 200, await control(req, path, body));
  if (req.method === "POST" && path === "/token") return token(req, res, body);
  if (req.method === "POST" && path === "/introspect") return introspect(req, res, body);
  if (req.method === "POST" && path === "/revoke") return revoke(res, body);
  if (req.method === "GET" && path === "/.well-known/oauth-authorization-server") {
    req.url = "/.well-known/openid-configuration";
  }
  send(res, await forward(req, body));
}

async function token(req, res, body) {
  const form = Object.fromEntries(new URLSearchParams(body.toString()));
  const basic = basicCredentials(req.headers.authorization);
  const methods = [basic && "client_secret_basic", form.client_secret !== undefined && "client_secret_post"];
  const record = {
    method: req.method,
    path: req.url,
    headers: req.headers,
    body: body.toString(),
    form,
    grant_type: form.grant_type ?? null,
    client_id: basic?.id ?? form.client_id ?? null,
    client_auth: methods.filter(Boolean).join(" ") || "none",
    status: null, // the answer's status; null while held, or when never answered
    settings: {},
  };
  requests.push(record);
  await announce([basic?.secret, form.client_secret, req.headers.authorization]);

  let fault = next(faults) ?? faults.always;
  if (fault === "hang") {
    const released = new Promise((release) => held.push(release));
    notifyWaiters(); // only once it is held: a test that saw it may release it at once
    await released;
    if (res.destroyed) return; // the client gave up
    fault = null;
  } else {
    notifyWaiters();
  }
  fault ??= clientFault(record, basic, form);
  if (fault === "not_json") return send(res, answered(record, 200, { "content-type": "text/html" }, NOT_JSON));
  if (fault !== null) {
    const [status, headers] = FAILURES[fault] ?? [400, {}];
    const error = { error: fault, error_description: `the test asked for ${fault}` };
    return send(res, answered(record, status, { "content-type": "application/json", ...headers }, JSON.stringify(error)));
  }

  record.settings = { ...tokens.always, ...next(tokens) };
  const answer = await forward(req, body, { "x-harness-request": String(requests.indexOf(record)) });
  if (answer.status === 200) {
    const tokens = JSON.parse(answer.body);
    await announce([tokens.access_token, tokens.refresh_token, tokens.id_token]);
    remember(tokens.access_token);
  }
  record.status = answer.status;
  send(res, answer);
}

// One more token request settled: answer the long polls of `wait_for_token_requests` waiting for as many.
function notifyWaiters() {
  settled += 1;
  for (const waiter of waiters.splice(0)) (settled >= waiter.count ? waiter.resolve() : waiters.push(waiter));
}

// A JWT's claims (unverified: this server signed it), or null for an opaque token.
function jwtClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], "base64url").toString());
  } catch {
    return null;
  }
}

function remember(token, claims = jwtClaims(token)) {
  if (typeof token === "string" && claims !== null) issued.set(token, { claims, revoked: false });
}

// RFC 7662: active only for a token issued here, unexpired and unrevoked; its claims with it.
async function introspect(req, res, body) {
  const form = Object.fromEntries(new URLSearchParams(body.toString()));
  const basic = basicCredentials(req.headers.authorization);
  const client = basic?.id ?? form.client_id ?? null;
  const secret = basic ? basic.secret : form.client_secret;
  await announce([basic?.secret, form.client_secret, form.token]);
  introspections.push({ client_id: client, token_type_hint: form.token_type_hint ?? null });
  if (clients !== null && !(Object.hasOwn(clients, client ?? "") && clients[client] === secret)) {
    const headers = { "content-type": "application/json", "www-authenticate": 'Basic realm="oauth2-mock-server"' };
    return send(res, { status: 401, headers, body: Buffer.from(JSON.stringify({ error: "invalid_client" })) });
  }
  const known = issued.get(form.token ?? "");
  const now = Math.floor(Date.now() / 1000);
  const active = known !== undefined && !known.revoked && (known.claims.exp === undefined || known.claims.exp > now);
  reply(res, 200, active ? { active: true, token_type: "Bearer", ...known.claims } : { active: false });
}

// RFC 7009: the token stops being active; 200 whether or not it was known.
async function revoke(res, body) {
  const form = Object.fromEntries(new URLSearchParams(body.toString()));
  await announce([form.token, form.client_secret]);
  const known = issued.get(form.token ?? "");
  if (known !== undefined) known.revoked = true;
  send(res, { status: 200, headers: {}, body: Buffer.alloc(0) });
}

function clientFault(record, basic, form) {
  if (record.client_auth.includes(" ")) return "invalid_request"; // RFC 6749 2.3: one method only
  if (clients === null) return null;
  const secret = basic ? basic.secret : form.client_secret;
  return Object.hasOwn(clients, record.client_id ?? "") && clients[record.client_id] === secret ? null : "invalid_client";
}

// RFC 6749 section 2.3.1: the id and the secret are form-urlencoded before they are joined and base64-encoded.
function basicCredentials(header) {
  const [scheme, value] = (header ?? "").split(" ");
  if (scheme?.toLowerCase() !== "basic" || !value) return null;
  const text = Buffer.from(value, "base64").toString();
  const colon = text.indexOf(":");
  const decode = (part) => decodeURIComponent(part.replaceAll("+", " "));
  try {
    return colon < 0 ? null : { id: decode(text.slice(0, colon)), secret: decode(text.slice(colon + 1)) };
  } catch {
    return null; // not form-urlencoded: invalid_client when clients are checked
  }
}

// --- the control API -----------------------------------------------------------------------------------------

async function control(req, path, body) {
  const ask = body.length ? JSON.parse(body) : {};
  switch (`${req.method} ${path}`) {
    case "GET /_harness/requests": {
      const count = Number(new URL(req.url, library.issuer.url).searchParams.get("count") ?? 0);
      if (settled < count) await new Promise((resolve) => waiters.push({ count, resolve }));
      return { requests: requests.map(({ signed, settings, ...shown }) => shown) };
    }
    case "POST /_harness/faults":
      if (ask.mode === null) Object.assign(faults, { always: null, next: [] });
      else rule(faults, ask.mode, ask.times);
      return {};
    case "POST /_harness/tokens":
      rule(tokens, ask.settings, ask.times);
      return {};
    case "POST /_harness/clients":
      clients = ask.clients;
      return {};
    case "POST /_harness/release":
      return { released: held.splice(0).map((release) => release()).length };
    case "POST /_harness/rotate": {
      const previous = current;
      current = (await keys.generate("RS256")).kid;
      if (ask.retire) for (const key of publish()) if (key.kid !== current) retired.add(key.kid);
      return { kid: current, previous };
    }
    case "POST /_harness/issue": {
      const issuer = ask.foreign ? foreign : library.issuer;
      const transform = (header, payload) => {
        setClaims(payload, ask.claims);
        if (ask.kid !== undefined) header.kid = ask.kid;
      };
      const token = await issuer.buildToken({ expiresIn: ask.expires_in, scopesOrTransform: transform });
      if (!ask.foreign) remember(token);
      return { token };
    }
    case "POST /_harness/opaque": {
      // An opaque access token (no JWT) only introspection can read: `iss`, `iat`, `exp` and the asked claims.
      const token = `opaque-${randomBytes(24).toString("base64url")}`;
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: library.issuer.url, iat: now, exp: now + (ask.expires_in ?? 3600) };
      setClaims(claims, ask.claims);
      await announce([token]);
      remember(token, claims);
      return { token };
    }
    case "GET /_harness/introspections":
      return { introspections };
    default:
      throw new Error(`no control ${req.method} ${path}`);
  }
}

// `times: null` makes `value` the one that applies from now on; a number queues it for that many requests.
function rule(rules, value, times) {
  if (times == null) rules.always = value;
  else rules.next.push({ value, times });
}

// The one-off value for this request, if one is queued.
function next(rules) {
  const first = rules.next[0];
  if (first !== undefined && --first.times === 0) rules.next.shift();
  return first?.value;
}

// `claims` set over the payload; a claim set to null is removed (a token without `exp`, say).
function setClaims(payload, claims) {
  for (const [name, value] of Object.entries(claims ?? {})) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
}

// --- plumbing ------------------------------------------------------------------------------------------------

function readBody(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function forward(req, body, extra = {}) {
  const { port } = library.address();
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, ...extra };
    const out = request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers }, (answer) => {
      readBody(answer).then((body) => resolve({ status: answer.statusCode, headers: answer.headers, body }), reject);
    });
    out.on("error", reject);
    out.end(body);
  });
}

function answered(record, status, headers, body) {
  record.status = status;
  return { status, headers, body: Buffer.from(body) };
}

function send(res, { status, headers, body }) {
  const kept = Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name) && name !== "content-length");
  res.writeHead(status, { ...Object.fromEntries(kept), "content-length": body.length });
  res.end(body);
}

function reply(res, status, value) {
  send(res, { status, headers: { "content-type": "application/json" }, body: Buffer.from(JSON.stringify(value)) });
}

const acks = createInterface({ input: process.stdin });
const pending = [];
acks.on("line", () => pending.shift()?.());
acks.on("close", () => process.exit(0));

function announce(values) {
  const secrets = values.filter((value) => typeof value === "string" && value.length > 0);
  if (secrets.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    pending.push(resolve);
    process.stdout.write(`${JSON.stringify({ secrets })}\n`);
  });
}

process.stdout.write(`${JSON.stringify({ issuer: library.issuer.url })}\n`);
