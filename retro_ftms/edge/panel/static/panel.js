// retro-ftms panel: one card per treadmill, live over a websocket; Stop, Pause, the program and Arm.
// Arming only chooses what runs: the belt starts when a person presses Start on the treadmill's console.
"use strict";

const MPH_PER_KMH = 1 / 1.609344;
const RECONNECT_MAX_MS = 5000;
let pullKey = { reasons: [], message: "" }; // the terminal's words when the belt may still be moving
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
const cards = new Map(); // treadmill id -> {root, last state}
let units = "kmh";
let reconnectMs = 500;

const STATE_WORDS = {
  idle: "Idle", armed: "Armed", connecting: "Connecting", ready: "Ready", running: "Running",
  paused: "Paused", stopped: "Stopped", completed: "Completed", faulted: "Fault",
};

function speedParts(kmh) {
  if (kmh === null || kmh === undefined) return ["–", ""];
  return units === "mph" ? [(kmh * MPH_PER_KMH).toFixed(1), "mph"] : [kmh.toFixed(1), "km/h"];
}

function speed(kmh) {
  return speedParts(kmh).join(" ").trim();
}

function figure(element, [number, unit]) {
  element.querySelector(".number").textContent = number;
  element.querySelector(".unit").textContent = unit;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function say(text) {
  if (!document.getElementById("speak").checked || !("speechSynthesis" in window)) return;
  window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
}

async function post(path, body) {
  const response = await fetch(withToken(path), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const answer = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  return answer.ok ? null : answer.error || `HTTP ${response.status}`;
}

function makeCard(treadmill) {
  const root = document.getElementById("card").content.firstElementChild.cloneNode(true);
  root.dataset.id = treadmill.id;
  root.querySelector(".name").textContent = treadmill.name;
  const select = root.querySelector(".program");
  for (const name of treadmill.programs) select.add(new Option(name, name));
  const hint = root.querySelector(".hint");
  const base = `/api/treadmills/${encodeURIComponent(treadmill.id)}`;
  // Stop first, needing nothing: no token, no confirmation.
  root.querySelector(".stop").addEventListener("click", async () => {
    const failed = "Stop did not reach the service: use the safety key.";
    try {
      const response = await fetch(withToken(`${base}/stop`), { method: "POST" });
      hint.textContent = response.ok ? "" : failed;
    } catch {
      hint.textContent = failed;
    }
  });
  root.querySelector(".pause").addEventListener("click", async () => {
    hint.textContent = (await post(`${base}/pause`)) || "";
  });
  root.querySelector(".pain").addEventListener("click", async () => {
    hint.textContent = (await post(`${base}/pain`)) || "";
  });
  root.querySelector(".arm").addEventListener("click", async () => {
    hint.textContent = (await post(`${base}/arm`, { program: select.value })) || "";
  });
  root.querySelector(".disarm").addEventListener("click", async () => {
    hint.textContent = (await post(`${base}/disarm`)) || "";
  });
  document.getElementById("cards").append(root);
  cards.set(treadmill.id, { root, state: null });
}

function show(id, state) {
  const card = cards.get(id);
  if (!card) return;
  const root = card.root;
  const q = (selector) => root.querySelector(selector);
  const badge = q(".state");
  badge.textContent = STATE_WORDS[state.state] || state.state;
  badge.className = `state ${state.state}`;
  figure(q(".speed"), speedParts(state.speed_kmh));
  figure(q(".incline"), state.incline_pct === null ? ["–", ""] : [state.incline_pct.toFixed(1), "%"]);
  const inSession = !["idle", "armed", "connecting"].includes(state.state);
  figure(q(".left"), inSession ? [duration(state.remaining_s), "min"] : ["–", ""]);
  q(".step").textContent = state.step_index === null
    ? (state.program ? `Program: ${state.program}` : "")
    : `Step ${state.step_index + 1} of ${state.step_count}: ${state.step_name} · target ${speed(state.target_speed_kmh)}`;
  const next = state.next_change;
  q(".next").hidden = !next;
  if (next) {
    const what = next.quantity === "incline" ? `incline ${next.value.toFixed(1)} %` : `speed ${speed(next.value)}`;
    q(".next").textContent = `Next: ${what} in ${duration(next.in_s)}`;
  }
  const alarm = q(".alarm");
  alarm.hidden = !state.safety_alarm;
  const reason = (state.safety_reason || "").replaceAll("_", " ");
  alarm.textContent = !state.safety_alarm ? ""
    : pullKey.reasons.includes(state.safety_reason) ? `${reason}: ${pullKey.message}`
    : `Safety stop: ${reason}`;
  const last = state.last_result;
  q(".last").hidden = !last || inSession;
  if (last) {
    const why = last.reason && last.outcome !== "completed" ? ` (${last.reason.replaceAll("_", " ")})` : "";
    q(".last").textContent = `Last: ${last.program}, ${last.summary}${why} after ${duration(last.elapsed_s)}`;
    q(".last").classList.toggle("warn", last.exit_code === 1 || last.exit_code === 3);
  }
  const armed = state.state === "armed" || state.state === "connecting";
  q(".pause").disabled = state.state !== "running";
  q(".pain").disabled = !["running", "paused"].includes(state.state);
  q(".arm").disabled = armed || (inSession && !["stopped", "completed", "faulted"].includes(state.state));
  q(".disarm").hidden = !armed;
  q(".arming").hidden = ["running", "paused"].includes(state.state);
  const select = q(".program");
  if (state.selected_program && document.activeElement !== select) select.value = state.selected_program;
  if (state.state === "armed") q(".hint").textContent = "Armed: press Start on the treadmill to begin.";
  else if (card.state && card.state.state === "armed") q(".hint").textContent = "";
  card.state = state;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${withToken("/api/live")}`);
  const link = document.getElementById("link");
  socket.addEventListener("open", () => {
    reconnectMs = 500;
    document.body.classList.remove("offline");
    link.className = "link";
    link.textContent = "Live";
  });
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "hello") {
      units = data.units;
      pullKey = data.pull_key;
      if (cards.size === 0) data.treadmills.forEach(makeCard);
    } else if (data.type === "state") {
      show(data.id, data.state);
    } else if (data.type === "say") {
      say(data.text);
    }
  });
  socket.addEventListener("close", () => {
    document.body.classList.add("offline");
    link.className = "link lost";
    link.textContent = "No connection to the service: this page shows nothing live. Use the safety key to stop.";
    setTimeout(connect, reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, RECONNECT_MAX_MS);
  });
}

document.getElementById("speak").addEventListener("change", (event) => {
  if (event.target.checked) say("Speech on.");
});
connect();
