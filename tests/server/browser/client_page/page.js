// A page of its own on the gateway's client module: it signs in as ?name=..., joins the lobby,
// shows what is said there and says what is typed. What it saw is kept in window.seen.
import { connect, fetchToken } from "/static/actors-client.js";

const name = new URLSearchParams(location.search).get("name") ?? "guest";
const log = document.getElementById("log");
const seen = [];
window.seen = seen;

const client = await connect({
  token: () => fetchToken(name),
  handlers: {
    state: ({ state, attempt }) => {
      document.body.dataset.state = state;
      seen.push({ event: "state", state, attempt });
    },
    joined: ({ room, resumed, history }) => {
      seen.push({ event: "joined", room, resumed, texts: history.map((message) => message.text) });
    },
    message: ({ room, user_id: user, text }) => {
      seen.push({ event: "message", room, user, text });
      const line = document.createElement("li");
      line.textContent = `${user}: ${text}`; // as text, never as HTML
      log.append(line);
    },
  },
});
window.client = client;
client.join("lobby");

document.getElementById("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (client.say("lobby", input.value).sent) input.value = "";
});
