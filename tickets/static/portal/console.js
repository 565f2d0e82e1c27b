// The support console's escalation queue, live: every change to a ticket support may see refreshes the
// table in place (the page itself is the source: the queue's order and filters are the server's).

import { LiveSocket, announce, renderTimes } from "./live.js";

const REFRESH_DEBOUNCE_MS = 300;
const QUEUE_EVENTS = new Set([
  "ticket_created", "status_change", "priority_change", "assignment_change", "new_comment",
  "sla_warning", "sla_breach", "sla_breached", "ticket_edited",
]);

function liveQueue(root) {
  const status = document.getElementById("queue-status");
  const fallback = document.getElementById("queue-refresh");
  let timer = null;

  async function refresh() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) {
      fallback.hidden = false; // cannot refresh in place: at least say that something changed
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("#queue tbody");
    const current = root.querySelector("#queue tbody");
    if (!fresh || !current) return;
    current.replaceWith(fresh);
    renderTimes(fresh);
    announce("The queue was updated.");
  }

  new LiveSocket("/api/v1/updates", {
    status,
    onMessage: (message) => {
      if (!QUEUE_EVENTS.has(message.type)) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, REFRESH_DEBOUNCE_MS);
    },
  });
}

renderTimes();
window.setInterval(() => renderTimes(), 30000);
const queue = document.querySelector("[data-live-queue]");
if (queue) liveQueue(queue);
