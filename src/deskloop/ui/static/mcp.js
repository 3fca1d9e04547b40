// MCP servers: the table with enable/disable/remove, and the add form.
"use strict";

(() => {
  const {api, el, banner} = deskloop;
  const message = document.getElementById("message");

  async function act(name, action) {
    if (action === "remove" && !confirm(`Remove the MCP server ${name}?`)) return;
    try {
      render(await api("POST", `/api/mcp/${encodeURIComponent(name)}/${action}`));
      banner(message, "ok", `${name}: ${action === "remove" ? "removed" : action + "d"}. New sessions see the change.`);
    } catch (error) {
      banner(message, "error", error.message);
    }
  }

  function render(data) {
    document.getElementById("servers-file").textContent = data.file;
    document.getElementById("no-servers").classList.toggle("hidden", data.servers.length > 0);
    document.getElementById("servers").classList.toggle("hidden", data.servers.length === 0);
    const rows = data.servers.map((server) => el("tr", {dataset: {server: server.name}},
      el("td", {class: "mono"}, server.name),
      el("td", {}, server.kind),
      el("td", {class: "mono small"}, server.target),
      el("td", {}, el("span", {class: `badge ${server.enabled ? "on" : "off"}`}, server.enabled ? "on" : "off")),
      el("td", {class: "row"},
        el("button", {onclick: () => edit(server)}, "Edit"),
        el("button", {onclick: () => act(server.name, server.enabled ? "disable" : "enable")},
          server.enabled ? "Disable" : "Enable"),
        el("button", {class: "danger", onclick: () => act(server.name, "remove")}, "Remove"))));
    document.querySelector("#servers tbody").replaceChildren(...rows);
  }

  const form = document.getElementById("add");
  const field = (id) => document.getElementById(id);

  // The add form, filled with a server's values; saving replaces that server.
  function edit(server) {
    field("form-title").textContent = `Edit ${server.name}`;
    field("previous-name").value = server.name;
    field("server-name").value = server.name;
    field("server-command").value = server.kind === "stdio" ? server.target : "";
    field("server-url").value = server.kind === "http" ? server.target : "";
    field("server-pairs").value = server.pairs;
    field("server-replace").checked = true;
    field("submit-server").textContent = "Save changes";
    field("cancel-edit").classList.remove("hidden");
    field("server-name").focus();
  }

  function endEdit() {
    form.reset();
    field("previous-name").value = "";
    field("form-title").textContent = "Add a server";
    field("submit-server").textContent = "Add server";
    field("cancel-edit").classList.add("hidden");
  }

  field("cancel-edit").addEventListener("click", endEdit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const editing = field("previous-name").value;
    const body = {
      name: field("server-name").value.trim(),
      command: field("server-command").value.trim(),
      url: field("server-url").value.trim(),
      pairs: field("server-pairs").value,
      replace: field("server-replace").checked,
      previous_name: editing,
    };
    try {
      render(await api("POST", "/api/mcp", body));
      endEdit();
      banner(message, "ok", editing ? `Saved ${body.name}. New sessions start it as changed.`
        : `Added ${body.name}. New sessions start it.`);
    } catch (error) {
      banner(message, "error", error.message);
    }
  });

  api("GET", "/api/mcp").then(render).catch((error) => banner(message, "error", error.message));
})();
