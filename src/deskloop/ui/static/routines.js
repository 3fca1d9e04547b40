// Routines: the list with run now / edit / runs / remove, the create-or-edit form, and runs.
"use strict";

(() => {
  const {api, el, banner, readable, fullTime, short} = deskloop;
  const REFRESH_MS = 60_000; // "today 08:00" becomes "yesterday" at midnight; fires move times
  const message = document.getElementById("message");
  const form = document.getElementById("routine-form");
  let editing = null; // the name of the routine the form edits, or null for a new one
  let shownRuns = null;
  // After "Run now": keep reading the runs until the new one has appeared and ended.
  let follow = null; // {name, known: run count before, until: time to give up}

  const inputs = [
    ["name", "Name", "text", "morning-mail"],
    ["prompt", "Task", "textarea", "Summarise my unread mail"],
    ["schedule", "Schedule", "text", "cron:0 9 * * 1-5, every:3600 or at:2026-12-24T18:00"],
    ["tools", "Tools it may use", "text", "blank: read-class tools only; or names, comma-separated"],
    ["timezone", "Time zone", "text", "this machine's"],
    ["endpoint", "Endpoint", "text", "blank: the Settings choice"],
    ["model", "Model", "text", "blank: the Settings model"],
    ["timeout_s", "Timeout (s)", "number", "900"],
  ];

  function buildForm() {
    for (const [name, label, kind, placeholder] of inputs) {
      const id = `routine-${name}`;
      form.append(el("label", {for: id}, label));
      form.append(kind === "textarea"
        ? el("textarea", {id, name, placeholder})
        : el("input", {id, name, type: kind, placeholder, step: kind === "number" ? "any" : null}));
    }
    form.append(el("label", {for: "routine-enabled"}, "Enabled"),
      el("input", {type: "checkbox", id: "routine-enabled", name: "enabled", checked: true}));
    form.append(el("span"), el("div", {class: "row"},
      el("button", {type: "submit", class: "primary", id: "save-routine"}, "Create routine"),
      el("button", {type: "button", id: "cancel-edit", class: "hidden", onclick: () => edit(null)}, "Cancel")));
  }

  function edit(routine) {
    editing = routine ? routine.name : null;
    document.getElementById("form-title").textContent = routine ? `Edit ${routine.name}` : "New routine";
    document.getElementById("save-routine").textContent = routine ? "Save changes" : "Create routine";
    document.getElementById("cancel-edit").classList.toggle("hidden", !routine);
    for (const [name] of inputs) {
      let value = routine ? routine[name] : "";
      if (name === "tools") value = routine && routine.tools ? routine.tools.join(", ") : "";
      form.elements[name].value = value === null || value === undefined ? "" : value;
    }
    form.elements.enabled.checked = routine ? routine.enabled : true;
    if (routine) form.scrollIntoView({behavior: "smooth"});
  }

  async function act(routine, action) {
    try {
      if (action === "remove") {
        if (!confirm(`Remove the routine ${routine.name} and its runs?`)) return;
        render(await api("POST", `/api/routines/${encodeURIComponent(routine.name)}/remove`));
        banner(message, "ok", `Removed ${routine.name}.`);
      } else if (action === "run") {
        const before = await api("GET", `/api/routines/${encodeURIComponent(routine.name)}/runs`);
        const answer = await api("POST", `/api/routines/${encodeURIComponent(routine.name)}/run`);
        banner(message, "ok", `Started: ${answer.said}.`);
        follow = {name: routine.name, known: before.runs.length, until: Date.now() + 15 * 60 * 1000};
        showRuns(routine.name);
      }
    } catch (error) {
      banner(message, "error", error.message);
    }
  }

  function render(data) {
    document.getElementById("no-routines").classList.toggle("hidden", data.routines.length > 0);
    document.getElementById("routines").classList.toggle("hidden", data.routines.length === 0);
    const rows = data.routines.map((routine) => el("tr", {dataset: {routine: routine.name}},
      el("td", {class: "mono"}, routine.name),
      el("td", {}, el("span", {class: "mono small"}, routine.schedule),
        el("div", {class: "small muted next-fire", title: routine.next_fire_at ? fullTime(routine.next_fire_at) : ""},
          routine.next_fire_at ? `next: ${readable(routine.next_fire_at)}` : "not scheduled")),
      el("td", {class: "small"}, short(routine.prompt, 90)),
      el("td", {}, el("span", {class: `badge ${routine.enabled ? "on" : "off"}`}, routine.enabled ? "on" : "off")),
      el("td", {class: "row"},
        el("button", {class: "primary", onclick: () => act(routine, "run")}, "Run now"),
        el("button", {onclick: () => edit(routine)}, "Edit"),
        el("button", {onclick: () => showRuns(routine.name)}, "Runs"),
        el("button", {class: "danger", onclick: () => act(routine, "remove")}, "Remove"))));
    document.querySelector("#routines tbody").replaceChildren(...rows);
    const note = data.scheduler_pid ? `The scheduler is running (pid ${data.scheduler_pid}).`
      : "No scheduler is running: routines fire only while `deskloop scheduler` runs; Run now works without it.";
    document.getElementById("scheduler").textContent = note;
  }

  async function showRuns(name) {
    shownRuns = name;
    try {
      const data = await api("GET", `/api/routines/${encodeURIComponent(name)}/runs`);
      document.getElementById("runs-card").classList.remove("hidden");
      document.getElementById("runs-title").textContent = `Runs of ${name}`;
      const rows = data.runs.map((run) => el("tr", {dataset: {run: run.id, status: run.status}},
        el("td", {class: "small", title: run.started_at ? fullTime(run.started_at) : ""}, readable(run.started_at),
          run.session_id ? el("div", {}, el("a", {href: `/chat/${run.session_id}`}, `session #${run.session_id}`)) : null),
        el("td", {}, el("span", {class: `badge ${run.status === "ok" ? "ok" : run.status === "running" ? "running" : "fail"}`}, run.status),
          run.duration_s !== null ? el("div", {class: "small muted"}, `${run.duration_s.toFixed(1)} s`) : null),
        el("td", {}, el("pre", {}, run.output || ""))));
      if (!rows.length) rows.push(el("tr", {}, el("td", {colspan: 3, class: "muted"}, "No runs yet.")));
      document.querySelector("#runs tbody").replaceChildren(...rows);
      const running = data.runs.some((run) => run.status === "running");
      const awaited = follow && follow.name === name && Date.now() < follow.until &&
        data.runs.length <= follow.known;
      if (!running && !awaited && follow && follow.name === name) {
        follow = null;
        refresh(); // the run may have moved the next fire (every: counts from a run's end)
      }
      if ((running || awaited) && shownRuns === name) {
        setTimeout(() => { if (shownRuns === name) showRuns(name); }, 1000);
      }
    } catch (error) {
      banner(message, "error", error.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {enabled: form.elements.enabled.checked};
    for (const [name] of inputs) body[name] = form.elements[name].value.trim();
    try {
      const path = editing ? `/api/routines/${encodeURIComponent(editing)}` : "/api/routines";
      render(await api("POST", path, body));
      banner(message, "ok", editing ? `Saved ${body.name || editing}.` : `Created ${body.name}.`);
      edit(null);
    } catch (error) {
      banner(message, "error", error.message);
    }
  });

  function refresh() {
    return api("GET", "/api/routines").then(render).catch((error) => banner(message, "error", error.message));
  }

  buildForm();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
