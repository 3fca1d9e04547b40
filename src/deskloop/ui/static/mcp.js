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
        el("button", {onclick: () => act(server.name, server.enabled ? "disable" : "enable")},
          server.enabled ? "Disable" : "Enable"),
        el("button", {class: "danger", onclick: () => act(server.name, "remove")}, "Remove"))));
    document.querySelector("#servers tbody").replaceChildren(...rows);
  }

  document.getElementById("add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: document.getElementById("server-name").value.trim(),
      command: document.getElementById("server-command").value.trim(),
      url: document.getElementById("server-url").value.trim(),
      pairs: document.getElementById("server-pairs").value,
    };
    try {
      render(await api("POST", "/api/mcp", body));
      event.target.reset();
      banner(message, "ok", `Added ${body.name}. New sessions start it.`);
    } catch (error) {
      banner(message, "error", error.message);
    }
  });

  api("GET", "/api/mcp").then(render).catch((error) => banner(message, "error", error.message));
})();
