// Recordings on the Routines page: Record / Stop a demonstration, its steps live, the list.
"use strict";

(() => {
  const {api, el, banner, readable, short} = deskloop;
  const LIVE_MS = 1000;
  const message = document.getElementById("message");
  const form = document.getElementById("record-form");
  const stopButton = document.getElementById("record-stop");
  const startButton = document.getElementById("record-start");
  const live = document.getElementById("live-steps");
  let polling = null;

  function render(data) {
    const running = data.recording;
    startButton.classList.toggle("hidden", !!running);
    stopButton.classList.toggle("hidden", !running);
    live.classList.toggle("hidden", !running);
    if (running) {
      const steps = running.steps.length ? running.steps.map((line) => el("li", {}, line.replace(/^\d+\.\s*/, "")))
        : [el("li", {class: "muted"}, `Recording ${running.name}: waiting for your first step…`)];
      live.replaceChildren(...steps);
      if (!polling) polling = setInterval(refresh, LIVE_MS);
    } else if (polling) {
      clearInterval(polling);
      polling = null;
    }
    document.getElementById("no-recordings").classList.toggle("hidden", data.recordings.length > 0);
    document.getElementById("recordings").classList.toggle("hidden", data.recordings.length === 0);
    const rows = data.recordings.map((recording) => el("tr", {dataset: {recording: recording.name}},
      el("td", {class: "mono"}, recording.name,
        recording.created ? el("div", {class: "small muted"}, readable(recording.created)) : null),
      el("td", {class: "small"}, recording.error ? recording.error
        : el("ol", {}, recording.steps.map((step) => el("li", {}, short(step, 90)))),
        recording.proposed_repair ? el("div", {class: "small"}, `A repair is proposed: deskloop recordings accept ${recording.name}`) : null),
      el("td", {class: "small"}, (recording.apps || []).join(", ")),
      el("td", {}, el("button", {class: "danger", onclick: () => remove(recording.name)}, "Remove"))));
    document.querySelector("#recordings tbody").replaceChildren(...rows);
  }

  async function remove(name) {
    if (!confirm(`Remove the recording ${name}?`)) return;
    try {
      render(await api("POST", `/api/recordings/${encodeURIComponent(name)}/remove`));
      banner(message, "ok", `Removed ${name}.`);
    } catch (error) {
      banner(message, "error", error.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {name: form.elements.name.value.trim(), app: form.elements.app.value.trim()};
    startButton.disabled = true;
    try {
      render(await api("POST", "/api/recordings/record", body));
      banner(message, "ok", `Recording ${body.name}: show the task in your apps, then press Stop.`);
    } catch (error) {
      banner(message, "error", error.message);
    } finally {
      startButton.disabled = false;
    }
  });

  stopButton.addEventListener("click", async () => {
    stopButton.disabled = true;
    try {
      const data = await api("POST", "/api/recordings/stop");
      render(data);
      banner(message, "ok", "Stopped: the recording is saved.");
    } catch (error) {
      banner(message, "error", error.message);
    } finally {
      stopButton.disabled = false;
    }
  });

  function refresh() {
    return api("GET", "/api/recordings").then(render).catch((error) => banner(message, "error", error.message));
  }

  refresh();
})();
