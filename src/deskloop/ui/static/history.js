// History: recent sessions or full-text search; each result opens the session to read or resume.
"use strict";

(() => {
  const {api, el, banner, when, short} = deskloop;
  const message = document.getElementById("message");
  const results = document.getElementById("results");
  const title = document.getElementById("results-title");

  // The store marks matches as [word]; shown as highlights, the rest as plain text.
  function snippet(text) {
    const parts = [];
    const pattern = /\[([^\]]*)\]/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      parts.push(text.slice(last, match.index), el("mark", {}, match[1]));
      last = match.index + match[0].length;
    }
    parts.push(text.slice(last));
    return parts;
  }

  function showSessions(sessions) {
    title.textContent = "Recent sessions";
    results.replaceChildren(...sessions.map((session) => el("li", {dataset: {session: session.id}},
      el("a", {href: `/chat/${session.id}`}, `#${session.id} ${short(session.title || "(no title)", 90)}`),
      el("div", {class: "small muted"},
        `${when(session.started_at)} · ${session.state_words} · ${session.model} at ${session.endpoint}`))));
    if (!sessions.length) results.append(el("li", {class: "muted"}, "No sessions yet."));
  }

  function showHits(query, hits) {
    title.textContent = `${hits.length} session${hits.length === 1 ? "" : "s"} matching “${query}”`;
    results.replaceChildren(...hits.map((hit) => el("li", {dataset: {session: hit.session_id}},
      el("a", {href: `/chat/${hit.session_id}`}, `#${hit.session_id} ${short(hit.title || "(no title)", 90)}`),
      el("div", {}, el("span", {class: "muted small who"}, `${hit.who}: `), snippet(hit.snippet)),
      el("div", {class: "small muted"},
        `${hit.hits} matching message${hit.hits === 1 ? "" : "s"} · ${when(hit.created_at)}`))));
  }

  async function load(query) {
    try {
      if (query) {
        const data = await api("GET", `/api/history?q=${encodeURIComponent(query)}`);
        showHits(query, data.hits);
      } else {
        showSessions((await api("GET", "/api/history")).sessions);
      }
      banner(message, "", "");
    } catch (error) {
      banner(message, "error", error.message);
    }
  }

  const input = document.getElementById("query");
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = input.value.trim();
    history.replaceState(null, "", query ? `?q=${encodeURIComponent(query)}` : location.pathname);
    load(query);
  });
  input.value = new URLSearchParams(location.search).get("q") || "";
  load(input.value.trim());
})();
