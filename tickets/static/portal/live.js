// The live parts shared by the portal's pages and the support console: a WebSocket that reconnects and
// resumes with ?since=, times in words ("5 min ago", "due in 3 h") kept current, a polite announcer.

import { relative, slaDue } from "./humanise.js";

const SOCKET_BASE = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

export function announce(text) {
  const announcer = document.getElementById("announcer");
  if (!announcer) return;
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

// --- Times: the reader's own zone on hover, and how long ago or until in words ---------------------------

// The words follow tickets/humanise.py's rule (./humanise.js): the same as the server wrote into the page.
// (Not dateStyle/timeStyle: Chromium refuses them together with timeZoneName, and the whole module stops.)
const exactFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const WORDS = { "": relative, due: slaDue };

export function renderTimes(root = document) {
  const now = Date.now();
  for (const element of root.querySelectorAll("time[datetime]")) {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    element.title = exactFormat.format(date);
    const words = element.hasAttribute("data-relative") ? WORDS[element.dataset.relative] ?? relative : null;
    element.textContent = words ? words(date, now) : exactFormat.format(date);
  }
}

// --- A WebSocket that reconnects, resuming with ?since= -------------------------------------------------

export class LiveSocket {
  constructor(path, { onMessage, sinceOf, status = document.getElementById("live-status") }) {
    this.path = path;
    this.onMessage = onMessage;
    this.sinceOf = sinceOf;
    this.delay = 500;
    this.status = status;
    this.connect();
  }

  setState(state, text) {
    if (!this.status) return;
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  connect() {
    const since = this.sinceOf ? this.sinceOf() : null;
    const url = `${SOCKET_BASE}${this.path}${since !== null && since !== undefined ? `?since=${since}` : ""}`;
    this.socket = new WebSocket(url);
    this.socket.addEventListener("open", () => {
      this.delay = 500;
      this.setState("live", "Live");
    });
    this.socket.addEventListener("message", (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      this.onMessage(data);
    });
    this.socket.addEventListener("close", (event) => {
      if (event.code >= 4400 && event.code < 4500) {
        // Not signed in any more, or no longer allowed: the next page load says why.
        this.setState("lost", "Not live: reload the page");
        return;
      }
      this.setState("lost", "Connection lost — reconnecting…");
      window.setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }

  send(payload) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(payload));
  }
}
