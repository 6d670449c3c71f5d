// The bench's plain-JS baseline: the naive version of the Worker's two hot paths, written the
// way a small hand-rolled Worker would do them (WebCrypto, one KV namespace, one fetch), so
// `make bench` can put our figures next to it. Not a product: no retries, no rules engine, no
// token refresh, no encryption.
//
// Bindings (vars): TIKTOK_CLIENT_SECRET, TIKTOK_API_BASE, API_KEY, optional
// WEBHOOK_TOLERANCE_SECS (default 300), REPLY_KEYWORD (default "price"), REPLY_TEXT.
// KV namespace: KV (`token:<account>` = {"access_token": ...}, `seen:<account>:<message id>`).
//
// Routes: POST /webhooks/tiktok, POST /v1/messages, PUT /_seed (admin: {"<account>": "<token>"}),
// GET /health.

const enc = new TextEncoder();
let hmacKey; // [secret, CryptoKey]: imported once per isolate

const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

async function key(secret) {
  if (!hmacKey || hmacKey[0] !== secret) {
    const k = await crypto.subtle.importKey(
      "raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hmacKey = [secret, k];
  }
  return hmacKey[1];
}

// `TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>` (any `s=` may match).
async function verified(env, header, body) {
  if (!header) return false;
  let t;
  const sigs = [];
  for (const part of header.split(",")) {
    const [k, v] = part.split("=").map((x) => x && x.trim());
    if (k === "t" && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === "s" && /^[0-9a-fA-F]{64}$/.test(v)) sigs.push(v);
  }
  const tolerance = Number(env.WEBHOOK_TOLERANCE_SECS || 300);
  if (t === undefined || !sigs.length || Math.abs(Date.now() / 1000 - t) > tolerance) return false;
  const k = await key(env.TIKTOK_CLIENT_SECRET);
  const data = enc.encode(`${t}.${body}`);
  for (const s of sigs) {
    const bytes = new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16)));
    if (await crypto.subtle.verify("HMAC", k, bytes, data)) return true;
  }
  return false;
}

// One TEXT message to a conversation through TikTok's send endpoint; returns TikTok's envelope.
async function send(env, account, conversation, text) {
  const token = await env.KV.get(`token:${account}`, "json");
  if (!token) return { code: -1, message: "account not connected" };
  try {
    const r = await fetch(`${env.TIKTOK_API_BASE}/business/message/send/`, {
      method: "POST",
      headers: { "content-type": "application/json", "Access-Token": token.access_token },
      body: JSON.stringify({
        business_id: account, recipient_type: "CONVERSATION", recipient: conversation,
        message_type: "TEXT", text: { body: text },
      }),
    });
    return await r.json().catch(() => ({ code: -1, message: `HTTP ${r.status}` }));
  } catch (e) {
    return { code: -1, message: String(e) };
  }
}

async function webhook(request, env, ctx) {
  const body = await request.text();
  if (!(await verified(env, request.headers.get("TikTok-Signature"), body))) {
    return json(401, { error: "bad signature" });
  }
  let event, content;
  try {
    event = JSON.parse(body);
    content = typeof event.content === "string" ? JSON.parse(event.content) : event.content || {};
  } catch {
    return json(400, { error: "invalid JSON" });
  }
  const account = event.user_openid;
  const seen = `seen:${account}:${content.message_id}`;
  if (await env.KV.get(seen)) return json(200, { received: true, duplicate: true });
  await env.KV.put(seen, "1", { expirationTtl: 7 * 86400 });
  const text = content.text?.body || "";
  const keyword = env.REPLY_KEYWORD || "price";
  if (event.event === "im_receive_msg" && text.toLowerCase().includes(keyword)) {
    const reply = env.REPLY_TEXT || "Prices are on the site.";
    ctx.waitUntil(send(env, account, content.conversation_id, reply));
  }
  return json(200, { received: true, duplicate: false });
}

const admin = (request, env) => request.headers.get("Authorization") === `Bearer ${env.API_KEY}`;

async function message(request, env) {
  if (!admin(request, env)) return json(401, { error: "unauthorized" });
  const b = await request.json().catch(() => null);
  if (!b?.account_id || !b.conversation_id || b.type !== "text" || !b.text) {
    return json(400, { error: "account_id, conversation_id, type text and text are required" });
  }
  const out = await send(env, b.account_id, b.conversation_id, b.text);
  if (out.code !== 0) return json(502, { error: out.message, code: out.code });
  return json(200, {
    account_id: b.account_id, conversation_id: b.conversation_id, type: "text",
    message_id: out.data.message.message_id,
  });
}

async function seed(request, env) {
  if (!admin(request, env)) return json(401, { error: "unauthorized" });
  const tokens = await request.json();
  await Promise.all(Object.entries(tokens).map(([account, access_token]) =>
    env.KV.put(`token:${account}`, JSON.stringify({ access_token }))));
  return json(200, { seeded: Object.keys(tokens).length });
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    const route = `${request.method} ${pathname}`;
    if (route === "POST /webhooks/tiktok") return webhook(request, env, ctx);
    if (route === "POST /v1/messages") return message(request, env);
    if (route === "PUT /_seed") return seed(request, env);
    if (route === "GET /health") return json(200, { ok: true });
    return json(404, { error: "not found" });
  },
};
