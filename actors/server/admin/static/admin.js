// The observer page: asks /admin/state about once a second with the admin token, and shows it.
// Everything is built with DOM calls and textContent (names come from outside); no innerHTML.

const STATE_URL = "/admin/state";
const STATE_VERSION = 1;
const POLL_INTERVAL = 1000; // milliseconds between the end of one request and the next
const REQUEST_TIMEOUT = 5000; // milliseconds a request may take before it counts as failed
const TOKEN_KEY = "actors-admin-token";

const $ = (id) => document.getElementById(id);

function element(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  for (const [name, value] of Object.entries(options.data || {})) node.dataset[name] = value;
  if (options.testId) node.dataset.testid = options.testId;
  if (options.title) node.title = options.title;
  for (const child of children) node.append(child);
  return node;
}

function number(value) {
  return value === null || value === undefined ? "–" : value.toLocaleString("en");
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(0)} s`;
}

function showMore(id, more, noun) {
  const node = $(id);
  node.hidden = !more;
  node.textContent = more ? `and ${number(more)} more ${noun} not shown` : "";
}

// --- the token --------------------------------------------------------------------------

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showSignIn(error) {
  $("observer").hidden = true;
  $("signin").hidden = false;
  const message = $("signin-error");
  message.hidden = !error;
  message.textContent = error || "";
  $("token").focus();
}

function showObserver() {
  $("signin").hidden = true;
  $("observer").hidden = false;
}

// --- polling ----------------------------------------------------------------------------

let timer = null;
let generation = 0; // a sign-out or a new token makes older requests' answers stale

function setPoll(state, label, detail = "") {
  $("poll").dataset.state = state;
  $("poll-state").textContent = label;
  $("poll-detail").textContent = detail;
}

async function poll(current) {
  const token = storedToken();
  if (!token || current !== generation) return;
  const controller = new AbortController();
  const abort = setTimeout(() => controller.abort(), REQUEST_TIMEOUT);
  try {
    const response = await fetch(STATE_URL, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
      credentials: "omit",
      signal: controller.signal,
    });
    if (current !== generation) return;
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn("That token was refused.");
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    if (state.version !== STATE_VERSION) throw new Error(`unknown state version ${state.version}`);
    render(state);
    setPoll("connected", "live", `updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (current !== generation) return;
    setPoll("reconnecting", "retrying", error.name === "AbortError" ? "timed out" : String(error.message || error));
  } finally {
    clearTimeout(abort);
  }
  if (current === generation) timer = setTimeout(() => poll(current), POLL_INTERVAL);
}

function start() {
  clearTimeout(timer);
  generation += 1;
  showObserver();
  setPoll("reconnecting", "connecting");
  poll(generation);
}

// --- rendering --------------------------------------------------------------------------

function render(state) {
  $("server-name").textContent = state.server;
  renderTree(state);
  renderConnections(state.connections);
  renderSubscriptions(state.subscriptions);
  renderGateway(state.gateway);
}

function actorRow(node, depth) {
  const label = node.child_id && node.child_id !== node.name ? `${node.child_id} · ${node.name}` : node.name;
  const name = element("span", { className: "actor-name", testId: "actor-name", text: label, title: label });
  if (node.supervisor) {
    const s = node.supervisor;
    name.append(
      element("span", {
        className: "kind",
        text: `${s.strategy}, ${s.recent_restarts}/${s.max_restarts} in ${s.within} s`,
      }),
    );
  }
  const mailbox = node.mailbox;
  const capacity = mailbox.capacity === null ? "∞" : number(mailbox.capacity);
  const lastExit = node.last_exit || "";
  return element(
    "div",
    {
      className: "actor-row",
      data: {
        depth: String(depth),
        restarted: String(node.restarts > 0),
        crashed: String(lastExit.startsWith("crashed")),
      },
    },
    [
      name,
      element("span", {}, [element("span", { className: "state", text: node.state, data: { state: node.state }, testId: "actor-state" })]),
      element("span", { className: "actor-number actor-restarts", testId: "actor-restarts", text: number(node.restarts) }),
      element("span", { className: "actor-number", testId: "actor-mailbox", text: `${number(mailbox.depth)}/${capacity}`, title: `most ever queued: ${number(mailbox.high_water)}` }),
      element("span", { className: "actor-number", testId: "actor-dropped", text: number(mailbox.dropped) }),
      element("span", { className: "actor-exit", testId: "actor-last-exit", text: lastExit, title: lastExit }),
    ],
  );
}

function treeItem(node, depth = 0) {
  const data = { actorId: String(node.actor_id), childId: node.child_id || "", name: node.name };
  const item = element("li", { testId: "actor", data }, [actorRow(node, depth)]);
  if (node.children.length || node.more) {
    const list = element("ul");
    for (const child of node.children) list.append(treeItem(child, depth + 1));
    if (node.more) {
      const more = `and ${number(node.more)} more children`;
      list.append(element("li", { className: "actor-more", text: more, data: { depth: String(depth + 1) } }));
    }
    item.append(list);
  }
  return item;
}

function renderTree(state) {
  $("tree").replaceChildren(...state.tree.map((node) => treeItem(node)));
  showMore("tree-more", state.tree_more, "top-level actors");
}

function fact(term, value, testId) {
  return element("div", {}, [element("dt", { text: term }), element("dd", { text: value, testId })]);
}

function renderConnections(connections) {
  const blocks = connections.map((connection) => {
    const state = connection.failure ? "stopped" : connection.connected ? "running" : "restarting";
    const label = connection.failure ? "failed" : connection.connected ? "connected" : "down";
    const facts = element("dl", { className: "connection-facts" }, [
      fact("protocol", connection.protocol === null ? "–" : `RESP${connection.protocol}`),
      fact("reconnects", number(connection.reconnects), "connection-reconnects"),
      fact("connection restarts", number(connection.connection_restarts)),
      fact("last probe", connection.last_probe_age === null ? "–" : `${seconds(connection.last_probe_age)} ago`),
      fact("last message", connection.last_message_age === null ? "–" : `${seconds(connection.last_message_age)} ago`),
      fact("gap", connection.gap_age === null ? "none" : `open for ${seconds(connection.gap_age)}`, "connection-gap"),
      fact("unroutable", number(connection.unroutable)),
      fact("ended by the server", number(connection.server_unsubscribed)),
    ]);
    const block = element("div", { className: "connection", testId: "connection" }, [
      element("div", { className: "connection-head" }, [
        element("span", { text: connection.label }),
        element("span", { className: "state", text: label, data: { state }, testId: "connection-state" }),
      ]),
      facts,
    ]);
    const problem = connection.failure || connection.last_error;
    if (problem) block.append(element("p", { className: "observer-empty", text: problem, testId: "connection-error" }));
    const rows = connection.channels.map((channel) =>
      element("tr", {}, [
        element("td", { className: "name", text: `${channel.kind === "channel" ? "" : `${channel.kind} `}${channel.name}` }),
        element("td", { className: "number", text: number(channel.sinks) }),
        element("td", { className: "number", text: number(channel.delivered) }),
        element("td", { className: channel.dropped ? "number bad" : "number", text: number(channel.dropped) }),
        element("td", { text: channel.acknowledged ? "yes" : "no" }),
      ]),
    );
    const table = element("table", { className: "observer-table", testId: "channels" }, [
      element("thead", {}, [
        element("tr", {}, ["channel", "subscribers", "delivered", "dropped", "acknowledged"].map((text) => element("th", { text }))),
      ]),
      element("tbody", {}, rows),
    ]);
    block.append(table);
    if (connection.channels_more) block.append(element("p", { className: "observer-more", text: `and ${number(connection.channels_more)} more channels` }));
    return block;
  });
  $("connections").replaceChildren(...blocks);
}

function renderSubscriptions(subscriptions) {
  $("subscriptions-count").textContent = number(subscriptions.count);
  $("subscriptions").replaceChildren(
    ...subscriptions.items.map((row) =>
      element("tr", { testId: "subscription" }, [
        element("td", { className: "name", text: row.pattern ? `${row.name} (pattern)` : row.name }),
        element("td", { className: "number", text: number(row.received) }),
        element("td", { className: "number", text: number(row.handled) }),
        element("td", { className: "number", text: number(row.depth) }),
        element("td", { className: row.dropped ? "number bad" : "number", text: number(row.dropped) }),
        element("td", { className: row.decode_errors ? "number bad" : "number", text: number(row.decode_errors) }),
        element("td", { className: "number", text: number(row.gaps) }),
        element("td", { className: "number", text: number(row.restarts) }),
      ]),
    ),
  );
  showMore("subscriptions-more", subscriptions.more, "subscriptions");
}

function renderGateway(gateway) {
  $("gateway-starting").hidden = gateway !== null;
  const rooms = gateway ? gateway.rooms : { count: 0, items: [], more: 0 };
  const sessions = gateway ? gateway.sessions : { count: 0, items: [], more: 0 };
  $("rooms-count").textContent = number(rooms.count);
  $("rooms").replaceChildren(
    ...rooms.items.map((room) =>
      element("tr", { testId: "room" }, [
        element("td", { className: "name", text: room.room }),
        element("td", { className: "number", text: number(room.sessions) }),
        element("td", { text: room.hub_state || "–" }),
        element("td", { className: "number", text: number(room.hub_depth) }),
      ]),
    ),
  );
  showMore("rooms-more", rooms.more, "rooms");
  $("sessions-count").textContent = number(sessions.count);
  $("sessions").replaceChildren(
    ...sessions.items.map((session) =>
      element("tr", { testId: "session" }, [
        element("td", { className: "name", text: session.session_id }),
        element("td", { testId: "session-user", text: session.user_id }),
        element("td", { text: session.rooms.join(", ") }),
        element("td", { className: "number", text: number(session.queued) }),
      ]),
    ),
  );
  showMore("sessions-more", sessions.more, "sessions");
}

// --- wiring -----------------------------------------------------------------------------

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!/^[!-~]{16,}$/.test(token)) {
    showSignIn("An admin token is at least 16 printable ASCII characters.");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  start();
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timer);
  generation += 1;
  showSignIn("");
});

if (storedToken()) start();
else showSignIn("");
