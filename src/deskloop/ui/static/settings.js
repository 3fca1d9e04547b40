// Settings: the three-way model choice and the plain fields, saved in one request.
"use strict";

(() => {
  const {api, el, banner} = deskloop;
  const form = document.getElementById("settings");
  const message = document.getElementById("message");
  let view = null;

  function field(item) {
    const id = `field-${item.key.replace(/\W/g, "-")}`;
    let input;
    if (item.choices.length) {
      input = el("select", {id, name: item.key},
        item.choices.map((choice) => el("option", {value: choice, selected: choice === item.value}, choice)));
    } else if (item.kind === "bool") {
      input = el("input", {type: "checkbox", id, name: item.key, checked: item.value === true});
    } else {
      input = el("input", {type: item.kind === "number" ? "number" : "text", id, name: item.key,
        value: item.value, step: item.kind === "number" ? "any" : null});
    }
    input.dataset.key = item.key;
    input.dataset.kind = item.kind;
    return [el("label", {for: id}, item.label), input];
  }

  // Embedded: the model field shows the embedded model's own name, and is not sent.
  function showModelFor(source) {
    const model = document.querySelector('#groups [data-key="agent.model"]');
    if (!model) return;
    const embedded = source === "embedded";
    model.disabled = embedded;
    model.value = embedded ? view.embedded_model : model.dataset.saved;
    model.title = embedded ? "The embedded model answers with its own model; pick another with `deskloop config set server.model`" : "";
    const hint = document.getElementById("model-hint");
    if (hint) hint.textContent = embedded ? `The embedded model on this machine: ${view.embedded_model}.` : "The name the endpoint is asked for.";
    showKeyHint();
  }

  // The cloud without a key fails: said as soon as the choice is made, not after a session.
  function showKeyHint() {
    const hint = document.getElementById("key-hint");
    const cloud = form.elements.model_source.value === "cloud";
    const typed = document.getElementById("api-key").value.trim() !== "";
    const missing = cloud && !typed && view && !view.api_key_set && !view.api_key_from_environment;
    hint.classList.toggle("hidden", !missing);
  }

  function render(data) {
    view = data;
    document.getElementById("config-file").textContent = data.config_file;
    document.getElementById("applies").textContent = data.applies;
    document.getElementById("cloud-url").textContent = data.cloud_url;
    document.getElementById(`source-${data.model_source}`).checked = true;
    document.getElementById("custom-url").value = data.custom_url;
    const key = document.getElementById("api-key");
    key.value = "";
    key.placeholder = data.api_key_set ? "saved; type a new one to replace it"
      : data.api_key_from_environment ? "ANTHROPIC_API_KEY is used; or type one to save"
      : "sk-ant-…";
    document.getElementById("next-session").textContent = `The next session talks to ${data.next_session}.`;
    const notes = document.getElementById("notes");
    notes.replaceChildren(...[...data.warnings, ...data.notes].map((note) => el("div", {class: "banner warn small"}, note)));
    const groups = document.getElementById("groups");
    groups.replaceChildren(...data.groups.map((group) =>
      el("section", {class: "card"},
        el("h2", {}, group.title),
        el("p", {class: "note"}, group.note),
        el("div", {class: "grid"}, group.fields.map(field)))));
    const model = document.querySelector('#groups [data-key="agent.model"]');
    if (model) {
      model.dataset.saved = model.value;
      model.closest("section").querySelector(".note").id = "model-hint";
    }
    showModelFor(data.model_source);
  }

  function collect() {
    const body = {model_source: form.elements.model_source.value, values: {}};
    body.custom_url = document.getElementById("custom-url").value.trim();
    body.api_key = document.getElementById("api-key").value.trim();
    for (const input of document.querySelectorAll("#groups [data-key]")) {
      if (input.disabled) continue;
      body.values[input.dataset.key] = input.dataset.kind === "bool" ? input.checked : input.value;
    }
    return body;
  }

  // A click anywhere on a choice's box picks it; typing a URL picks the custom choice.
  for (const box of document.querySelectorAll(".choice")) {
    box.addEventListener("click", () => {
      document.getElementById(`source-${box.dataset.source}`).checked = true;
      showModelFor(box.dataset.source);
    });
  }
  document.getElementById("custom-url").addEventListener("input", () => {
    document.getElementById("source-custom").checked = true;
    showModelFor("custom");
  });
  document.getElementById("api-key").addEventListener("input", showKeyHint);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("save");
    button.disabled = true;
    try {
      render(await api("POST", "/api/settings", collect()));
      const what = view.saved_labels.length ? `Saved: ${view.saved_labels.join(", ")}.` : "Saved. Nothing had changed.";
      const said = `${what} ${view.applies} The next session talks to ${view.next_session}.`;
      if (view.warnings.length) banner(message, "warn", `${said} ${view.warnings.join(" ")}`);
      else banner(message, "ok", said);
    } catch (error) {
      banner(message, "error", error.message);
    } finally {
      button.disabled = false;
    }
  });

  api("GET", "/api/settings").then(render).catch((error) => banner(message, "error", error.message));
})();
