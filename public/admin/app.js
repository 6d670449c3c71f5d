// The admin console: one page over the Worker's own JSON API. The API key lives in this tab's
// sessionStorage only and goes out as `Authorization: Bearer`; every action is an API call
// with the API's own checks. Text from customers and TikTok is only ever set as text.
"use strict";

const KEY_SLOT = "tmw.console.key";
const state = { key: null, admin: false, accounts: [], account: "", conv: null, older: null, rules: null, view: 0, replyKey: null };

const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children (strings become text nodes, never HTML). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Plain words for the API's error codes people meet in the console. */
const PLAIN = {
  unauthorized: "This API key is not valid.",
  forbidden: "This key may not do that: it needs an admin key or another account.",
  account_needs_reauth: "This TikTok account must be connected again (Accounts → Connect).",
  tiktok_message_blocked:
    "TikTok did not deliver this: the customer has not written in the last 48 hours, or the business already sent as many messages as TikTok allows until the customer writes again.",
  tiktok_rate_limited: "TikTok asks to slow down. Try again in a minute.",
  tiktok_permission_denied: "TikTok refused: the account did not grant the permission this needs.",
  tiktok_timeout: "TikTok did not answer in time. It may still arrive; check the conversation before sending again.",
  tiktok_unreachable: "TikTok could not be reached. Try again shortly.",
  image_not_allowed: "TikTok does not allow images in this conversation. Send text instead.",
  image_fetch_failed: "The image could not be downloaded from that URL.",
  not_found: "Not found.",
};

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(PLAIN[e.code] || e.message || `The Worker answered ${status}.`);
    this.status = status;
    this.code = e.code || "";
    this.field = e.details && e.details.field;
    this.detail = e.message || "";
  }
}

async function api(method, path, body, extra) {
  const headers = { authorization: `Bearer ${state.key}`, ...(extra || {}) };
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin", cache: "no-store",
  });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
const whenSecs = (s) => (s ? when(s * 1000) : "—");
const whenIso = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function flash(text, bad) {
  const f = $("#flash");
  f.textContent = text;
  f.className = bad ? "flash bad" : "flash";
  f.hidden = !text;
}

// ---------- sign in ----------

async function signIn(key) {
  state.key = key;
  try {
    const page = await api("GET", "/v1/accounts?limit=100");
    state.admin = true;
    state.accounts = page.accounts || [];
  } catch (e) {
    if (e.status !== 403) { state.key = null; throw e; }
    state.admin = false;
    state.accounts = [];
  }
  sessionStorage.setItem(KEY_SLOT, key);
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#role").textContent = state.admin ? "admin key" : "sender key";
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = !state.admin;
  route();
}

function signOut() {
  sessionStorage.removeItem(KEY_SLOT);
  state.key = null;
  location.hash = "";
  location.reload();
}

// ---------- tabs ----------

const TABS = { accounts: showAccounts, inbox: showInbox, rules: showRules, failures: showFailures, settings: showSettings };

function route() {
  let tab = location.hash.replace(/^#/, "").split("/")[0];
  if (!Object.hasOwn(TABS, tab) || (!state.admin && tab !== "inbox")) tab = state.admin ? "accounts" : "inbox";
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${tab}`;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.getAttribute("href") === `#${tab}`);
  flash("");
  TABS[tab]().catch((e) => flash(e.message, true));
}

// ---------- accounts ----------

function avatar(url, name) {
  const initial = h("span", { class: "avatar", "aria-hidden": "true" }, (name || "?").slice(0, 1).toUpperCase());
  if (!url) return initial;
  const img = h("img", { class: "avatar", src: url, alt: "" });
  img.addEventListener("error", () => img.replaceWith(initial));
  return img;
}

async function loadAccounts() {
  const page = await api("GET", "/v1/accounts?limit=100");
  state.accounts = page.accounts || [];
  return state.accounts;
}

async function showAccounts() {
  const list = $("#accounts");
  const accounts = await loadAccounts();
  list.replaceChildren(...accounts.map((a) => {
    const reauth = a.status === "needs_reauth";
    return h("li", { class: reauth ? "card alert" : "card", "data-account": a.id },
      h("div", { class: "who" }, avatar(a.profile_image, a.display_name || a.username),
        h("div", {}, h("strong", {}, a.display_name || a.username || a.id),
          h("div", { class: "small" }, a.username ? `@${a.username}` : "", " ", a.id))),
      reauth
        ? h("span", { class: "badge bad" }, "Needs reconnecting: TikTok no longer accepts its authorisation")
        : h("span", { class: "badge ok" }, "Active"),
      h("div", { class: "small" }, "Scopes: ", (a.scopes || []).join(", ")),
      h("div", { class: "small" }, "Access token until ", whenSecs(a.access_token_expires_at),
        " · refresh until ", whenSecs(a.refresh_token_expires_at)),
      h("div", { class: "bar" },
        reauth ? h("button", { type: "button", onclick: connect }, "Connect again") : null,
        h("button", { type: "button", class: "quiet danger-text", onclick: () => disconnect(a) }, "Disconnect")));
  }));
  $("#accounts-empty").hidden = accounts.length > 0;
}

async function connect() {
  // The start answers JSON to the console: the consent URL, and the state's cookie for this
  // browser (also when starting needs an admin key, which a plain link could not send).
  const back = `${location.origin}/admin#accounts`;
  const r = await api("GET", `/oauth/start?${q({ return_to: back, format: "json" })}`);
  location.assign(r.authorize_url);
}

async function disconnect(a) {
  if (!confirm(`Disconnect ${a.display_name || a.id}? Its tokens are revoked at TikTok and wiped here; auto-replies stop.`)) return;
  try {
    await api("DELETE", `/v1/accounts/${encodeURIComponent(a.id)}`);
    flash(`${a.display_name || a.id} is disconnected.`);
    await showAccounts();
  } catch (e) { flash(e.message, true); }
}

// ---------- inbox ----------

async function showInbox() {
  state.conv = null;
  $(".inbox").classList.remove("open");
  $("#thread").hidden = true;
  const select = $("#inbox-account");
  const typed = $("#inbox-account-id");
  if (state.admin) {
    if (!state.accounts.length) await loadAccounts();
    select.replaceChildren(...state.accounts.map((a) => h("option", { value: a.id }, a.display_name || a.username || a.id)));
    select.hidden = false;
    typed.hidden = true;
    if (!state.account || !state.accounts.some((a) => a.id === state.account)) state.account = state.accounts[0] ? state.accounts[0].id : "";
    select.value = state.account;
  } else {
    select.parentElement.hidden = true;
    typed.hidden = false;
    state.account = typed.value.trim();
  }
  await loadConversations();
}

function customerName(c) {
  const cu = c.customer || {};
  return cu.display_name || (cu.handle ? `@${cu.handle}` : "Customer");
}

async function loadConversations() {
  const list = $("#conversations");
  if (!state.account) { list.replaceChildren(h("li", { class: "hint" }, "Choose an account.")); return; }
  const page = await api("GET", `/v1/conversations?${q({ account_id: state.account, limit: 100 })}`);
  list.replaceChildren(...page.conversations.map((c) => {
    const li = h("li", { "data-conversation": c.id, class: state.conv && state.conv.id === c.id ? "selected" : "" },
      h("div", { class: "line" }, h("span", { class: "name" }, customerName(c)),
        c.unread ? h("span", { class: "badge count", title: "unread" }, c.unread) : null,
        c.bot && c.bot.paused ? h("span", { class: "badge warn" }, "bot paused") : null),
      h("div", { class: "preview" }, c.last_message && c.last_message.text ? c.last_message.text : `(${(c.last_message && c.last_message.type) || "message"})`),
      h("div", { class: "small" }, when(c.last_message_at_ms)));
    li.addEventListener("click", () => openConversation(c.id));
    return li;
  }));
  if (!page.conversations.length) list.replaceChildren(h("li", { class: "hint" }, "No conversation stored yet."));
}

function messageItem(m) {
  const body = [];
  if (m.text) body.push(h("span", { class: "text" }, m.text));
  if (m.image) body.push(h("em", {}, `[image ${m.image.media_id || ""}]`));
  if (m.video) body.push(h("em", {}, "[video]"));
  if (m.share_post) body.push(h("em", {}, "[shared post] ", m.share_post.embed_url || m.share_post.item_id || ""));
  if (m.template) body.push(h("em", {}, "[card] ", m.template.title || ((m.template.elements || [])[0] || {}).title || ""));
  if (m.button_id) body.push(h("span", { class: "small" }, ` (tapped ${m.button_id})`));
  if (!body.length) body.push(h("em", {}, `(${m.type || "message"})`));
  const who = { customer: "customer", auto_reply: `auto-reply · ${m.rule || ""}`, api: "sent through the API", staff: "staff in TikTok", tiktok: "TikTok automation" }[m.source] || m.source || "";
  return h("li", { class: `msg ${m.direction || ""} ${m.source || ""}`, "data-source": m.source || "" },
    ...body, h("span", { class: "meta" }, who, " · ", when(m.timestamp_ms)));
}

async function openConversation(id, keepOlder) {
  // Answers to an earlier click (another conversation, another account) are dropped.
  const view = ++state.view;
  const account = state.account;
  const path = `/v1/conversations/${encodeURIComponent(id)}/messages?${q({ account_id: account, limit: 50 })}`;
  const page = await api("GET", path);
  if (view !== state.view || account !== state.account) return;
  const c = page.conversation || { id, customer: {}, bot: {}, window: {} };
  state.conv = c;
  state.older = page.cursor || null;
  $(".inbox").classList.add("open");
  $("#thread").hidden = false;
  $("#thread-title").textContent = customerName(c);
  const win = $("#thread-window");
  const open = c.window && c.window.open;
  win.textContent = page.source === "tiktok" ? "from TikTok's listing" : open ? "reply window open" : "reply window closed";
  win.className = open ? "badge ok" : "badge warn";
  renderPause();
  const msgs = (page.messages || []).slice();
  if (page.order !== "oldest_first" && page.source !== "tiktok") msgs.reverse();
  $("#messages").replaceChildren(...msgs.map(messageItem));
  $("#thread-older").hidden = !state.older;
  for (const li of document.querySelectorAll("#conversations li")) li.classList.toggle("selected", li.dataset.conversation === id);
  if (!keepOlder) $("#messages").scrollTop = $("#messages").scrollHeight;
  // A person opened it: read, as opening the chat in TikTok would (the customer sees it).
  if (c.unread > 0) {
    api("POST", "/v1/messages", { account_id: state.account, conversation_id: id, type: "mark_read" })
      .then(() => loadConversations())
      .catch(() => {});
  }
}

async function loadOlder() {
  if (!state.older || !state.conv) return;
  const view = state.view;
  const path = `/v1/conversations/${encodeURIComponent(state.conv.id)}/messages?${q({ account_id: state.account, limit: 50, cursor: state.older })}`;
  const page = await api("GET", path);
  if (view !== state.view) return;
  state.older = page.cursor || null;
  $("#messages").prepend(...(page.messages || []).slice().reverse().map(messageItem));
  $("#thread-older").hidden = !state.older;
}

function renderPause() {
  const b = $("#thread-pause");
  const paused = state.conv && state.conv.bot && state.conv.bot.paused;
  b.textContent = paused ? "Resume the bot" : "Pause the bot";
  b.dataset.paused = paused ? "true" : "false";
  b.className = paused ? "" : "quiet";
}

async function togglePause() {
  const c = state.conv;
  const paused = !(c.bot && c.bot.paused);
  const r = await api("POST", `/v1/conversations/${encodeURIComponent(c.id)}/handoff?${q({ account_id: state.account })}`, { paused });
  c.bot = { paused: r.paused, paused_until: r.paused_until, paused_by: r.paused_by };
  renderPause();
  flash(r.paused ? `Auto-replies paused until ${whenIso(r.paused_until)}.` : "Auto-replies resumed.");
  await loadConversations();
}

async function sendReply(ev) {
  ev.preventDefault();
  const err = $("#reply-error");
  err.textContent = "";
  const input = $("#reply-text");
  const type = $("#reply-type").value;
  const body = { account_id: state.account, conversation_id: state.conv.id, type };
  if (type === "text") body.text = input.value;
  else body.image = { url: input.value.trim() };
  const button = ev.submitter || $("#reply button");
  button.disabled = true;
  try {
    // One key per composed reply: sending it again after an unclear answer cannot send twice.
    state.replyKey = state.replyKey || crypto.randomUUID();
    const sent = await api("POST", "/v1/messages", body, { "idempotency-key": state.replyKey });
    state.replyKey = null;
    input.value = "";
    // Shown at once; the inbox stores it from TikTok's echo a moment later.
    $("#messages").append(messageItem({
      id: sent.message_id, type, text: body.text, image: body.image && { media_id: sent.media_id },
      direction: "outbound", source: "api", timestamp_ms: Date.now(),
    }));
    $("#messages").scrollTop = $("#messages").scrollHeight;
    const id = state.conv.id;
    setTimeout(() => { if (state.conv && state.conv.id === id) openConversation(id).then(loadConversations).catch(() => {}); }, 2000);
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---------- rules ----------

function scopeParam() {
  const v = $("#rules-scope").value;
  return v ? `?${q({ account_id: v })}` : "";
}

async function showRules() {
  if (!state.accounts.length) await loadAccounts();
  const scope = $("#rules-scope");
  const current = scope.value;
  scope.replaceChildren(h("option", { value: "" }, "Global (every account without its own)"),
    ...state.accounts.map((a) => h("option", { value: a.id }, `${a.display_name || a.id} only`)));
  scope.value = current;
  await loadRules();
}

async function loadRules() {
  const r = await api("GET", `/v1/rules${scopeParam()}`);
  state.rules = r.rules || {};
  $("#rules-source").textContent = { account: "this account's own set", stored: "the global set", default: "DEFAULT_RULES (nothing stored yet)" }[r.source] || "";
  fillRulesForm(state.rules);
  clearFieldErrors();
  $("#rules-saved").textContent = "";
}

function ruleCard(rule, i) {
  const field = (name) => `rules[${i}].${name}`;
  const text = typeof rule.text === "string" ? rule.text : "";
  return h("div", { class: "rule", "data-rule": i },
    h("label", {}, "Name", h("input", { "data-field": field("id"), value: rule.id || "" })),
    h("label", {}, "Match",
      h("select", { "data-field": field("match") },
        ...["any_of", "contains", "exact"].map((m) => h("option", { value: m, selected: (rule.match || "any_of") === m }, { any_of: "any keyword as a word", contains: "contains", exact: "the whole message" }[m])))),
    h("p", { class: "field-error wide", "data-error-for": field("id") }),
    h("label", { class: "wide" }, "Keywords (comma-separated)", h("input", { "data-field": field("keywords"), value: (rule.keywords || []).join(", "), "data-original": JSON.stringify(rule.keywords || []) })),
    h("p", { class: "field-error wide", "data-error-for": field("keywords") }),
    h("label", { class: "wide" }, rule.card || rule.share_post ? "Answer (a card or post: edit it in the JSON below)" : "Answer",
      h("input", { "data-field": field("text"), value: text, disabled: !!(rule.card || rule.share_post) })),
    h("p", { class: "field-error wide", "data-error-for": field("text") }),
    h("button", { type: "button", class: "quiet remove", onclick: () => editRules((set) => set.rules.splice(i, 1)) }, "Remove"));
}

/** Shows `set` in the form and, unless it is being edited there, as JSON. */
function fillRulesForm(set, keepJson) {
  state.rules = set;
  $("#rules-welcome").value = set.welcome || "";
  const handoff = set.handoff || {};
  $("#rules-handoff-keywords").value = (handoff.keywords || []).join(", ");
  $("#rules-handoff-keywords").dataset.original = JSON.stringify(handoff.keywords || []);
  $("#rules-handoff-text").value = handoff.text || "";
  $("#rules-list").replaceChildren(...(set.rules || []).map(ruleCard));
  if (!keepJson) {
    state.rulesJson = JSON.stringify(set, null, 2);
    $("#rules-json").value = state.rulesJson;
  }
}

const words = (s) => s.split(",").map((w) => w.trim()).filter(Boolean);

/** A keyword list as typed; unchanged text keeps the list as it was (a keyword may hold a comma). */
function keywordsOf(input) {
  const original = JSON.parse(input.dataset.original || "[]");
  return input.value === original.join(", ") ? original : words(input.value);
}

/** The rule set as edited: the JSON (when it was edited there, it wins and the form follows),
 * with what the form shows written over it. */
function syncFromForm() {
  const text = $("#rules-json").value;
  if (text !== state.rulesJson) {
    let edited;
    try { edited = JSON.parse(text || "{}"); } catch (e) {
      throw Object.assign(new Error(`The JSON is not valid: ${e.message}`), { field: "" });
    }
    fillRulesForm(edited);
    return structuredClone(edited);
  }
  const set = structuredClone(state.rules || {});
  const welcome = $("#rules-welcome").value;
  if (welcome.trim()) set.welcome = welcome; else delete set.welcome;
  const hk = keywordsOf($("#rules-handoff-keywords"));
  const ht = $("#rules-handoff-text").value;
  if (hk.length || ht.trim()) {
    // Without an answer the handoff only pauses: no empty text is sent.
    set.handoff = { ...(set.handoff || {}), keywords: hk };
    if (ht.trim()) set.handoff.text = ht; else delete set.handoff.text;
  } else delete set.handoff;
  set.rules = set.rules || [];
  for (const card of document.querySelectorAll("#rules-list .rule")) {
    const i = Number(card.dataset.rule);
    const r = set.rules[i];
    if (!r) continue;
    const get = (name) => card.querySelector(`[data-field="rules[${i}].${name}"]`);
    r.id = get("id").value.trim();
    r.match = get("match").value;
    r.keywords = keywordsOf(get("keywords"));
    if (!get("text").disabled) r.text = get("text").value;
  }
  state.rules = set;
  state.rulesJson = JSON.stringify(set, null, 2);
  $("#rules-json").value = state.rulesJson;
  return set;
}

/** Applies `change` to the rule set as edited, then shows it again. */
function editRules(change) {
  try {
    const set = syncFromForm();
    set.rules = set.rules || [];
    change(set);
    fillRulesForm(set);
  } catch (e) {
    showFieldError(e.field || "", e.message);
  }
}

function clearFieldErrors() {
  for (const p of document.querySelectorAll("#rules-form [data-error-for]")) p.textContent = "";
  for (const el of document.querySelectorAll("#rules-form .invalid")) el.classList.remove("invalid");
}

/** Shows an error at its field (`rules[1].keywords`), else at the nearest shown parent. */
function showFieldError(field, message) {
  let f = field || "";
  for (;;) {
    const slot = document.querySelector(`#rules-form [data-error-for="${CSS.escape(f)}"]`);
    if (slot) {
      slot.textContent = message;
      const input = document.querySelector(`#rules-form [data-field="${CSS.escape(f)}"]`);
      if (f === "") $("#rules-form details").open = true;
      if (input) { input.classList.add("invalid"); input.focus(); }
      return;
    }
    if (!f) return;
    f = f.includes(".") || f.includes("[") ? f.replace(/(\.[^.[\]]*|\[\d+\])$/, "") : "";
  }
}

async function saveRules(ev) {
  ev.preventDefault();
  clearFieldErrors();
  $("#rules-saved").textContent = "";
  try {
    const set = syncFromForm();
    const r = await api("PUT", `/v1/rules${scopeParam()}`, set);
    state.rules = r.rules || set;
    fillRulesForm(state.rules);
    $("#rules-saved").textContent = "Saved. The next message uses these rules.";
  } catch (e) {
    showFieldError(e.field || "", e.detail || e.message);
  }
}

async function tryMessage(ev) {
  ev.preventDefault();
  const out = $("#try-result");
  const body = { text: $("#try-text").value };
  const scope = $("#rules-scope").value;
  if (scope) body.account_id = scope;
  try {
    const r = await api("POST", "/v1/rules/test", body);
    const sent = (r.messages || []).map((m) => h("li", {}, h("strong", {}, m.rule), ": ",
      m.message.text || (m.message.template ? `[card] ${m.message.template.title}` : `[${m.message.type}]`)));
    out.replaceChildren(
      h("p", {}, r.fired && r.fired.length ? `Would fire: ${r.fired.join(", ")}` : "No rule would answer this message."),
      sent.length ? h("ul", {}, ...sent) : "",
      r.pause ? h("p", { class: "small" }, "The bot would then pause in that conversation.") : "",
      h("p", { class: "small" }, "Nothing was sent."));
  } catch (e) {
    out.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

// ---------- failures ----------

async function showFailures() {
  const r = await api("GET", "/v1/events/failed?limit=100");
  const list = $("#failures");
  list.replaceChildren(...(r.failures || []).map((f) => h("li", { class: "card", "data-failure": f.id },
    h("div", { class: "bar" }, h("strong", {}, { reply: "Reply not sent", forward: "Forward not delivered", notify: "Notification not delivered", interrupted: "Processing interrupted" }[f.stage] || f.stage),
      h("span", { class: "badge bad" }, f.code)),
    h("div", {}, f.message),
    h("div", { class: "small" }, `Account ${f.account_id}`, f.conversation_id ? ` · conversation ${f.conversation_id}` : "",
      f.target ? ` · ${f.target}` : "", ` · ${f.attempts} attempts · ${whenSecs(f.failed_at)}`),
    h("div", {}, h("button", { type: "button", onclick: (ev) => replay(f, ev.target) }, "Replay")))));
  $("#failures-empty").hidden = (r.failures || []).length > 0;
}

async function replay(f, button) {
  button.disabled = true;
  try {
    const r = await api("POST", "/v1/events/replay", { account_id: f.account_id, id: f.id });
    if (r.replayed) flash("Replayed: done.");
    else flash("Replay under way: the outcome of an earlier send is being checked first.");
    await showFailures();
  } catch (e) {
    // 502: replayed and failed again, recorded anew: the list shows it.
    flash(e.status === 502 ? `The replay failed again: ${e.detail || e.message}` : e.message, true);
    if (e.status === 502) await showFailures().catch(() => {});
    else button.disabled = false;
  }
}

// ---------- settings ----------

async function showSettings() {
  const health = await api("GET", "/health");
  const facts = [["Status", health.status], ["Version", health.version],
    ["Bindings", Object.entries(health.bindings || {}).map(([k, v]) => `${k}: ${v ? "yes" : "missing"}`).join(", ")]];
  if (health.config_problems && health.config_problems.length) facts.push(["Problems", health.config_problems.join("; ")]);
  $("#health").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  $("#settings").replaceChildren(...Object.entries(health.config || {}).map(([k, v]) =>
    h("li", {}, h("code", {}, k), ": ", k === "OAUTH_START_PROTECTED" ? (v ? "on" : "off") : v === true ? "set" : v === false ? "not set" : String(v))));
  try {
    const s = await api("GET", "/v1/webhook-subscription");
    $("#subscription").textContent = s.registered
      ? `TikTok sends direct-message events to ${s.callback_url}.`
      : "TikTok has no callback registered: no message reaches this Worker.";
  } catch (e) {
    $("#subscription").textContent = e.message;
  }
}

async function subscribe() {
  try {
    const s = await api("PUT", "/v1/webhook-subscription");
    flash(`Registered: TikTok now sends events to ${s.callback_url}.`);
    await showSettings();
  } catch (e) { flash(e.message, true); }
}

// ---------- wiring ----------

function wire() {
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#signin-error").textContent = "";
    try { await signIn($("#key").value.trim()); $("#key").value = ""; } catch (e) { $("#signin-error").textContent = e.message; }
  });
  $("#signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => state.key && route());
  $("#connect").addEventListener("click", () => connect().catch((e) => flash(e.message, true)));
  $("#inbox-account").addEventListener("change", (ev) => {
    state.account = ev.target.value; state.conv = null; state.view++;
    $("#thread").hidden = true; $(".inbox").classList.remove("open");
    loadConversations().catch((e) => flash(e.message, true));
  });
  $("#inbox-account-id").addEventListener("change", (ev) => { state.account = ev.target.value.trim(); loadConversations().catch((e) => flash(e.message, true)); });
  $("#inbox-refresh").addEventListener("click", () => loadConversations().then(() => state.conv && openConversation(state.conv.id)).catch((e) => flash(e.message, true)));
  $("#thread-back").addEventListener("click", () => $(".inbox").classList.remove("open"));
  $("#thread-older").addEventListener("click", () => loadOlder().catch((e) => flash(e.message, true)));
  $("#thread-pause").addEventListener("click", () => togglePause().catch((e) => flash(e.message, true)));
  $("#reply").addEventListener("submit", sendReply);
  $("#reply-text").addEventListener("input", () => { state.replyKey = null; });
  $("#reply-type").addEventListener("change", (ev) => { $("#reply-text").placeholder = ev.target.value === "image" ? "https://… (a JPEG or PNG)" : "Write a reply…"; });
  $("#rules-scope").addEventListener("change", () => loadRules().catch((e) => flash(e.message, true)));
  $("#rules-form").addEventListener("submit", saveRules);
  $("#rules-add").addEventListener("click", () => editRules((set) => set.rules.push({ id: `rule-${set.rules.length + 1}`, match: "any_of", keywords: [], text: "" })));
  // Edits in the JSON show in the form once the JSON is left; edits in the form show in the JSON.
  $("#rules-json").addEventListener("change", () => { clearFieldErrors(); try { syncFromForm(); } catch (e) { showFieldError("", e.message); } });
  $("#rules-form").addEventListener("change", (ev) => { if (ev.target.id !== "rules-json") { try { syncFromForm(); } catch { /* shown on save */ } } });
  $("#try").addEventListener("submit", tryMessage);
  $("#failures-refresh").addEventListener("click", () => showFailures().catch((e) => flash(e.message, true)));
  $("#subscribe").addEventListener("click", subscribe);
}

wire();
const saved = sessionStorage.getItem(KEY_SLOT);
if (saved) signIn(saved).catch(() => { sessionStorage.removeItem(KEY_SLOT); $("#signin").hidden = false; });
else $("#signin").hidden = false;
