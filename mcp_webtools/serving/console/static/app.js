/* mcp-webtools web console. Plain JavaScript, no build step, nothing loaded from elsewhere.
 *
 * Talks only to this server's /ui/api/. With a token set on the server, the page asks for it once
 * and keeps it in sessionStorage (this tab only), sending it as `Authorization: Bearer` on every
 * fetch; no cookie is used, so another site cannot make the browser send it. Live updates are
 * NDJSON read with fetch (EventSource cannot send the header). Every text from the server is put
 * in the page with textContent, never as HTML.
 */
"use strict";
(() => {
  const BASE = location.pathname.replace(/\/+$/, "");
  const TOKEN_KEY = "mcp-webtools-console-token";
  const PAGES = ["tools", "try", "calls", "config", "health"];
  const OUTCOMES = ["ok", "http_error", "upstream_error", "timeout", "auth_error", "busy", "rate_limited",
    "invalid_arguments", "cancelled", "shutdown", "internal_error"];
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    overview: null, tools: null, calls: [], config: null, lastReload: null,
    live: false, filters: { tool: "", outcome: "", text: "", errors: false }, selectedCall: null,
    forms: {}, healthTimer: null, events: null,
  };
  const $ = (id) => document.getElementById(id);
  const main = $("main");

  /* ---------- small DOM helpers ---------- */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "hidden" || key === "disabled" || key === "checked" || key === "required" || key === "open") el[key] = true;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const json = (value) => JSON.stringify(value, null, 2);
  const pre = (text, label) => h("pre", label ? { tabindex: 0, "aria-label": label } : {}, h("code", {}, text));
  const announce = (text) => { $("announce").textContent = ""; setTimeout(() => { $("announce").textContent = text; }, 30); };
  let ids = 0;
  const uid = (prefix) => `${prefix}-${++ids}`;
  const fmtTime = (epoch) => new Date(epoch * 1000).toLocaleTimeString([], { hour12: false }) + "." +
    String(Math.floor((epoch % 1) * 1000)).padStart(3, "0");
  const fmtDate = (epoch) => new Date(epoch * 1000).toLocaleString([], { hour12: false });
  const fmtMs = (ms) => ms === null || ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  const outcomeBadge = (outcome) => h("span", { class: `badge ${outcome === "ok" ? "ok" : outcome === "cancelled" ? "warn" : "bad"}` }, outcome);

  /* ---------- the API ---------- */
  class AuthError extends Error {}
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let response;
    try {
      response = await fetch(`${BASE}/api/${path}`, { ...options, headers, cache: "no-store", credentials: "omit" });
    } catch (error) {
      throw new ApiError(0, "The server cannot be reached (is it still running?).");
    }
    if (response.status === 401) throw new AuthError("unauthorized");
    if (!response.ok) {
      let message = await response.text();
      try { message = JSON.parse(message).error || message; } catch (_) { /* plain text */ }
      if (response.status === 403) message += " — the server refused this page's Origin; start it with --allowed-origin set to this page's origin.";
      if (response.status === 421) message += " — the server refused this Host; start it with --allowed-host for this name.";
      throw new ApiError(response.status, `HTTP ${response.status}: ${message}`);
    }
    return response;
  }
  const getJSON = async (path) => (await api(path)).json();
  const post = (path, body) => api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  async function* lines(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield JSON.parse(line);
      }
    }
  }

  /* ---------- sign-in ---------- */
  function showLogin(refused) {
    $("nav").hidden = true;
    $("forget").hidden = true;
    const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true,
      "aria-describedby": "token-help" });
    const form = h("form", { class: "panel login", "aria-labelledby": "login-title", onsubmit: async (event) => {
      event.preventDefault();
      state.token = input.value.trim();
      await start();
    } },
    h("h1", { id: "login-title" }, "Access token"),
    h("p", { id: "token-help" }, "This server requires its access token (the value of MCP_WEBTOOLS_AUTH_TOKEN or --auth-token). " +
      "It is kept in this browser tab only and sent to this server alone."),
    refused ? h("p", { class: "problem", role: "alert", id: "login-refused" }, "The server refused that token. Check it and try again.") : null,
    h("div", { class: "field" }, h("label", { for: "token" }, "Token"), input),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Open the console")));
    main.replaceChildren(form);
    input.focus();
  }

  async function start() {
    try {
      state.overview = await getJSON("overview");
    } catch (error) {
      if (error instanceof AuthError) {
        const refused = Boolean(state.token);
        state.token = "";
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin(refused);
        return;
      }
      main.replaceChildren(h("p", { class: "problem", role: "alert" }, error.message));
      return;
    }
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    const o = state.overview;
    $("server-info").textContent = `${o.version} · pid ${o.pid} · ${o.tools} tool${o.tools === 1 ? "" : "s"}`;
    $("nav").hidden = false;
    $("forget").hidden = !o.auth;
    if (o.workers > 1) {
      const note = $("workers-note");
      note.hidden = false;
      note.textContent = `This server runs ${o.workers} worker processes. This page shows the calls, metrics and ` +
        `reloads of worker pid ${o.pid} only: each worker keeps its own, and a reload of the page may reach another worker.`;
    }
    try {
      state.tools = (await getJSON("tools")).tools;
    } catch (error) {
      return failed(error);
    }
    connectEvents();
    route();
  }

  function failed(error) {
    if (error instanceof AuthError) return start();
    main.replaceChildren(h("p", { class: "problem", role: "alert" }, error.message));
  }

  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    if (state.events) state.events.abort();
    showLogin(false);
  });

  /* ---------- live events: finished calls and reloads ---------- */
  async function connectEvents() {
    if (state.events) state.events.abort();
    let delay = 1000;
    for (;;) {
      const controller = new AbortController();
      state.events = controller;
      try {
        const fresh = await getJSON("calls");
        state.calls = fresh.calls;
        if (page() === "calls") renderCalls();
        const response = await api("events", { signal: controller.signal });
        setLive(true);
        delay = 1000;
        for await (const event of lines(response)) {
          if (event.type === "call") {
            state.calls.unshift(event.call);
            if (state.calls.length > fresh.capacity) state.calls.pop();
            if (page() === "calls") renderCalls();
          } else if (event.type === "reload") {
            state.lastReload = event.reload;
            await refreshTools();
            if (page() === "config") renderConfig();
            announce(event.reload.ok ? `Config reloaded: ${event.reload.summary}` : "A config reload failed: see the Config page.");
          }
        }
      } catch (error) {
        if (error instanceof AuthError) { setLive(null); return start(); }
        if (controller.signal.aborted) return;
      }
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  function setLive(on) {
    const el = $("live");
    el.className = on === null ? "live" : `live ${on ? "on" : "off"}`;
    el.textContent = on === null ? "" : on ? "live" : "reconnecting…";
  }
  async function refreshTools() {
    try { state.tools = (await getJSON("tools")).tools; } catch (_) { /* kept the last list */ }
    const current = page();
    if (current === "tools" || current === "try") route();
  }

  /* ---------- routing ---------- */
  function page() {
    const name = location.hash.replace(/^#\/?/, "").split("/")[0];
    return PAGES.includes(name) ? name : "tools";
  }
  function routeArg() {
    const rest = location.hash.replace(/^#\/?/, "").split("/").slice(1).join("/");
    return rest ? decodeURIComponent(rest) : "";
  }
  function route() {
    if (!state.tools) return;
    const current = page();
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.page === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (state.healthTimer && current !== "health") { clearInterval(state.healthTimer); state.healthTimer = null; }
    const changed = lastPage !== null && current !== lastPage;
    lastPage = current;
    renderedHash = location.hash;
    ({ tools: renderTools, try: renderTry, calls: renderCalls, config: renderConfig, health: renderHealth })[current]();
    // A new page: keyboard and screen-reader users start at its top, unless it focused something itself.
    if (changed && !main.contains(document.activeElement)) main.focus();
  }
  let lastPage = null;
  let renderedHash = null;
  // A page that changes the hash itself renders at once (so nothing typed next lands in a form about to be
  // replaced); the hashchange that follows is then already done.
  window.addEventListener("hashchange", () => { if (location.hash !== renderedHash) route(); });

  /* ---------- Tools ---------- */
  let toolQuery = "";
  let shownTool = null;
  function toolMatches(tool, query) {
    if (!query) return true;
    const m = tool.model;
    const hay = [m.name, m.title, m.description, tool.sent.method, tool.sent.url].join(" ").toLowerCase();
    return query.toLowerCase().split(/\s+/).every((word) => hay.includes(word));
  }
  function renderTools() {
    const selected = routeArg() || (state.tools[0] && state.tools[0].name);
    const list = h("ul", { class: "toollist", id: "tool-list", "aria-label": "Tools" });
    const count = h("p", { class: "muted", id: "tool-count", "aria-live": "polite" });
    const search = h("input", { type: "search", id: "tool-search", value: toolQuery, placeholder: "name, words of the description, URL…",
      "aria-controls": "tool-list", "aria-describedby": "tool-count" });
    const fill = () => {
      const shown = state.tools.filter((tool) => toolMatches(tool, toolQuery));
      count.textContent = `${shown.length} of ${state.tools.length} tools`;
      list.replaceChildren(...shown.map((tool) => h("li", {},
        h("a", { href: `#/tools/${encodeURIComponent(tool.name)}`, "aria-current": tool.name === selected ? "true" : null },
          h("span", { class: "badge method" }, tool.sent.method), h("span", { class: "name" }, tool.name),
          h("span", { class: "sub" }, tool.model.title || tool.model.description || "")))));
      return shown;
    };
    search.addEventListener("input", () => { toolQuery = search.value; fill(); });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        const first = state.tools.find((tool) => toolMatches(tool, toolQuery));
        if (first) location.hash = `#/tools/${encodeURIComponent(first.name)}`;
      }
    });
    fill();
    const tool = state.tools.find((t) => t.name === selected);
    main.replaceChildren(h("h1", { class: "sr-only" }, "Tools"), h("div", { class: "split" },
      h("section", { class: "panel", "aria-label": "Find a tool" },
        h("label", { for: "tool-search" }, "Search tools"), search, count, list),
      tool ? toolDetail(tool) : h("section", { class: "panel" }, h("p", { class: "empty" }, selected ? `No tool named ${selected}.` : "No tools."))));
    if (routeArg() && routeArg() !== shownTool && tool) main.querySelector("section h2").focus();
    else if (document.activeElement === document.body) search.focus();
    shownTool = routeArg();
  }

  function annotationBadges(model) {
    const a = model.annotations || {};
    const meta = (model._meta || {})["mcp-webtools/tool"] || {};
    return [
      a.readOnlyHint ? h("span", { class: "badge ok" }, "read-only") : null,
      a.destructiveHint ? h("span", { class: "badge bad" }, "destructive") : null,
      a.idempotentHint ? h("span", { class: "badge" }, "idempotent") : null,
      a.openWorldHint ? h("span", { class: "badge" }, "open-world") : null,
      meta.async ? h("span", { class: "badge warn" }, "async") : null,
    ];
  }

  function typeOf(schema) {
    if (!schema || typeof schema !== "object") return "any";
    if (schema.enum) return "enum";
    if (Array.isArray(schema.type)) return schema.type.join(" | ");
    if (schema.type === "array") return `array of ${typeOf(schema.items)}`;
    return schema.type || (schema.anyOf || schema.oneOf ? "one of several" : schema.$ref ? schema.$ref.split("/").pop() : "any");
  }
  function constraints(schema) {
    const out = [];
    const add = (label, value) => out.push(h("div", {}, h("span", { class: "muted" }, `${label}: `), h("code", {}, typeof value === "string" ? value : JSON.stringify(value))));
    if (!schema || typeof schema !== "object") return out;
    if ("default" in schema) add("default", schema.default);
    if (schema.enum) add("one of", schema.enum);
    for (const key of ["format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "multipleOf"]) {
      if (key in schema) add(key, schema[key]);
    }
    if (schema.examples) add("examples", schema.examples);
    return out;
  }

  function toolDetail(tool) {
    const m = tool.model;
    const s = tool.sent;
    const schema = m.inputSchema || {};
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const messages = ((m._meta || {})["mcp-webtools/tool"] || {}).messages || [];
    const titleId = uid("tool-title");
    return h("section", { class: "panel", "aria-labelledby": titleId },
      h("h2", { id: titleId, tabindex: -1 }, m.title || m.name, " ", h("code", {}, m.name)),
      h("p", {}, h("span", { class: "badge method" }, s.method), annotationBadges(m), " ",
        h("a", { href: `#/try/${encodeURIComponent(m.name)}` }, `Try ${m.name} →`)),
      h("h3", {}, "What the model sees"),
      h("p", { class: "desc" }, m.description || h("span", { class: "empty" }, "No description.")),
      Object.keys(props).length ? h("table", {},
        h("caption", {}, "Parameters (input schema)"),
        h("thead", {}, h("tr", {}, ["Name", "Type", "Required", "Description", "Rules"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, Object.entries(props).map(([name, p]) => h("tr", {},
          h("th", { scope: "row" }, h("code", {}, name)), h("td", {}, typeOf(p)), h("td", {}, required.has(name) ? "yes" : "no"),
          h("td", { class: "desc" }, (p && p.description) || ""), h("td", {}, constraints(p))))))
        : h("p", { class: "empty" }, "No parameters."),
      h("details", {}, h("summary", {}, "Input schema as JSON"), pre(json(schema), "Input schema")),
      m.outputSchema ? h("details", {}, h("summary", {}, "Output schema as JSON"), pre(json(m.outputSchema), "Output schema")) : null,
      h("h3", {}, "Spoken messages"),
      messages.length ? h("table", {}, h("caption", { class: "sr-only" }, "Spoken messages"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Text"))),
        h("tbody", {}, messages.map((msg) => h("tr", {}, h("td", {}, h("code", {}, msg.type)), h("td", {}, msg.content)))))
        : h("p", { class: "empty" }, "None."),
      tool.examples.length ? [h("h3", {}, "Examples"), tool.examples.map((example, i) => h("div", {},
        pre(json(example), `Example ${i + 1}`), h("a", { href: `#/try/${encodeURIComponent(m.name)}/${i}` }, `Try example ${i + 1}`)))] : null,
      h("details", {}, h("summary", {}, "tools/list entry as JSON"), pre(json(m), "tools/list entry")),
      h("h3", {}, "What is sent"),
      pre(`${s.method} ${s.url}`, "Method and URL template"),
      h("table", {}, h("caption", {}, "Where each argument goes"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Argument"), h("th", { scope: "col" }, "Goes to"), h("th", { scope: "col" }, "Required"))),
        h("tbody", {}, s.arguments.map((a) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, a.name)),
          h("td", {}, a.in === "path" ? "URL path" : a.in === "query" ? "query string" : "JSON body", a.fromConfig ? " (from the config's default)" : ""),
          h("td", {}, a.required ? "yes" : "no"))))),
      h("table", {}, h("caption", {}, "Headers (credentials shown as ***)"),
        h("tbody", {}, s.headers.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, h("code", {}, value)))))),
      h("dl", { class: "facts" },
        fact("Auth", s.auth.type + (s.auth.header ? ` — ${s.auth.header}` : "") + (s.auth.fallback ? `; without it: ${s.auth.fallback}` : "")),
        fact("Timeout", `${s.timeoutSeconds} s (queueing and retries included)`),
        fact("Attempts", `${s.maxAttempts} at most` + (s.retry.retryNonIdempotent ? ` (with ${s.retry.idempotencyHeader})` : "")),
        fact("Concurrency", s.maxConcurrency ? `${s.maxConcurrency} calls at once` : "server-wide cap only"),
        fact("Redirects", s.followRedirects ? "followed (same origin only)" : "not followed"),
        fact("Request body cap", `${s.maxRequestBytes} bytes`),
        s.maxResponseBytes ? fact("Response cap", `${s.maxResponseBytes} bytes`) : null,
        s.responseFields.length ? fact("Response fields", s.responseFields.join(", ")) : null,
        s.flatten ? fact("Flatten", "structuredContent is the flat variables map") : null,
        s.async ? fact("Async", `heartbeat every ${s.progressIntervalSeconds || 2} s`) : null,
        fact("Defined in", tool.source),
        fact("Endpoints", tool.endpoints.length ? tool.endpoints.join(", ") : "none (no endpoint serves it)")));
  }
  const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value)];

  /* ---------- Try: a form from the input schema ---------- */
  function resolve(schema, root, depth = 0) {
    if (schema && typeof schema.$ref === "string" && schema.$ref.startsWith("#/") && depth < 20) {
      let node = root;
      for (const part of schema.$ref.slice(2).split("/")) node = node && node[part.replace(/~1/g, "/").replace(/~0/g, "~")];
      if (node) return resolve({ ...node, ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$ref")) }, root, depth + 1);
    }
    return schema || {};
  }
  function simpleType(schema) {
    let type = schema.type;
    if (Array.isArray(type)) {
      const rest = type.filter((t) => t !== "null");
      type = rest.length === 1 ? rest[0] : null;
    }
    if (schema.anyOf || schema.oneOf || schema.allOf) return null;
    return type || null;
  }
  const SCALARS = ["string", "number", "integer", "boolean"];

  // One input for one value of a scalar or enum schema: {el, read() -> {set, value, error}, write(value)}.
  function scalarInput(schema, id, describedBy, name) {
    const type = simpleType(schema);
    const common = { id, "aria-describedby": describedBy };
    if (schema.enum || "const" in schema) {
      const values = schema.enum || [schema.const];
      const select = h("select", common, h("option", { value: "" }, "— not set —"),
        values.map((v, i) => h("option", { value: String(i) }, typeof v === "string" ? v : JSON.stringify(v))));
      return { el: select, read: () => (select.value === "" ? { set: false } : { set: true, value: values[Number(select.value)] }),
        write: (v) => { const i = values.findIndex((x) => JSON.stringify(x) === JSON.stringify(v)); select.value = i >= 0 ? String(i) : ""; } };
    }
    if (type === "boolean") {
      const select = h("select", common, h("option", { value: "" }, "— not set —"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
      return { el: select, read: () => (select.value === "" ? { set: false } : { set: true, value: select.value === "true" }),
        write: (v) => { select.value = v === true ? "true" : v === false ? "false" : ""; } };
    }
    if (type === "number" || type === "integer") {
      const input = h("input", { ...common, type: "number", step: type === "integer" ? (schema.multipleOf || 1) : (schema.multipleOf || "any"),
        min: schema.minimum, max: schema.maximum, inputmode: type === "integer" ? "numeric" : "decimal" });
      return { el: input, write: (v) => { input.value = v === undefined || v === null ? "" : String(v); }, read: () => {
        const text = input.value.trim();
        if (!text) return input.validity.badInput ? { set: true, error: "is not a number" } : { set: false };
        const value = Number(text);
        if (!Number.isFinite(value)) return { set: true, error: "is not a number" };
        if (type === "integer" && !Number.isInteger(value)) return { set: true, error: "must be a whole number" };
        return { set: true, value };
      } };
    }
    const format = schema.format;
    const kind = format === "email" ? "email" : format === "uri" ? "url" : format === "date" ? "date" : "text";
    // Free text reads better in a box; the server's pattern check stays the only one (JSON Schema patterns
    // are unanchored, HTML's are anchored, so the browser's own would disagree).
    const long = (schema.maxLength || 0) >= 200 || /description|notes|message|body|comment/i.test(name || "");
    const input = long && kind === "text" ? h("textarea", { ...common, rows: 3, maxlength: schema.maxLength }) :
      h("input", { ...common, type: kind, maxlength: schema.maxLength,
        placeholder: format === "date-time" ? "2025-03-10T10:00:00Z" : format === "time" ? "10:00:00Z" : null, spellcheck: "false" });
    return { el: input, write: (v) => { input.value = v === undefined || v === null ? "" : String(v); },
      read: () => (input.value === "" ? { set: false } : { set: true, value: input.value }) };
  }

  // A field for one property: scalar, array of scalars (a list editor), or JSON for anything else.
  function propertyField(name, rawSchema, required, root, formId, index) {
    const schema = resolve(rawSchema, root);
    const type = simpleType(schema);
    const id = `${formId}-f${index}`;
    const hintId = `${id}-hint`;
    const problemId = `${id}-problem`;
    const bits = [];
    if (schema.description) bits.push(schema.description);
    if ("default" in schema) bits.push(`Default: ${JSON.stringify(schema.default)} (filled in by the server when left unset).`);
    if (schema.format) bits.push(`Format: ${schema.format}.`);
    if (schema.pattern) bits.push(`Pattern: ${schema.pattern}`);
    if (schema.minimum !== undefined || schema.maximum !== undefined) bits.push(`Range: ${schema.minimum ?? "…"} to ${schema.maximum ?? "…"}.`);
    let control;
    let kind;
    const itemSchema = type === "array" ? resolve(schema.items || {}, root) : null;
    if (schema.enum || "const" in schema || SCALARS.includes(type)) {
      kind = "scalar";
      control = scalarInput(schema, id, `${hintId} ${problemId}`, name);
    } else if (type === "array" && itemSchema && (itemSchema.enum || SCALARS.includes(simpleType(itemSchema)))) {
      kind = "list";
      control = listEditor(itemSchema, id, `${hintId} ${problemId}`, name);
      bits.push("A list: add one item per entry.");
    } else {
      kind = "json";
      const area = h("textarea", { id, "aria-describedby": `${hintId} ${problemId}`, spellcheck: "false", rows: 4, placeholder: type === "object" ? "{}" : "JSON" });
      control = { el: area, write: (v) => { area.value = v === undefined ? "" : json(v); }, read: () => {
        if (!area.value.trim()) return { set: false };
        try { return { set: true, value: JSON.parse(area.value) }; } catch (e) { return { set: true, error: `is not valid JSON (${e.message})` }; }
      } };
      bits.push(`JSON (${typeOf(schema)}).`);
    }
    if (required) control.el.setAttribute("aria-required", "true");
    const problem = h("span", { class: "problem", id: problemId });
    const wrapper = h("div", { class: "field", "data-field": name },
      h("label", { for: id }, name, required ? h("span", { "aria-hidden": "true" }, " *") : null, required ? h("span", { class: "sr-only" }, " (required)") : null,
        " ", h("span", { class: "badge" }, kind === "json" ? "JSON" : typeOf(schema))),
      h("span", { class: "hint", id: hintId }, bits.join(" · ")), control.el, problem);
    return { name, required, wrapper, control, problem };
  }

  function listEditor(itemSchema, id, describedBy, name) {
    const items = h("div", { class: "list-items", role: "group", "aria-label": `${name} items` });
    const rows = [];
    let n = 0;
    const add = (value) => {
      const itemId = `${id}-${++n}`;
      const input = scalarInput(itemSchema, itemId, describedBy, name);
      const row = h("div", { class: "list-item" }, input.el);
      input.el.setAttribute("aria-label", `${name} item`);
      const entry = { input, row };
      row.append(h("button", { type: "button", "aria-label": `Remove this ${name} item`, onclick: () => {
        rows.splice(rows.indexOf(entry), 1); row.remove(); items.dispatchEvent(new Event("input", { bubbles: true }));
      } }, "Remove"));
      rows.push(entry);
      items.append(row);
      if (value !== undefined) input.write(value);
      return input;
    };
    // The field's label points here (clicking it starts a new item); the button says what it does.
    const addButton = h("button", { type: "button", id, "aria-label": `Add ${name} item`, onclick: () => { add().el.focus(); } }, `Add ${name} item`);
    const el = h("div", {}, items, addButton);
    return { el, write: (v) => { rows.splice(0).forEach((r) => r.row.remove()); (Array.isArray(v) ? v : []).forEach((x) => add(x)); },
      read: () => {
        if (!rows.length) return { set: false };
        const values = [];
        for (const r of rows) {
          const got = r.input.read();
          if (got.error) return { set: true, error: `has an item that ${got.error}` };
          if (got.set) values.push(got.value);
        }
        return { set: true, value: values };
      } };
  }

  function renderTry() {
    const pickerHadFocus = document.activeElement && document.activeElement.id === "try-tool";  // arrow keys pick tools
    const [name, exampleIndex] = routeArg().split("/");
    const tool = state.tools.find((t) => t.name === name) || state.tools[0];
    const picker = h("select", { id: "try-tool", onchange: () => { location.hash = `#/try/${encodeURIComponent(picker.value)}`; route(); } },
      state.tools.map((t) => h("option", { value: t.name, selected: t === tool ? "selected" : null }, `${t.name} — ${t.sent.method}`)));
    if (!tool) { main.replaceChildren(h("p", { class: "empty" }, "No tools.")); return; }
    const form = buildForm(tool);
    main.replaceChildren(h("h1", {}, "Try a tool"),
      h("div", { class: "panel" }, h("div", { class: "field" }, h("label", { for: "try-tool" }, "Tool"), picker),
        h("p", { class: "desc" }, tool.model.description || ""),
        h("p", { class: "muted" }, "Dry run shows the exact request and sends nothing. Call runs the tool for real, as an MCP client's tools/call would ",
          "(validation, limits, audit log, metrics), and shows the spoken messages as they arrive, then the result.")),
      form.element);
    if (exampleIndex !== undefined && tool.examples[Number(exampleIndex)]) form.fill(tool.examples[Number(exampleIndex)]);
    if (pickerHadFocus) picker.focus();
  }

  function buildForm(tool) {
    const formId = uid("form");
    const schema = tool.model.inputSchema || {};
    const required = new Set(schema.required || []);
    const fields = Object.entries(schema.properties || {}).map(([name, s], i) => propertyField(name, s, required.has(name), schema, formId, i));
    const known = new Set(fields.map((f) => f.name));
    const problems = h("div", { class: "problems", id: `${formId}-problems`, role: "status", "aria-live": "polite" });
    const jsonArea = h("textarea", { id: `${formId}-json`, rows: 8, spellcheck: "false", "aria-describedby": `${formId}-json-hint` });
    const jsonBox = h("div", { class: "field", hidden: true }, h("label", { for: `${formId}-json` }, "Arguments (JSON object)"),
      h("span", { class: "hint", id: `${formId}-json-hint` }, "Exactly the arguments sent in tools/call. Switch back to the form to see them field by field."), jsonArea);
    const dryOutput = h("section", { class: "panel", "aria-label": "Dry run", id: `${formId}-dry-run`, hidden: true });
    const output = h("section", { class: "panel", "aria-label": "Call", id: `${formId}-call`, hidden: true });
    let mode = "form";
    const modeButton = h("button", { type: "button", "aria-pressed": "false", onclick: () => {
      if (mode === "form") {
        const got = readForm();
        jsonArea.value = json(got.arguments);
        mode = "json";
      } else {
        let value;
        try { value = JSON.parse(jsonArea.value || "{}"); } catch (e) { showProblems([{ field: "arguments", message: `are not valid JSON (${e.message})` }]); return; }
        fill(value);
        mode = "form";
      }
      modeButton.setAttribute("aria-pressed", String(mode === "json"));
      modeButton.textContent = mode === "json" ? "Edit as a form" : "Edit as JSON";
      jsonBox.hidden = mode !== "json";
      fieldBox.hidden = mode === "json";
      check();
    } }, "Edit as JSON");
    const fieldBox = h("div", {}, fields.length ? fields.map((f) => f.wrapper) : h("p", { class: "empty" }, "This tool takes no arguments."));
    let extra = {};  // arguments from JSON or an example that have no field of their own

    function readForm() {
      if (mode === "json") {
        try {
          const value = JSON.parse(jsonArea.value || "{}");
          if (!value || typeof value !== "object" || Array.isArray(value)) return { arguments: {}, errors: [{ field: "arguments", message: "must be a JSON object" }] };
          return { arguments: value, errors: [] };
        } catch (e) { return { arguments: {}, errors: [{ field: "arguments", message: `are not valid JSON (${e.message})` }] }; }
      }
      const args = { ...extra };
      const errors = [];
      for (const f of fields) {
        const got = f.control.read();
        if (got.error) errors.push({ field: f.name, message: got.error });
        else if (got.set) args[f.name] = got.value;
        else if (f.required) errors.push({ field: f.name, message: "is required", local: true });
      }
      return { arguments: args, errors };
    }
    function fill(value) {
      extra = {};
      for (const f of fields) f.control.write(value[f.name]);
      for (const [k, v] of Object.entries(value)) if (!known.has(k)) extra[k] = v;
    }
    function showProblems(list) {
      for (const f of fields) { f.problem.textContent = ""; f.control.el.removeAttribute("aria-invalid"); }
      const unplaced = [];
      for (const p of list) {
        const top = String(p.field).split(/[.[]/)[0];
        const f = fields.find((x) => x.name === top);
        if (f && mode === "form") {
          f.problem.textContent = f.problem.textContent ? `${f.problem.textContent}; ${p.message}` : `${p.field} ${p.message}`;
          f.control.el.setAttribute("aria-invalid", "true");
        } else unplaced.push(p);
      }
      problems.replaceChildren(...(list.length ? [h("p", { class: "problem" }, `${list.length} problem${list.length === 1 ? "" : "s"} (as the server's validator says):`),
        h("ul", {}, list.map((p) => h("li", {}, h("code", {}, p.field), " ", p.message)))] : []));
      return unplaced;
    }
    // As the form is filled: basic checks here, then the tool's own validator on the server.
    let timer = null;
    let seq = 0;
    async function check() {
      const got = readForm();
      const mine = ++seq;
      if (got.errors.some((e) => !e.local)) { showProblems(got.errors); return null; }
      try {
        const answer = await (await post("dry-run", { tool: tool.name, arguments: got.arguments })).json();
        if (mine === seq) showProblems(answer.problems);
        return answer;
      } catch (error) {
        if (error instanceof AuthError) return start();
        problems.replaceChildren(h("p", { class: "problem" }, error.message));
        return null;
      }
    }
    const schedule = () => { clearTimeout(timer); timer = setTimeout(check, 300); };

    async function dryRun() {
      clearTimeout(timer);
      const answer = await check();
      if (!answer) return;
      dryOutput.hidden = false;
      if (answer.ok) {
        dryOutput.replaceChildren(h("h2", {}, "Dry run: the exact request"),
          h("p", { class: "muted" }, "Nothing was sent. Secrets are shown as ***. This is what `mcp-webtools call --dry-run` prints."),
          pre(answer.request, "The request that would be sent"));
        announce("Dry run ready: the request is shown below.");
      } else {
        dryOutput.replaceChildren(h("h2", {}, "Dry run: nothing would be sent"),
          h("p", { class: "problem" }, "The arguments do not pass the tool's input schema; a call would be refused with these problems:"),
          h("ul", {}, answer.problems.map((p) => h("li", {}, h("code", {}, p.field), " ", p.message))));
        announce(`Dry run: ${answer.problems.length} problem(s).`);
      }
    }

    async function call() {
      clearTimeout(timer);
      check();  // what the problems box says must be about these arguments, not an answer still on its way
      const got = readForm();
      if (got.errors.some((e) => !e.local)) { showProblems(got.errors); announce("Fix the arguments first."); return; }
      callButton.disabled = true;
      const timeline = h("ol", { class: "timeline", "aria-label": "Spoken messages and progress, in order" });
      const resultBox = h("div", { "aria-live": "polite" });
      const status = h("p", { role: "status" }, "Calling…");
      output.hidden = false;
      output.replaceChildren(h("h2", {}, `Call: ${tool.name}`), status,
        h("h3", {}, "Spoken messages and progress"), timeline, resultBox);
      const began = performance.now();
      let events = 0;
      try {
        const response = await post("call", { tool: tool.name, arguments: got.arguments });
        for await (const event of lines(response)) {
          if (event.type === "progress") {
            events += 1;
            timeline.append(h("li", {}, h("span", { class: "at" }, `+${fmtMs(event.ms)}`),
              event.message ? h("strong", {}, "“", event.message, "”") : h("span", { class: "muted" }, `heartbeat ${event.progress}`),
              event.total !== null ? h("span", { class: "muted" }, " (final)") : null));
            if (event.message) announce(`Spoken: ${event.message}`);
          } else if (event.type === "result") {
            status.textContent = `Finished in ${fmtMs(event.ms)} (${fmtMs(performance.now() - began)} in this browser).`;
            resultBox.replaceChildren(resultView(event.result));
            announce(event.result.isError ? "The call ended with a tool error." : "The call succeeded.");
          } else if (event.type === "error") {
            status.textContent = "";
            resultBox.replaceChildren(h("p", { class: "problem", role: "alert" }, event.message));
          }
        }
        if (!events) timeline.replaceWith(h("p", { class: "empty" }, "None: this tool has no spoken messages and sent no progress."));
      } catch (error) {
        if (error instanceof AuthError) return start();
        status.textContent = "";
        resultBox.replaceChildren(h("p", { class: "problem", role: "alert" }, error.message));
      } finally {
        callButton.disabled = false;
      }
    }

    const dryButton = h("button", { type: "submit" }, "Dry run");
    const callButton = h("button", { type: "button", class: "primary", onclick: call }, "Call");
    const examples = tool.examples.map((example, i) => h("button", { type: "button", onclick: () => { fill(example); check(); } }, `Fill example ${i + 1}`));
    const form = h("form", { class: "panel", "aria-label": `Arguments for ${tool.name}`, novalidate: true,
      onsubmit: (event) => { event.preventDefault(); dryRun(); }, oninput: schedule, onchange: schedule },
    h("h2", {}, "Arguments"), h("p", { class: "muted" }, "Fields marked * are required. Unset fields are left out; the server fills in defaults."),
    h("div", { class: "actions" }, modeButton, examples), fieldBox, jsonBox, problems,
    h("div", { class: "actions" }, dryButton, callButton,
      h("button", { type: "button", onclick: () => { fill({}); jsonArea.value = "{}"; output.hidden = dryOutput.hidden = true; check(); } }, "Clear")));
    check();
    return { element: h("div", {}, form, dryOutput, output), fill: (value) => { fill(value); check(); } };
  }

  function resultView(result) {
    const meta = result._meta || {};
    const http = meta["mcp-webtools/http"] || {};
    const content = result.content || [];
    return h("div", {},
      h("p", {}, result.isError ? h("span", { class: "badge bad" }, "isError: true") : h("span", { class: "badge ok" }, "success"),
        http.status ? ` upstream answered HTTP ${http.status}` : " no HTTP answer",
        http.elapsedMs !== undefined ? ` in ${fmtMs(http.elapsedMs)}` : "", http.attempts ? `, ${http.attempts} attempts` : ""),
      h("h3", {}, "Content (what the model reads)"),
      content.length ? content.map((item, i) => item.type === "text" ? pre(item.text, `Content ${i + 1}, text`) :
        item.type === "image" ? h("img", { src: `data:${item.mimeType};base64,${item.data}`, alt: `Image content ${i + 1} (${item.mimeType})` }) :
          pre(json(item), `Content ${i + 1}`)) : h("p", { class: "empty" }, "No content."),
      h("h3", {}, "Structured content"),
      result.structuredContent !== undefined ? pre(json(result.structuredContent), "Structured content") : h("p", { class: "empty" }, "None."),
      h("h3", {}, "_meta"), pre(json(meta), "_meta"),
      h("details", {}, h("summary", {}, "The whole result as JSON"), pre(json(result), "The whole result")));
  }

  /* ---------- Calls ---------- */
  function callMatches(call) {
    const f = state.filters;
    if (f.tool && call.tool !== f.tool) return false;
    if (f.outcome && call.outcome !== f.outcome) return false;
    if (f.errors && call.outcome === "ok") return false;
    if (f.text) {
      const hay = `${call.client} ${call.request_id} ${call.tool} ${call.status}`.toLowerCase();
      if (!hay.includes(f.text.toLowerCase())) return false;
    }
    return true;
  }
  let callsView = null;
  function renderCalls() {
    const selected = routeArg();
    if (!callsView || !main.contains(callsView.root)) callsView = buildCallsView();
    const shown = state.calls.filter(callMatches);
    callsView.count.textContent = `${shown.length} shown of ${state.calls.length} kept (the last ${state.overview.ring} calls of this process)`;
    callsView.body.replaceChildren(...(shown.length ? shown.map((c) => h("tr", { class: String(c.id) === selected ? "selected" : null },
      h("td", {}, h("a", { href: `#/calls/${c.id}`, "aria-label": `Details of call ${c.id}: ${c.tool} at ${fmtTime(c.started)}` }, fmtTime(c.started))),
      h("td", {}, c.tool), h("td", {}, c.client), h("td", {}, outcomeBadge(c.outcome)), h("td", { class: "num" }, c.status ?? "–"),
      h("td", { class: "num" }, c.attempts), h("td", { class: "num" }, fmtMs(c.duration_ms))))
      : [h("tr", {}, h("td", { colspan: 7, class: "empty" }, state.calls.length ? "No call matches the filters." : "No calls yet. Try a tool, or call one from an MCP client."))]));
    if (callsView.selected !== selected) {
      const call = state.calls.find((c) => String(c.id) === selected);
      callsView.detail.replaceChildren(...(call ? callDetail(call) : selected ? [h("p", { class: "empty" }, "That call is no longer kept.")] : []));
      callsView.detail.hidden = !selected;
      callsView.selected = selected;
      if (selected && call) callsView.detail.querySelector("h2").focus();
    }
  }
  function buildCallsView() {
    const tools = [...new Set([...state.tools.map((t) => t.name), ...state.calls.map((c) => c.tool)])].sort();
    const select = (id, label, options, key) => h("div", { class: "field" }, h("label", { for: id }, label),
      h("select", { id, onchange: (e) => { state.filters[key] = e.target.value; renderCalls(); } },
        h("option", { value: "" }, "all"), options.map((o) => h("option", { value: o, selected: state.filters[key] === o ? "selected" : null }, o))));
    const count = h("p", { class: "muted", "aria-live": "polite" });
    const body = h("tbody", {});
    const detail = h("section", { class: "panel", "aria-label": "Call details", hidden: true });
    const root = h("div", {}, h("h1", {}, "Recent calls"),
      h("p", { class: "muted" }, "Every tool call this server process finished (MCP clients and this console), newest first, redacted as in the audit log. Updates live."),
      h("div", { class: "filters", role: "search", "aria-label": "Filter calls" },
        select("filter-tool", "Tool", tools, "tool"), select("filter-outcome", "Outcome", OUTCOMES, "outcome"),
        h("div", { class: "field" }, h("label", { for: "filter-text" }, "Client or request id"),
          h("input", { type: "search", id: "filter-text", value: state.filters.text, oninput: (e) => { state.filters.text = e.target.value; renderCalls(); } })),
        h("div", { class: "field check" }, h("input", { type: "checkbox", id: "filter-errors", checked: state.filters.errors,
          onchange: (e) => { state.filters.errors = e.target.checked; renderCalls(); } }), " ", h("label", { for: "filter-errors" }, "Only failed calls"))),
      count, detail,
      h("div", { class: "panel" }, h("table", {}, h("caption", { class: "sr-only" }, "Recent calls, newest first"),
        h("thead", {}, h("tr", {}, ["Time", "Tool", "Client", "Outcome", "Status", "Attempts", "Duration"].map((t, i) =>
          h("th", { scope: "col", class: i >= 4 ? "num" : null }, t)))), body)));
    main.replaceChildren(root);
    return { root, count, body, detail, selected: null };
  }
  function callDetail(call) {
    return [h("h2", { tabindex: -1 }, `Call ${call.id}: ${call.tool}`), h("dl", { class: "facts" },
      fact("Started", fmtDate(call.started)), fact("Ended", fmtDate(call.ended)), fact("Tool", call.tool),
      fact("Request", `${call.method} ${call.url_template}`), fact("Client", call.client),
      fact("Outcome", outcomeBadge(call.outcome)), fact("HTTP status", call.status ?? "none (no HTTP answer)"),
      fact("Attempts", call.attempts), fact("Duration", `${fmtMs(call.duration_ms)} (queueing and every attempt)`),
      fact("Request body", `${call.request_bytes} bytes`), fact("Response body", `${call.response_bytes} bytes`),
      fact("Request id", call.request_id ?? "–")),
    h("p", {}, h("a", { href: "#/calls" }, "Close details"), " · ", h("a", { href: `#/try/${encodeURIComponent(call.tool)}` }, `Try ${call.tool}`))];
  }

  /* ---------- Config ---------- */
  async function renderConfig() {
    let config;
    try { config = await getJSON("config"); } catch (error) { return failed(error); }
    if (page() !== "config") return;
    const last = config.last_reload || state.lastReload;
    const problemList = (items, label) => items.length ? h("ul", { "aria-label": label }, items.map((e) => h("li", {},
      h("code", {}, e.file), e.tool ? [" · tool ", h("code", {}, e.tool)] : null, e.field ? [" · field ", h("code", {}, e.field)] : null,
      h("div", {}, e.message)))) : h("p", { class: "empty" }, "None.");
    const reloadButton = config.reloads ? h("button", { type: "button", onclick: async () => {
      reloadButton.disabled = true;
      try { state.lastReload = await (await post("reload", {})).json(); } catch (error) { if (error instanceof AuthError) return start(); announce(error.message); }
      reloadButton.disabled = false;
      renderConfig();
    } }, "Reload now") : null;
    main.replaceChildren(h("h1", {}, "Configuration"),
      h("section", { class: "panel", "aria-labelledby": "last-reload" }, h("h2", { id: "last-reload" }, "Last reload"),
        last ? [h("p", {}, last.ok ? h("span", { class: "badge ok" }, "ok") : h("span", { class: "badge bad" }, "failed"), " ",
          `${fmtDate(last.at)} · trigger: ${last.trigger} · `, last.summary),
        !last.ok ? h("p", { class: "problem" }, `Still serving the last good set (${last.tools} tools). Fix these and save: the file is tried again.`) : null,
        h("h3", {}, `Errors (${last.errors.length})`), problemList(last.errors, "Reload errors"),
        h("h3", {}, `Warnings (${last.warnings.length})`), problemList(last.warnings, "Reload warnings")]
          : h("p", { class: "empty" }, `No reload since start-up (${fmtDate(config.loaded_at)}).`),
        h("p", { class: "muted" }, config.watching ? `Watching the files every ${config.watch_interval} s; SIGHUP reloads too.` :
          config.reloads ? "Not watching the files (--no-watch); SIGHUP or Reload now reloads." : "This server does not reload its config."),
        reloadButton ? h("div", { class: "actions" }, reloadButton) : null),
      h("section", { class: "panel", "aria-labelledby": "files-title" }, h("h2", { id: "files-title" }, "Files serving now"),
        h("p", { class: "muted" }, `${config.tools} tools, loaded ${fmtDate(config.loaded_at)}`, config.paths.length ? ` from ${config.paths.join(", ")}` : ""),
        h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "File"), h("th", { scope: "col", class: "num" }, "Tools"), h("th", { scope: "col" }, "Names"))),
          h("tbody", {}, config.files.map((f) => h("tr", {}, h("td", {}, h("code", {}, f.path)), h("td", { class: "num" }, f.tools.length),
            h("td", {}, f.tools.map((name, i) => [i ? ", " : "", h("a", { href: `#/tools/${encodeURIComponent(name)}` }, name)])))))),
        h("h3", {}, `Warnings of the set serving (${config.warnings.length})`), problemList(config.warnings, "Warnings of the set serving")));
  }

  /* ---------- Health ---------- */
  const CHARTS = [  // `floor`: the least top of the scale, so that a quiet server draws a flat line low down
    { key: "calls_per_second", title: "Calls per second", unit: "/s", window: "rate_window_seconds", floor: 1 },
    { key: "error_rate", title: "Error rate", unit: "%", scale: 100, window: "quantile_window_seconds", floor: 100, fixed: true },
    { key: "p50_ms", second: "p95_ms", title: "Latency p50 / p95", unit: "ms", window: "quantile_window_seconds", floor: 10 },
    { key: "in_flight", title: "Calls in flight", unit: "", floor: 1 },
  ];
  async function renderHealth() {
    if (!state.healthTimer) state.healthTimer = setInterval(() => { if (page() === "health" && !document.hidden) renderHealth(); }, 2000);
    let report;
    try { report = await getJSON("health"); } catch (error) { return failed(error); }
    if (page() !== "health") return;
    const points = report.points;
    const latest = points[points.length - 1] || {};
    const t = report.totals;
    const fresh = !document.getElementById("health-root");
    const root = h("div", { id: "health-root" }, h("h1", {}, "Health"),
      h("p", { class: "muted" }, `From this process's metrics (as at /metrics), sampled every ${report.sample_seconds} s: the last ${span(points)}. `,
        `Since start: ${t.calls} calls, ${t.errors} not ok.`),
      h("div", { class: "charts" }, CHARTS.map((c) => chart(c, points, latest, report))),
      h("section", { class: "panel", "aria-labelledby": "outcomes-title" }, h("h2", { id: "outcomes-title" }, "Calls by outcome since start"),
        Object.keys(t.outcomes).length ? h("table", {}, h("tbody", {}, Object.entries(t.outcomes).map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, outcomeBadge(k)), h("td", { class: "num" }, v)))))
          : h("p", { class: "empty" }, "No calls yet.")));
    main.replaceChildren(root);
    if (fresh) main.focus();
  }
  function span(points) {
    const seconds = points.length ? points[points.length - 1].t - points[0].t : 0;
    return seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
  }
  function chart(spec, points, latest, report) {
    const scale = spec.scale || 1;
    const fmt = (v) => v === null || v === undefined ? "–" : `${(v * scale).toFixed(spec.unit === "ms" ? 1 : spec.unit === "" ? 0 : 2)}${spec.unit ? ` ${spec.unit}` : ""}`;
    const values = points.flatMap((p) => [p[spec.key], spec.second ? p[spec.second] : null]).filter((v) => v !== null && v !== undefined).map((v) => v * scale);
    const max = spec.fixed ? spec.floor : Math.max(spec.floor, ...values.map((v) => v * 1.1));
    const W = 400, H = 150, P = 4;
    const t0 = points.length ? points[0].t : 0, t1 = points.length ? points[points.length - 1].t : 1;
    const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
    const y = (v) => H - 18 - (v / max) * (H - 30);
    const path = (key) => {
      let d = "", pen = false;
      for (const p of points) {
        const v = p[key];
        if (v === null || v === undefined) { pen = false; continue; }
        d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(v * scale).toFixed(1)}${pen ? "" : "l0.1,0"}`;  // a lone point shows as a dot
        pen = true;
      }
      return d;
    };
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    const add = (tag, attrs, text) => { const el = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); if (text) el.textContent = text; svg.append(el); };
    add("line", { class: "axis", x1: 0, x2: W, y1: H - 18, y2: H - 18 });
    add("text", { class: "svgtext", x: P, y: 12 }, fmt(max / scale));
    add("line", { class: "axis", x1: 0, x2: W, y1: y(max), y2: y(max), "stroke-dasharray": "2 4" });
    add("text", { class: "svgtext", x: P, y: H - 4 }, points.length ? new Date(t0 * 1000).toLocaleTimeString([], { hour12: false }) : "");
    add("text", { class: "svgtext", x: W - 60, y: H - 4 }, points.length ? new Date(t1 * 1000).toLocaleTimeString([], { hour12: false }) : "");
    add("path", { class: "line", d: path(spec.key) });
    if (spec.second) add("path", { class: "line second", d: path(spec.second) });
    const now = spec.second ? `${fmt(latest[spec.key])} / ${fmt(latest[spec.second])}` : fmt(latest[spec.key]);
    const over = spec.window ? ` (over the last ${report[spec.window]} s)` : "";
    const titleId = uid("chart");
    return h("section", { class: "panel chart", "aria-labelledby": titleId, role: "group" },
      h("h2", { id: titleId }, spec.title), h("p", { class: "value", "aria-label": `${spec.title} now: ${now}${over}` }, now),
      h("p", { class: "muted" }, `now${over}`),
      spec.second ? h("p", { class: "legend", "aria-hidden": "true" }, h("span", {}, h("i", { class: "key" }), "p50"), h("span", {}, h("i", { class: "key second" }), "p95")) : null,
      svg);
  }

  /* ---------- keyboard: "/" finds a tool ---------- */
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      event.preventDefault();
      if (page() !== "tools") location.hash = "#/tools";
      const search = $("tool-search");
      if (search) search.focus();
      else setTimeout(() => { const later = $("tool-search"); if (later) later.focus(); }, 0);
    }
  });

  start();
})();
