// The chat page: sign-in, rooms, messages, presence, typing and live updates over the
// gateway's WebSocket protocol (docs/protocol.md), spoken by actors-client.js (docs/client.md).
// Plain ES modules, no dependencies.
//
// Every piece of user data reaches the DOM as text (textContent / text nodes), never as HTML.

import { ChatClient, fetchToken } from "./actors-client.js";

// The one rule of user ids and room names (actors.messages.IDENTIFIER_PATTERN); a test checks
// that both say the same.
const IDENTIFIER_RULE = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME_RULE = IDENTIFIER_RULE;
const ROOM_RULE = IDENTIFIER_RULE;
// The server's mention rule (actors/server/gateway/_session.py), without a look-behind.
const MENTION = /(^|[^A-Za-z0-9_@])@([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)/g;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

const TYPING_SEND_INTERVAL = 2000; // send `typing` at most this often
const TYPING_SHOW_FOR = 4000; // a user's indicator lasts this long after their last frame
const STATS_STALE = 15000;
const GROUP_WINDOW = 5 * 60; // seconds: messages of one author this close share a header
const MAX_MESSAGES_PER_ROOM = 500;
const TOAST_MS = 6000;

// Per tab: sessionStorage, not localStorage, so that each tab (or window) is a session of its
// own, with its own user: two windows of one browser can be two people. A reload keeps it.
const STORE = "actors-chat";
const store = {
  get(key) {
    try { return sessionStorage.getItem(`${STORE}.${key}`); } catch { return null; }
  },
  set(key, value) {
    try { sessionStorage.setItem(`${STORE}.${key}`, value); } catch { /* private mode */ }
  },
  remove(key) {
    try { sessionStorage.removeItem(`${STORE}.${key}`); } catch { /* private mode */ }
  },
};

// --- DOM helpers -------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

/** h("div", {class: "x", dataset: {testid: "y"}}, child, "text") — text children are text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("aria-hidden", "true");
  if (cls) svg.setAttribute("class", cls);
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

/**
 * An avatar's hue (0-359) from the whole name: FNV-1a over its UTF-16 code units, so that
 * names sharing a first letter ("alice", "adam") get colours of their own.
 */
function hueOf(name) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % 360;
}

/** Two letters for an avatar: the first of two parts ("ada.lovelace": AL), or the first two. */
function initialsOf(name) {
  const parts = name.split(/[._-]+/).filter(Boolean);
  const letters = parts.length >= 2 ? [...parts[0]][0] + [...parts[1]][0] : [...(parts[0] || name || "?")].slice(0, 2).join("");
  return letters.toUpperCase();
}

function avatar(name, cls = "avatar") {
  const el = h("span", { class: cls, "aria-hidden": "true", "data-testid": "avatar", "data-name": name }, initialsOf(name));
  el.style.setProperty("--hue", String(hueOf(name)));
  return el;
}

const pad = (n) => String(n).padStart(2, "0");
const clock = (seconds) => {
  const d = new Date(seconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const dayKey = (seconds) => {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
};
function dayLabel(seconds) {
  const d = new Date(seconds * 1000);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(seconds) === dayKey(today.getTime() / 1000)) return "Today";
  if (dayKey(seconds) === dayKey(yesterday.getTime() / 1000)) return "Yesterday";
  return d.toLocaleDateString(undefined, {
    weekday: "long", month: "long", day: "numeric",
    year: d.getFullYear() === today.getFullYear() ? undefined : "numeric",
  });
}
const fullTime = (seconds) => new Date(seconds * 1000).toLocaleString();
const chars = (text) => Array.from(text).length; // code points, as the server counts

function listNames(names) {
  if (names.length <= 1) return names.join("");
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// --- state -------------------------------------------------------------------------------

const state = {
  userId: null, // the signed-in name
  conn: "offline", // connected | connecting | reconnecting | offline (the client's state)
  everConnected: false, // a welcome was seen since sign-in
  attempt: 0, // reconnect attempts since the last welcome
  retryAt: null, // when the client tries again (Date.now() milliseconds), while it waits
  sessionId: null,
  suggested: [], // welcome.rooms
  maxTextLength: 2000,
  rooms: new Map(), // name -> Room
  order: [], // room names as listed in the sidebar
  active: null,
  online: new Set(),
  onlineKnown: false,
  stats: new Map(), // server -> {event, at}
  refs: new Map(), // ref -> {kind, room, pendingId?}
  pending: [], // own messages on their way: {id, ref, room, text, status, error}
  lastTypingSent: new Map(), // room -> ms
  hiddenUnread: 0,
};

function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = {
      name,
      wanted: false, // the user wants to be in it (joined, or to rejoin)
      joined: false, // the server said `joined` on this connection
      joining: false,
      leaving: false,
      loaded: false, // history received at least once
      position: null, // {epoch, offset} of the last message held: sent on a rejoin
      messages: [],
      unread: 0,
      mentions: 0,
      lastReadAt: 0,
      members: new Set(),
      membersKnown: false,
      typing: new Map(), // user -> timeout id
    };
    state.rooms.set(name, r);
  }
  if (!state.order.includes(name)) state.order.push(name);
  return r;
}

function persistRooms() {
  if (!state.userId) return;
  const wanted = state.order.filter((n) => state.rooms.get(n)?.wanted);
  store.set(`rooms.${state.userId}`, JSON.stringify(wanted));
  if (state.active) store.set(`active.${state.userId}`, state.active);
}

function savedRooms(user) {
  try {
    const value = JSON.parse(store.get(`rooms.${user}`));
    return Array.isArray(value) ? value.filter((n) => typeof n === "string" && ROOM_RULE.test(n)) : null;
  } catch {
    return null;
  }
}

// --- the connection ------------------------------------------------------------------------
// The protocol's client (actors-client.js) keeps the connection up, rejoins the rooms with
// their positions and drops what it had already; the page draws what it reports.

let client = null;

/** A client for `name`; `first` is the token signing in fetched, used for the first connect. */
function makeClient(name, first) {
  let fresh = first;
  const made = new ChatClient({
    token: async () => {
      if (fresh) {
        const token = fresh;
        fresh = null;
        return token;
      }
      return fetchToken(name);
    },
  });
  // A client replaced by another (signed out, signed in again) reports to nobody.
  const on = (event, handler) => made.on(event, (detail) => { if (client === made) handler(detail); });
  on("state", onConnectionState);
  on("fatal", (error) => backToSignIn(error.message));
  on("welcome", onWelcome);
  on("joined", (frame) => onJoined(frame.room, frame.history, false, frame));
  on("history", (frame) => onJoined(frame.room, frame.messages, true));
  on("left", onLeft);
  on("message", onMessage);
  on("ack", onAck);
  on("typing", (frame) => onTyping(frame.room, frame.user_id));
  on("presence_state", (frame) => onPresence(frame.scope, frame.users, null, true));
  on("presence_diff", (frame) => onPresence(frame.scope, frame.joined, frame.left, false));
  on("notification", onNotification);
  on("update", (frame) => onUpdate(frame.event));
  on("error", onError);
  return made;
}

function onConnectionState({ state: value, attempt, retryAt }) {
  if (value === "closed" || value === "idle") return; // signing out: the page is reset already
  state.attempt = attempt;
  state.retryAt = retryAt;
  if (value !== "connected" && state.conn === "connected") connectionLost();
  setConn(value);
}

/** What a lost connection undoes: joins, typing notices, messages on their way. */
function connectionLost() {
  for (const r of state.rooms.values()) {
    r.joined = false;
    r.joining = r.wanted && !r.leaving; // the client joins it again once back
    for (const timer of r.typing.values()) clearTimeout(timer);
    r.typing.clear();
  }
  for (const p of state.pending) {
    if (p.status === "sending") {
      p.status = "failed";
      p.error = "Not sent: the connection was lost.";
    }
  }
  state.refs.clear();
  for (const r of [...state.rooms.values()]) if (r.leaving) forgetRoom(r.name); // left with the socket
  renderAll();
}

function reconnectNow() {
  if (client) client.reconnectNow();
}

// --- frames from the server --------------------------------------------------------------

function onWelcome(frame) {
  const first = !state.everConnected;
  state.everConnected = true;
  state.sessionId = frame.session_id;
  if (typeof frame.user_id === "string") state.userId = frame.user_id;
  if (Number.isInteger(frame.max_text_length)) state.maxTextLength = frame.max_text_length;
  state.suggested = Array.isArray(frame.rooms) ? frame.rooms.filter((n) => ROOM_RULE.test(n)) : [];
  for (const name of state.suggested) room(name);
  // Suggested rooms first, in the server's order, then the others as they came.
  state.order = [...state.suggested, ...state.order.filter((n) => !state.suggested.includes(n))];

  if (first) {
    const saved = savedRooms(state.userId);
    const wanted = saved ?? (state.suggested.length ? [state.suggested[0]] : []);
    for (const name of wanted) room(name).wanted = true;
    const active = store.get(`active.${state.userId}`);
    state.active = wanted.includes(active) ? active : (wanted[0] ?? null);
    for (const name of state.order) if (state.rooms.get(name).wanted) sendJoin(name);
  }
  // Later welcomes: the client is joining its rooms again by itself.
  persistRooms();
  renderAll();
}

function sendJoin(name) {
  const r = room(name);
  r.wanted = true;
  r.leaving = false;
  r.joining = true;
  client.join(name);
}

function onJoined(name, history, isHistoryAnswer = false, frame = null) {
  if (typeof name !== "string") return;
  const existing = state.rooms.get(name);
  if (!isHistoryAnswer && existing && existing.leaving) {
    existing.joined = true; // a leave is on its way: its `left` will follow
    existing.joining = false;
    return;
  }
  if (!existing && isHistoryAnswer) return;
  const r = room(name);
  if (!isHistoryAnswer) {
    r.joined = true;
    r.joining = false;
    r.wanted = true;
    r.membersKnown = false;
  }
  const messages = Array.isArray(history) ? history.filter(validMessage) : [];
  const hadLoaded = r.loaded;
  if (frame && frame.resumed === true && hadLoaded) {
    // What came while we were away, after what we hold (the client dropped any we had).
    for (const m of messages) insertMessage(r, { room: name, user_id: m.user_id, text: m.text, sent_at: m.sent_at });
  } else {
    r.messages = messages.slice(-MAX_MESSAGES_PER_ROOM);
  }
  r.loaded = true;
  const last = r.messages[r.messages.length - 1];
  if (!hadLoaded || name === state.active) {
    r.lastReadAt = last ? last.sent_at : 0;
    r.unread = 0;
  } else {
    // Back after a reconnect: what came meanwhile is unread.
    r.unread = r.messages.filter((m) => m.sent_at > r.lastReadAt && m.user_id !== state.userId).length;
  }
  // Messages echoed in the history are no longer pending.
  for (const m of r.messages) settlePending(m);
  if (!state.active) state.active = name;
  persistRooms();
  renderRooms();
  if (name === state.active) renderRoom({ keepScroll: false });
  renderTitle();
}

function validMessage(m) {
  return m && typeof m.user_id === "string" && typeof m.text === "string" && typeof m.sent_at === "number";
}

function onLeft(frame) {
  const r = state.rooms.get(frame.room);
  if (!r) return;
  r.joined = false;
  // Unasked, the server lost the room (its hub ended): the client joins it again.
  r.joining = !frame.asked && r.wanted;
  if (r.leaving || !r.wanted) forgetRoom(frame.room);
  renderAll();
}

function forgetRoom(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  r.wanted = false;
  r.leaving = false;
  r.joined = false;
  r.loaded = false;
  r.messages = [];
  r.unread = 0;
  r.mentions = 0;
  r.members.clear();
  r.membersKnown = false;
  for (const timer of r.typing.values()) clearTimeout(timer);
  r.typing.clear();
  state.pending = state.pending.filter((p) => p.room !== name);
  if (!state.suggested.includes(name)) {
    state.rooms.delete(name);
    state.order = state.order.filter((n) => n !== name);
  }
  if (state.active === name) {
    state.active = state.order.find((n) => state.rooms.get(n)?.wanted) ?? null;
  }
  persistRooms();
}

function onMessage(m) {
  if (!validMessage(m) || typeof m.room !== "string") return;
  const r = state.rooms.get(m.room);
  if (!r || !r.wanted) return;
  // Already there (an ack may have put it in first)?
  const tail = r.messages.slice(-30);
  if (tail.some((x) => x.sent_at === m.sent_at && x.user_id === m.user_id && x.text === m.text)) return;
  const msg = { room: m.room, user_id: m.user_id, text: m.text, sent_at: m.sent_at };
  insertMessage(r, msg);
  settlePending(msg);
  clearTyping(r, m.user_id);
  const own = m.user_id === state.userId;
  if (m.room === state.active && !document.hidden) {
    r.lastReadAt = Math.max(r.lastReadAt, m.sent_at);
  } else if (!own) {
    if (m.room === state.active) state.hiddenUnread += 1;
    else {
      r.unread += 1;
      if (mentionsMe(m.text)) r.mentions += 1;
    }
  }
  if (m.room === state.active) appendToView(r, msg, own);
  renderRooms();
  renderTitle();
}

function insertMessage(r, msg) {
  const list = r.messages;
  let i = list.length;
  while (i > 0 && list[i - 1].sent_at > msg.sent_at) i -= 1;
  list.splice(i, 0, msg);
  if (list.length > MAX_MESSAGES_PER_ROOM) list.splice(0, list.length - MAX_MESSAGES_PER_ROOM);
  return i === list.length - 1;
}

/** A message of ours came back: the matching pending one is done. */
function settlePending(msg) {
  if (msg.user_id !== state.userId) return;
  const index = state.pending.findIndex((p) => p.room === msg.room && p.text === msg.text && p.status !== "failed");
  if (index >= 0) {
    const [p] = state.pending.splice(index, 1);
    if (p.ref) state.refs.delete(p.ref);
    if (msg.room === state.active) renderPending();
  }
}

function onAck(frame) {
  const entry = state.refs.get(frame.ref);
  if (!entry) return;
  state.refs.delete(frame.ref);
  if (entry.kind !== "say") return;
  const p = state.pending.find((x) => x.id === entry.pendingId);
  if (!p) return;
  // Published: show it as sent now; the echoed `message` will be recognised by sent_at.
  const r = state.rooms.get(p.room);
  state.pending = state.pending.filter((x) => x !== p);
  if (r && typeof frame.sent_at === "number") {
    onMessage({ room: p.room, user_id: state.userId, text: p.text, sent_at: frame.sent_at });
  }
  if (p.room === state.active) renderPending();
}

function onTyping(name, user) {
  if (typeof user !== "string" || user === state.userId) return;
  const r = state.rooms.get(name);
  if (!r || !r.joined) return;
  clearTimeout(r.typing.get(user));
  r.typing.set(user, setTimeout(() => {
    r.typing.delete(user);
    if (name === state.active) renderTyping();
  }, TYPING_SHOW_FOR));
  if (name === state.active) renderTyping();
}

function clearTyping(r, user) {
  if (!r.typing.has(user)) return;
  clearTimeout(r.typing.get(user));
  r.typing.delete(user);
  if (r.name === state.active) renderTyping();
}

function onPresence(scope, joined, left, isState) {
  if (typeof scope !== "string") return;
  const users = Array.isArray(joined) ? joined.filter((u) => typeof u === "string") : [];
  const gone = Array.isArray(left) ? left.filter((u) => typeof u === "string") : [];
  // Note: "global" is the global scope; a room of that name cannot be told apart (see report).
  let set;
  if (scope === "global") {
    if (isState) { state.online = new Set(); state.onlineKnown = true; }
    set = state.online;
  } else {
    const r = state.rooms.get(scope);
    if (!r) return;
    if (isState) { r.members = new Set(); r.membersKnown = true; }
    set = r.members;
  }
  for (const u of users) set.add(u);
  for (const u of gone) set.delete(u);
  if (scope === "global") renderOnline();
  else if (scope === state.active) renderMembers();
}

function onNotification(n) {
  const mention = n.kind === "mention";
  const data = n.data && typeof n.data === "object" ? n.data : null;
  const target = data && typeof data.room === "string" ? data.room : null;
  toast({
    kind: mention ? "mention" : "info",
    title: typeof n.title === "string" ? n.title : "Notification",
    body: typeof n.body === "string" ? n.body : "",
    duration: mention ? 8000 : TOAST_MS,
    onClick: target && state.rooms.get(target)?.wanted ? () => activate(target) : null,
  });
}

function onUpdate(event) {
  if (!event || typeof event !== "object") return;
  if (event.type === "server_stats" && typeof event.server === "string") {
    state.stats.set(event.server, { event, at: Date.now() });
    renderStats();
  }
}

const ERROR_TEXT = {
  rate_limited: "You're sending messages too fast. Wait a moment and try again.",
  invalid_text: "That message can't be sent.",
  not_joined: "You're not in that room.",
  invalid_room: "That room name isn't allowed.",
  too_many_rooms: "You're in too many rooms. Leave one first.",
  unavailable: "The server couldn't do that right now. Try again.",
};

function onError(frame) {
  const code = String(frame.code || "error");
  const message = typeof frame.message === "string" ? frame.message : "";
  // A `say` is the page's (its pending message); a join or leave is the client's request.
  const entry = (frame.ref ? state.refs.get(frame.ref) : null) ?? frame.request;
  if (frame.ref) state.refs.delete(frame.ref);
  if (entry?.kind === "say") {
    const p = state.pending.find((x) => x.id === entry.pendingId);
    const why = code === "rate_limited" || code === "unavailable" ? ERROR_TEXT[code] : (message || ERROR_TEXT[code] || code);
    if (p) {
      p.status = "failed";
      p.error = code === "rate_limited" ? "Not sent: too fast." : "Not sent.";
      p.detail = why;
      if (p.room === state.active) renderPending();
    }
    toast({ kind: "error", title: code === "rate_limited" ? "Slow down" : "Message not sent", body: why, code });
    return;
  }
  if (entry?.kind === "join") {
    const r = state.rooms.get(entry.room);
    if (r) {
      // `unavailable`: the client tries again shortly; anything else refuses the room.
      r.joining = code === "unavailable" && r.wanted;
      if (!r.joining && !r.joined) forgetRoom(entry.room);
    }
    toast({ kind: "error", title: `Couldn't join #${entry.room}`, body: ERROR_TEXT[code] || message, code });
    renderAll();
    return;
  }
  if (entry?.kind === "leave") {
    forgetRoom(entry.room);
    renderAll();
    return;
  }
  if (code === "not_joined" && !frame.ref) return; // a typing notice racing a leave
  toast({ kind: "error", title: "Refused by the server", body: message || code, code });
}

// --- user actions ------------------------------------------------------------------------

function activate(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  if (!r.wanted) {
    if (state.conn !== "connected") {
      toast({ kind: "error", title: "Not connected", body: "Rooms can be joined once the connection is back." });
      return;
    }
    sendJoin(name);
  }
  state.active = name;
  r.unread = 0;
  r.mentions = 0;
  const last = r.messages[r.messages.length - 1];
  if (last) r.lastReadAt = Math.max(r.lastReadAt, last.sent_at);
  persistRooms();
  closeDrawer();
  renderAll();
  $("composer").focus({ preventScroll: true });
}

function joinByName(raw) {
  const name = raw.trim().replace(/^#/, "");
  const error = $("room-error");
  if (!ROOM_RULE.test(name)) {
    error.textContent = name.length > 64
      ? "A room name is at most 64 characters."
      : "Use 1–64 letters, digits, - _ or . (no spaces).";
    error.hidden = false;
    return false;
  }
  error.hidden = true;
  if (state.conn !== "connected" && !state.rooms.get(name)?.wanted) {
    error.textContent = "Not connected: try again in a moment.";
    error.hidden = false;
    return false;
  }
  room(name);
  activate(name);
  return true;
}

function leaveRoom(name) {
  const r = state.rooms.get(name);
  if (!r || !r.wanted) return;
  r.leaving = true;
  if ((r.joined || r.joining) && state.conn === "connected") {
    client.leave(name);
    // Stop showing it right away; `left` finishes the job.
    r.wanted = false;
    if (state.active === name) state.active = state.order.find((n) => state.rooms.get(n)?.wanted) ?? null;
    persistRooms();
  } else {
    forgetRoom(name);
  }
  renderAll();
}

let pendingSeq = 1;
function sendMessage(textArg, existing) {
  const name = existing ? existing.room : state.active;
  const r = name && state.rooms.get(name);
  if (!r || !r.joined || state.conn !== "connected") return false;
  const text = textArg.replace(/^\s*\n/, "").replace(/\s+$/, "");
  if (!text.trim() || chars(text) > state.maxTextLength) return false;
  const p = existing || { id: pendingSeq++, room: name, text };
  p.status = "sending";
  p.error = null;
  p.detail = null;
  if (!existing) state.pending.push(p);
  const sent = client.say(name, text);
  p.ref = sent.ref ?? null;
  if (sent.sent) {
    state.refs.set(sent.ref, { kind: "say", room: name, pendingId: p.id });
  } else {
    p.status = "failed";
    p.error = sent.reason === "too_big" ? "Too long to send in one frame." : "Not sent: not connected.";
  }
  clearTimeout(typingTrail);
  typingTrail = null;
  if (name === state.active) {
    renderPending();
    scrollToBottom();
  }
  return true;
}

let typingTrail = null;
/** Tell the room we type: at most once every 2 s, and once more at the end of a window typed in. */
function maybeSendTyping() {
  const name = state.active;
  const r = name && state.rooms.get(name);
  if (!r || !r.joined || state.conn !== "connected") return;
  if (!$("composer").value.trim()) return;
  const now = Date.now();
  const elapsed = now - (state.lastTypingSent.get(name) || 0);
  if (elapsed >= TYPING_SEND_INTERVAL) {
    state.lastTypingSent.set(name, now);
    client.typing(name);
  } else if (!typingTrail) {
    typingTrail = setTimeout(() => {
      typingTrail = null;
      if (state.active === name) maybeSendTyping();
    }, TYPING_SEND_INTERVAL - elapsed + 20);
  }
}

// --- sign-in / sign-out ------------------------------------------------------------------

function showSignIn(error) {
  $("app").hidden = true;
  $("signin").hidden = false;
  const input = $("name-input");
  showNameError(error || "");
  setConn("offline");
  document.title = "Chat — sign in";
  input.focus();
}

function showNameError(text) {
  const el = $("name-error");
  el.textContent = text;
  el.hidden = !text;
  $("name-input").setAttribute("aria-invalid", text ? "true" : "false");
}

function nameProblem(name) {
  if (!name) return "Enter a name.";
  if (name.length > 64) return "A name is at most 64 characters.";
  if (!NAME_RULE.test(name)) return "Use only letters, digits, - _ and . (no spaces).";
  return "";
}

async function signIn(name) {
  const problem = nameProblem(name);
  if (problem) {
    showNameError(problem);
    $("name-input").focus();
    return;
  }
  showNameError("");
  const button = $("sign-in");
  button.disabled = true;
  button.textContent = "Signing in…";
  let answer;
  try {
    answer = await fetchToken(name);
  } catch (error) {
    showNameError(error.message);
    $("name-input").focus();
    return;
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
  start(answer.userId, answer);
}

/** Enter the chat as `name` (with a token if we have one) and connect. */
function start(name, token) {
  resetSession();
  state.userId = name;
  store.set("name", name);
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = name;
  $("me-avatar").replaceWith(Object.assign(avatar(name, "avatar"), { id: "me-avatar" }));
  renderAll();
  client = makeClient(name, token);
  // No bound: the page waits for the server as long as it takes, showing how it retries.
  client.connect({ timeout: null }).catch(() => { /* given up: its `fatal` event signs out */ });
}

/** Close the connection (leaving every room first if `leaveRooms`) and forget the session. */
function resetSession({ leaveRooms = false } = {}) {
  const closing = client;
  client = null;
  if (closing) closing.close({ leaveRooms });
  for (const r of state.rooms.values()) for (const t of r.typing.values()) clearTimeout(t);
  Object.assign(state, {
    userId: null, everConnected: false, attempt: 0, retryAt: null, sessionId: null,
    suggested: [], rooms: new Map(), order: [], active: null, online: new Set(),
    onlineKnown: false, refs: new Map(), pending: [], lastTypingSent: new Map(), hiddenUnread: 0,
  });
  state.stats.clear();
}

function signOut() {
  // Signing out is a leave the user asks for: every room drops us at once, with no grace
  // window (a closed tab keeps one, in case it comes back). The socket sends the leaves
  // before its close frame.
  resetSession({ leaveRooms: true });
  store.remove("name");
  $("composer").value = "";
  showSignIn("");
}

function backToSignIn(error) {
  resetSession();
  store.remove("name");
  showSignIn(error);
}

// --- rendering ---------------------------------------------------------------------------

function setConn(value) {
  state.conn = value;
  renderConn();
  renderComposer();
  renderOnline();
  renderMembers();
  renderStats();
}

/** Whole seconds (at least 1) until the client tries again, or null when it is not waiting. */
function secondsToRetry() {
  if (!state.retryAt || state.retryAt <= Date.now()) return null;
  return Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
}

function renderConn() {
  const conn = $("conn");
  conn.dataset.state = state.conn;
  $("app").dataset.conn = state.conn;
  $("connection-state").textContent = state.conn;
  const secs = secondsToRetry();
  let detail = "";
  let banner = "";
  if (state.conn === "reconnecting" || state.conn === "connecting") {
    if (secs !== null) {
      detail = `in ${secs} s`;
      banner = state.everConnected
        ? `Connection lost. Reconnecting in ${secs} s…`
        : `Can't reach the server. Retrying in ${secs} s…`;
    } else {
      detail = "…";
      banner = state.everConnected ? "Connection lost. Reconnecting…" : "";
    }
  } else if (state.conn === "offline" && state.userId) {
    banner = "You're offline. We'll reconnect when the network is back.";
  }
  $("conn-detail").textContent = detail;
  $("banner").hidden = !banner;
  $("banner-text").textContent = banner;
  $("retry-now").hidden = secs === null;
  conn.title = `Connection: ${state.conn}${detail && detail !== "…" ? ` (${detail})` : ""}`;
  renderFooterStatus(secs);
  renderListNotes(secs);
}

/** The footer's line under the user's name: connected, or how and when it comes back. */
function renderFooterStatus(secs) {
  const el = $("me-status");
  el.dataset.state = state.conn;
  el.dataset.attempt = String(state.attempt);
  let text = "Connected";
  if (state.conn === "connecting") text = state.attempt ? `Connecting · ${comeback(secs)}` : "Connecting…";
  else if (state.conn !== "connected") text = `Disconnected · ${comeback(secs)}`;
  el.textContent = text;
}

/** How the connection comes back, in a few words: "retry 2 in 3 s", "reconnecting, attempt 2". */
function comeback(secs) {
  if (state.conn === "offline") return "offline";
  if (secs !== null) return `retry ${state.attempt} in ${secs} s`;
  return state.attempt ? `reconnecting, attempt ${state.attempt}` : "reconnecting";
}

/** The online list and the room's member list: marked while they no longer follow the server. */
function renderListNotes(secs = secondsToRetry()) {
  const lost = state.userId && state.conn !== "connected";
  const stale = lost ? `Disconnected: last known (${comeback(secs)})` : "";
  staleNote($("online-users"), $("online-note"), stale);
  const r = state.active && state.rooms.get(state.active);
  const wanted = Boolean(r && r.wanted);
  staleNote($("room-members"), $("members-note"), wanted && lost ? stale : wanted && !r.joined ? "Joining…" : "");
}

/** The note over a member list that no longer follows the server, or "" when it does. */
function staleNote(list, note, text) {
  list.dataset.state = text ? "stale" : "live";
  list.classList.toggle("is-stale", Boolean(text));
  note.textContent = text;
  note.hidden = !text;
}

function renderAll() {
  renderConn();
  renderRooms();
  renderOnline();
  renderRoom({ keepScroll: false });
  renderStats();
  renderTitle();
}

function renderRooms() {
  const list = $("room-list");
  const items = [];
  for (const name of state.order) {
    const r = state.rooms.get(name);
    if (!r) continue;
    if (!r.wanted && !state.suggested.includes(name)) continue;
    const active = name === state.active;
    const badge = !active && r.wanted && r.unread > 0
      ? h("span", { class: `badge${r.mentions ? " badge-mention" : ""}`, "aria-label": `${r.unread} unread` }, r.unread > 99 ? "99+" : String(r.unread))
      : null;
    const button = h("button", {
      type: "button",
      class: "room",
      "data-testid": `room-${name}`,
      "data-joined": r.joined ? "true" : "false",
      "data-wanted": r.wanted ? "true" : "false",
      "data-unread": String(r.wanted ? r.unread : 0),
      "aria-current": active ? "true" : null,
      title: r.wanted ? `#${name}` : `Join #${name}`,
      onclick: () => activate(name),
    },
    h("span", { class: "room-hash", "aria-hidden": "true" }, "#"),
    h("span", { class: "room-name" }, name),
    r.joining ? h("span", { class: "room-spinner", "aria-label": "joining" }) : null,
    badge,
    !r.wanted ? h("span", { class: "room-join-hint", "aria-hidden": "true" }, "Join") : null);
    const leave = r.wanted
      ? h("button", {
        type: "button", class: "room-leave", title: `Leave #${name}`, "aria-label": `Leave #${name}`,
        "data-testid": `leave-${name}`, onclick: (e) => { e.stopPropagation(); leaveRoom(name); },
      }, icon("x"))
      : null;
    items.push(h("li", { class: `room-item${active ? " is-active" : ""}${r.wanted ? " is-joined" : ""}${r.unread && !active ? " is-unread" : ""}` }, button, leave));
  }
  list.replaceChildren(...items);
  const unread = state.order.reduce((sum, n) => {
    const r = state.rooms.get(n);
    return sum + (r && r.wanted && n !== state.active ? r.unread : 0);
  }, 0);
  $("menu-badge").hidden = unread === 0;
  $("menu-badge").textContent = unread ? String(unread) : "";
}

function personItem(user, testid) {
  const me = user === state.userId;
  return h("li", { class: `person${me ? " is-me" : ""}` },
    avatar(user, "avatar avatar-small"),
    h("span", { class: "person-name", "data-testid": testid, title: me ? `${user} (you)` : user }, user));
}

function sortedPeople(set) {
  return [...set].sort((a, b) => {
    if (a === state.userId) return -1;
    if (b === state.userId) return 1;
    return a.localeCompare(b, undefined, { sensitivity: "base" });
  });
}

function renderOnline() {
  const users = sortedPeople(state.online);
  $("online-users").replaceChildren(...users.map((u) => personItem(u, "online-user")));
  renderListNotes();
  $("online-count").textContent = String(users.length);
}

function renderMembers() {
  const r = state.active && state.rooms.get(state.active);
  const users = r && r.wanted ? sortedPeople(r.members) : [];
  $("room-members").replaceChildren(...users.map((u) => personItem(u, "room-member")));
  renderListNotes();
  $("member-count").textContent = String(users.length);
  const btn = $("members-btn");
  btn.hidden = !r || !r.wanted || !r.loaded;
  $("members-label").textContent = `${users.length} here`;
  btn.title = users.length ? `In #${state.active}: ${users.join(", ")}` : "";
  $("member-faces").replaceChildren(...users.slice(0, 3).map((u) => avatar(u, "avatar avatar-tiny")));
}

function renderTitle() {
  let unread = state.hiddenUnread;
  for (const [n, r] of state.rooms) if (r.wanted && n !== state.active) unread += r.unread;
  const where = state.active ? `#${state.active}` : "Chat";
  document.title = `${unread ? `(${unread}) ` : ""}${where} — Chat`;
}

function renderComposer() {
  const r = state.active && state.rooms.get(state.active);
  const ready = Boolean(r && r.joined && state.conn === "connected");
  const input = $("composer");
  input.disabled = !ready;
  input.placeholder = !state.active ? "Join a room to chat"
    : state.conn !== "connected" ? (state.conn === "offline" ? "Offline" : "Reconnecting…")
      : !r.joined ? "Joining…" : `Message #${state.active}`;
  updateCounter();
}

function updateCounter() {
  const input = $("composer");
  const text = input.value.replace(/\s+$/, "");
  const length = chars(text);
  const max = state.maxTextLength;
  const counter = $("counter");
  const near = length >= max - Math.max(50, Math.round(max * 0.1));
  counter.hidden = !near;
  counter.textContent = String(max - length);
  counter.classList.toggle("is-over", length > max);
  counter.title = `${length} of ${max} characters`;
  $("send").disabled = input.disabled || !text.trim() || length > max;
}

function autoGrow() {
  const input = $("composer");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function renderStats() {
  const now = Date.now();
  for (const [server, entry] of state.stats) if (now - entry.at > STATS_STALE) state.stats.delete(server);
  const el = $("server-stats");
  if (!state.stats.size || state.conn !== "connected") { // figures from before a drop are stale
    el.hidden = true;
    return;
  }
  let sessions = 0;
  const lines = [];
  for (const [server, { event }] of [...state.stats].sort()) {
    const s = Number(event.sessions) || 0;
    sessions += s;
    lines.push(`${server}: ${s} sessions, ${Number(event.rooms) || 0} rooms, ${Number(event.users) || 0} users`);
  }
  const servers = state.stats.size;
  el.textContent = `${servers} ${servers === 1 ? "server" : "servers"} · ${sessions} ${sessions === 1 ? "session" : "sessions"}`;
  el.title = lines.join("\n");
  el.hidden = false;
}

// --- the message view --------------------------------------------------------------------

function isAtBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function scrollToBottom() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
  $("jump").hidden = true;
}

function mentionsMe(text) {
  if (!state.userId) return false;
  for (const match of text.matchAll(MENTION)) if (match[2] === state.userId) return true;
  return false;
}

/** The text of a message as nodes: links and @mentions marked, everything else plain text. */
function richText(text) {
  const out = [];
  const pushMentions = (part) => {
    let last = 0;
    for (const match of part.matchAll(MENTION)) {
      const start = match.index + match[1].length;
      if (start > last) out.push(document.createTextNode(part.slice(last, start)));
      const user = match[2];
      const me = user === state.userId;
      out.push(h("span", { class: `mention${me ? " mention-me" : ""}`, title: me ? "You" : user }, `@${user}`));
      last = start + 1 + user.length;
    }
    if (last < part.length) out.push(document.createTextNode(part.slice(last)));
  };
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trimmed = url.replace(/[.,;:!?)\]}]+$/, "");
    url = trimmed;
    if (match.index > last) pushMentions(text.slice(last, match.index));
    out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
    last = match.index + url.length;
  }
  if (last < text.length) pushMentions(text.slice(last));
  return out;
}

function startsGroup(msg, prev) {
  return !prev || prev.user_id !== msg.user_id || msg.sent_at - prev.sent_at > GROUP_WINDOW ||
    dayKey(prev.sent_at) !== dayKey(msg.sent_at);
}

function messageItem(msg, prev, next) {
  const own = msg.user_id === state.userId;
  const first = startsGroup(msg, prev);
  const last = !next || startsGroup(next, msg);
  const classes = ["msg", own ? "is-own" : "is-other", first ? "is-first" : "is-cont", last ? "is-last" : ""];
  if (!own && mentionsMe(msg.text)) classes.push("is-mention");
  const li = h("li", { class: classes.join(" "), "data-testid": "message", "data-author": msg.user_id, "data-sent-at": String(msg.sent_at) },
    own ? null : (first ? avatar(msg.user_id, "avatar msg-avatar") : h("span", { class: "msg-avatar-gap", "aria-hidden": "true" })),
    h("div", { class: "msg-body" },
      h("div", { class: `msg-meta${first && !own ? "" : " sr-only"}` },
        h("span", { class: "msg-author", "data-testid": "message-author" }, msg.user_id)),
      h("div", { class: "msg-bubble" },
        h("span", { class: "msg-text", "data-testid": "message-text" }, ...richText(msg.text)),
        h("span", { class: "msg-spacer", "aria-hidden": "true" }),
        h("time", { class: "msg-time", datetime: new Date(msg.sent_at * 1000).toISOString(), title: fullTime(msg.sent_at) }, clock(msg.sent_at)))));
  li.style.setProperty("--hue", String(hueOf(msg.user_id)));
  return li;
}

function dayDivider(sentAt) {
  return h("li", { class: "day", "data-day": dayKey(sentAt) }, h("span", null, dayLabel(sentAt)));
}

function renderRoom({ keepScroll }) {
  const name = state.active;
  const r = name && state.rooms.get(name);
  $("room-title").textContent = name || "";
  $("leave-btn").hidden = !r || !r.wanted;
  const nodes = [];
  if (r) {
    let prev = null;
    r.messages.forEach((msg, i) => {
      if (!prev || dayKey(prev.sent_at) !== dayKey(msg.sent_at)) nodes.push(dayDivider(msg.sent_at));
      nodes.push(messageItem(msg, prev, r.messages[i + 1]));
      prev = msg;
    });
  }
  const atBottom = isAtBottom();
  $("messages").replaceChildren(...nodes);
  const empty = $("empty");
  if (!r) {
    empty.hidden = false;
    $("empty-title").textContent = state.conn === "connected" || state.everConnected ? "No room open" : "Connecting…";
    $("empty-text").textContent = state.conn === "connected" ? "Pick a room on the left, or create one with the field under the list." : "";
  } else if (!r.loaded) {
    empty.hidden = false;
    $("empty-title").textContent = `Joining #${name}…`;
    $("empty-text").textContent = "";
  } else if (!r.messages.length) {
    empty.hidden = false;
    $("empty-title").textContent = `Welcome to #${name}`;
    $("empty-text").textContent = "No messages yet. Say hello!";
  } else {
    empty.hidden = true;
  }
  renderPending();
  renderMembers();
  renderTyping();
  renderComposer();
  if (!keepScroll || atBottom) scrollToBottom();
}

function appendToView(r, msg, own) {
  const atBottom = isAtBottom();
  const list = $("messages");
  const index = r.messages.indexOf(msg);
  if (index !== r.messages.length - 1) {
    renderRoom({ keepScroll: true }); // arrived out of order: draw it all again
    return;
  }
  const prev = r.messages[index - 1];
  if (!prev || dayKey(prev.sent_at) !== dayKey(msg.sent_at)) list.append(dayDivider(msg.sent_at));
  // The previous message may stop being the last of its group.
  if (prev && !startsGroup(msg, prev)) {
    const lastEl = list.lastElementChild;
    if (lastEl && lastEl.dataset.testid === "message") lastEl.classList.remove("is-last");
  }
  list.append(messageItem(msg, prev, null));
  $("empty").hidden = true;
  if (atBottom || own) scrollToBottom();
  else $("jump").hidden = false;
}

function renderPending() {
  const items = state.pending.filter((p) => p.room === state.active).map((p) => {
    const failed = p.status === "failed";
    return h("li", { class: `msg is-own is-first is-last is-pending${failed ? " is-failed" : ""}`, "data-testid": failed ? "message-failed" : "message-pending" },
      h("div", { class: "msg-body" },
        h("div", { class: "msg-bubble" },
          h("span", { class: "msg-text" }, ...richText(p.text)),
          h("span", { class: "msg-spacer", "aria-hidden": "true" }),
          h("span", { class: "msg-time" }, failed ? "!" : "…")),
        failed
          ? h("div", { class: "msg-failure" },
            h("span", { class: "msg-failure-text", title: p.detail || p.error || "" }, p.error || "Not sent."),
            h("button", { type: "button", class: "link-btn", onclick: () => retryPending(p) }, "Retry"),
            h("button", { type: "button", class: "link-btn", onclick: () => discardPending(p) }, "Discard"))
          : h("div", { class: "msg-sending" }, "Sending…")));
  });
  const atBottom = isAtBottom();
  $("pending").replaceChildren(...items);
  if (atBottom) scrollToBottom();
}

function retryPending(p) {
  if (state.conn !== "connected") {
    toast({ kind: "error", title: "Not connected", body: "Wait for the connection to come back, then retry." });
    return;
  }
  sendMessage(p.text, p);
}

function discardPending(p) {
  state.pending = state.pending.filter((x) => x !== p);
  renderPending();
}

function renderTyping() {
  const r = state.active && state.rooms.get(state.active);
  const names = r ? [...r.typing.keys()].sort() : [];
  const el = $("typing");
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length > 1 && names.length <= 3) text = `${listNames(names)} are typing…`;
  else if (names.length > 3) text = "Several people are typing…";
  el.textContent = text;
  el.classList.toggle("is-active", Boolean(text));
}

// --- toasts ------------------------------------------------------------------------------

function toast({ kind = "info", title, body = "", duration = TOAST_MS, onClick = null, code = null }) {
  const box = $("toasts");
  for (const old of box.children) {
    if (old.dataset.key === `${kind}|${title}|${body}` && !old.classList.contains("is-leaving")) {
      old.dispatchEvent(new Event("renew"));
      return;
    }
  }
  const glyph = kind === "mention" ? "at" : kind === "error" ? "alert" : "bell";
  let timer = null;
  const close = () => {
    clearTimeout(timer);
    el.classList.add("is-leaving");
    setTimeout(() => el.remove(), 180);
  };
  const el = h("div", {
    class: `toast toast-${kind}${onClick ? " is-clickable" : ""}`,
    "data-testid": "toast",
    "data-kind": kind,
    "data-code": code,
    role: kind === "error" ? "alert" : "status",
  },
  h("span", { class: "toast-icon" }, icon(glyph)),
  h("div", { class: "toast-text" },
    h("p", { class: "toast-title" }, title),
    body ? h("p", { class: "toast-body" }, body) : null),
  h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: (e) => { e.stopPropagation(); close(); } }, icon("x")));
  if (onClick) el.addEventListener("click", () => { onClick(); close(); });
  el.dataset.key = `${kind}|${title}|${body}`;
  const arm = () => { clearTimeout(timer); timer = setTimeout(close, duration); };
  el.addEventListener("renew", () => {
    arm();
    el.classList.remove("is-bump");
    void el.offsetWidth; // restart the animation
    el.classList.add("is-bump");
  });
  el.addEventListener("mouseenter", () => clearTimeout(timer));
  el.addEventListener("mouseleave", arm);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  arm();
}

// --- drawer (phones) ---------------------------------------------------------------------

function openDrawer() {
  $("app").classList.add("drawer-open");
  $("backdrop").hidden = false;
}
function closeDrawer() {
  $("app").classList.remove("drawer-open", "members-open");
  $("backdrop").hidden = true;
}
function toggleMembers() {
  const app = $("app");
  if (window.matchMedia("(min-width: 1100px)").matches) {
    app.classList.toggle("members-hidden");
    $("members-btn").setAttribute("aria-expanded", String(!app.classList.contains("members-hidden")));
    return;
  }
  const open = !app.classList.contains("members-open");
  app.classList.toggle("members-open", open);
  $("backdrop").hidden = !open || !window.matchMedia("(max-width: 1099px)").matches;
}

// --- wiring ------------------------------------------------------------------------------

function wire() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("name-input").value.trim());
  });
  $("name-input").addEventListener("input", () => {
    if (!$("name-error").hidden) showNameError("");
  });
  $("sign-out").addEventListener("click", signOut);
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (joinByName($("room-input").value)) $("room-input").value = "";
  });
  $("room-input").addEventListener("input", () => { $("room-error").hidden = true; });
  $("leave-btn").addEventListener("click", () => state.active && leaveRoom(state.active));
  $("retry-now").addEventListener("click", reconnectNow);
  $("menu-btn").addEventListener("click", openDrawer);
  $("backdrop").addEventListener("click", closeDrawer);
  $("members-btn").addEventListener("click", toggleMembers);
  $("members-close").addEventListener("click", closeDrawer);
  $("jump").addEventListener("click", scrollToBottom);
  $("scroller").addEventListener("scroll", () => { if (isAtBottom()) $("jump").hidden = true; }, { passive: true });

  const composer = $("composer");
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer-form").requestSubmit();
    }
  });
  composer.addEventListener("input", () => {
    autoGrow();
    updateCounter();
    maybeSendTyping();
  });
  $("composer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = composer.value;
    if (chars(text.replace(/\s+$/, "")) > state.maxTextLength) {
      toast({ kind: "error", title: "Message too long", body: `At most ${state.maxTextLength} characters.` });
      return;
    }
    if (sendMessage(text)) {
      composer.value = "";
      autoGrow();
      updateCounter();
    }
    composer.focus();
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      state.hiddenUnread = 0;
      const r = state.active && state.rooms.get(state.active);
      const last = r && r.messages[r.messages.length - 1];
      if (last) r.lastReadAt = Math.max(r.lastReadAt, last.sent_at);
      renderTitle();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeDrawer();
  });
  // Once a second: the reconnect countdown and stale server stats.
  setInterval(() => {
    if (state.conn === "reconnecting" || state.conn === "connecting") renderConn(); // the countdown
    if (state.stats.size) renderStats();
  }, 1000);
}

window.__chat = {
  state: () => ({
    user: state.userId,
    connection: state.conn,
    session: state.sessionId,
    active: state.active,
    rooms: state.order.filter((n) => state.rooms.get(n)?.wanted),
    joined: state.order.filter((n) => state.rooms.get(n)?.joined),
    online: [...state.online],
    pending: state.pending.map((p) => ({ room: p.room, text: p.text, status: p.status, error: p.detail || p.error })),
  }),
  get socket() { return client?.socket ?? null; },
  get client() { return client; },
};

wire();
const remembered = store.get("name");
if (remembered && NAME_RULE.test(remembered)) start(remembered, null);
else showSignIn("");
