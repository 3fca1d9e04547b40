// Chat: the start page (/chat) and one session's page (/chat/<id>), fed by server-sent events.
"use strict";

(() => {
  const {api, el, banner, short} = deskloop;
  const message = document.getElementById("message");
  const match = location.pathname.match(/^\/chat\/(\d+)$/);

  const FOLD_CHARS = 1200;
  const FOLD_LINES = 16;

  function fail(error) {
    banner(message, "error", error.message || String(error));
  }

  // ---- /chat: start a session, list the open ones --------------------------------------

  async function startPage() {
    document.getElementById("start").classList.remove("hidden");
    document.title = "Chat · deskloop";
    const task = document.getElementById("task");
    document.getElementById("start-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = document.getElementById("start-button");
      button.disabled = true;
      banner(message, "ok", "Starting the session (the first one also starts the model)…");
      try {
        const started = await api("POST", "/api/chat", {text: task.value});
        const url = `/chat/${started.session_id}`;
        if (document.getElementById("new-tab").checked) {
          window.open(url, "_blank");
          task.value = "";
          banner(message, "ok", `Session #${started.session_id} is open in its own tab.`);
          refresh();
        } else {
          location.assign(url);
        }
      } catch (error) {
        fail(error);
      } finally {
        button.disabled = false;
      }
    });
    task.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        document.getElementById("start-form").requestSubmit();
      }
    });
    async function refresh() {
      try {
        const data = await api("GET", "/api/chat");
        document.getElementById("no-live").classList.toggle("hidden", data.sessions.length > 0);
        document.getElementById("live").replaceChildren(...data.sessions.map((session) =>
          el("li", {class: "row", dataset: {session: session.session_id}},
            el("span", {class: `status-dot ${session.running ? "running" : ""}`}),
            el("a", {href: `/chat/${session.session_id}`}, `#${session.session_id} ${short(session.title || "", 80)}`),
            session.waiting_for.length ? el("span", {class: "badge warn"}, "waiting for you") : null,
            el("span", {class: "spacer"}),
            el("button", {onclick: () => popOut(session.session_id)}, "Pop out"))));
      } catch (error) {
        fail(error);
      }
    }
    refresh();
    setInterval(refresh, 3000);
  }

  function popOut(sessionId) {
    window.open(`/chat/${sessionId}`, `deskloop-session-${sessionId}`, "popup,width=760,height=900");
  }

  // ---- /chat/<id>: one session ----------------------------------------------------------

  function sessionPage(sessionId) {
    document.getElementById("session").classList.remove("hidden");
    const transcript = document.getElementById("transcript");
    const text = document.getElementById("text");
    const send = document.getElementById("send");
    const stop = document.getElementById("stop");
    const closeButton = document.getElementById("close-session");
    let bubble = null; // the assistant text being streamed into
    let source = null;
    let live = false;
    const tools = new Map();
    const asks = new Map();
    const openQuestions = [];
    // What the session is doing now, from the same steps the terminal's status line reads.
    let status = null; // {text, since}
    let ended = "";    // how the last run ended, in the store's words
    setInterval(showState, 1000);

    function follow(node) {
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
      transcript.append(node);
      if (atBottom) window.scrollTo(0, document.body.scrollHeight);
      return node;
    }

    function showState() {
      const running = !stop.disabled;
      let words = live ? "waiting for you" : (ended || "not running");
      if (running) {
        words = status ? `${status.text} for ${Math.round((Date.now() - status.since) / 1000)} s` : "working";
      }
      document.getElementById("state-text").textContent = words;
    }

    function setStatus(text, keepSince) {
      status = {text, since: keepSince && status ? status.since : Date.now()};
      showState();
    }

    function setRunning(running) {
      document.getElementById("dot").className = `status-dot ${running ? "running" : ""}`;
      stop.disabled = !running;
      send.disabled = running;
      if (running && !status) setStatus("starting");
      if (!running) status = null;
      showState();
    }

    // A long message shows its start; the rest opens on a click.
    function folded(textContent, className) {
      const lines = textContent.split("\n");
      if (textContent.length <= FOLD_CHARS && lines.length <= FOLD_LINES) {
        return el("div", {class: className}, textContent);
      }
      const head = lines.slice(0, FOLD_LINES).join("\n").slice(0, FOLD_CHARS);
      const rest = el("details", {class: "fold"},
        el("summary", {}, `Show all ${textContent.length.toLocaleString()} characters`),
        el("div", {}, textContent.slice(head.length)));
      return el("div", {class: `${className} folded`}, head, rest);
    }

    function setLive(isLive) {
      live = isLive;
      closeButton.classList.toggle("hidden", !isLive);
      send.textContent = isLive ? "Send" : "Continue session";
      setRunning(false);
    }

    function resultBody(content) {
      const parts = [];
      for (const block of content || []) {
        if (block.type === "text") parts.push(el("pre", {}, block.text));
        else if (block.type === "image" && block.source && block.source.type === "base64") {
          parts.push(el("img", {alt: "tool image", src: `data:${block.source.media_type};base64,${block.source.data}`}));
        } else parts.push(el("pre", {}, `[${block.type}]`));
      }
      return parts;
    }

    function toolCall(event) {
      bubble = null;
      const state = el("span", {class: "state muted"}, "running…");
      const details = el("details", {}, el("summary", {class: "small muted"}, "input"),
        el("pre", {}, JSON.stringify(event.input, null, 2)));
      const card = el("div", {class: "tool", dataset: {tool: event.name, call: event.id}},
        el("div", {class: "head"}, el("span", {class: "name"}, event.name),
          el("span", {class: "args"}, short(event.input, 120)), state),
        details);
      tools.set(event.id, {card, state});
      follow(card);
    }

    function toolResult(event) {
      let known = tools.get(event.id);
      if (!known) {
        toolCall({id: event.id, name: event.name, input: {}});
        known = tools.get(event.id);
      }
      const failed = event.status !== "ok";
      known.card.classList.add(failed ? "error" : "ok");
      known.card.dataset.status = event.status;
      known.state.textContent = `${failed ? "✗" : "✓"} ${event.status}` +
        (event.seconds !== undefined ? ` · ${event.seconds.toFixed(1)} s` : "");
      known.card.append(el("details", {open: failed}, el("summary", {class: "small muted"}, "result"),
        resultBody(event.content)));
    }

    function approval(event) {
      bubble = null;
      const buttons = el("div", {class: "buttons"},
        [["allow_once", "Allow once", "primary"], ["allow_for_session", "Allow for this session", ""],
          ["deny", "Refuse", "danger"]].map(([answer, label, kind]) =>
          el("button", {class: kind, dataset: {answer}, onclick: async () => {
            for (const button of buttons.querySelectorAll("button")) button.disabled = true;
            try {
              await api("POST", `/api/chat/${sessionId}/approvals/${event.id}`, {answer});
            } catch (error) {
              fail(error);
              for (const button of buttons.querySelectorAll("button")) button.disabled = false;
            }
          }}, label)));
      const card = el("div", {class: "ask", dataset: {approval: event.id}},
        el("strong", {}, `The agent wants to run ${event.name}`),
        el("span", {class: "muted"}, ` (${event.risk})`),
        el("pre", {}, JSON.stringify(event.input, null, 2)),
        event.untrusted_source ? el("div", {class: "small"},
          "Asked because the session read untrusted text before, from ",
          el("code", {}, `${event.untrusted_source.tool_name} (${event.untrusted_source.origin})`), ": ",
          el("q", {}, event.untrusted_source.quote)) : null,
        buttons);
      asks.set(event.id, {card, buttons});
      follow(card);
    }

    function approvalAnswered(event) {
      const known = asks.get(event.id);
      if (!known) return;
      const said = {allow_once: "Allowed once", allow_for_session: "Allowed for this session",
        deny: "Refused", withdrawn: "Withdrawn: the turn stopped"}[event.answer] || event.answer;
      known.card.classList.add("answered");
      known.buttons.replaceWith(el("div", {class: "small"}, said));
    }

    function question(event) {
      bubble = null;
      const card = el("div", {class: "ask question"},
        el("strong", {}, event.question),
        el("div", {class: "buttons"}, (event.options || []).map((option) =>
          el("button", {class: "option", onclick: () => post(option)}, option))),
        el("div", {class: "small muted"}, "Pick an answer or type your own below."));
      openQuestions.push(card);
      follow(card);
    }

    function line(textContent, kind) {
      bubble = null;
      follow(el("div", {class: `line ${kind || ""}`}, textContent));
    }

    function render(event) {
      switch (event.event) {
        case "user_message":
          bubble = null;
          for (const card of openQuestions.splice(0)) {
            card.classList.add("answered");
            for (const button of card.querySelectorAll("button")) button.disabled = true;
          }
          follow(folded(event.text, "msg user"));
          break;
        case "context":
          follow(el("details", {class: "context"},
            el("summary", {}, event.who === "screen" ? "screen data sent with it" : "deskloop's note to the agent"),
            el("pre", {}, event.text)));
          break;
        case "text_delta":
          if (!bubble) bubble = follow(el("div", {class: "msg assistant"}));
          bubble.append(event.text);
          if (status && status.text !== "writing") setStatus("writing");
          break;
        case "turn_start":
          bubble = null;
          setStatus("waiting for the model");
          break;
        case "prompt_size":
          if (status && status.text.startsWith("waiting for the model")) {
            setStatus(`waiting for the model (${event.tokens} prompt tokens)`, true);
          }
          break;
        case "turn_break": case "usage":
          bubble = null;
          break;
        case "tool_start": toolCall(event); setStatus(`running ${event.name}`); break;
        case "tool_end": toolResult(event); break;
        case "approval_needed": approval(event); setStatus("waiting for your approval"); break;
        case "approval_answered": approvalAnswered(event); break;
        case "question": question(event); break;
        case "busy": setRunning(event.running); break;
        case "turn_stopped": line("Stopped."); break;
        case "notice":
          // MCP servers' stderr and the starting screen go to the session log, not here.
          if (["mcp_report", "observe_first_skipped"].includes(event.kind)) line(event.message);
          break;
        case "error": line(event.message, "error"); break;
        case "run_end":
          ended = event.words || "";
          if (ended) document.getElementById("session-ended").textContent = `Last run: ${ended}`;
          if (event.state && event.state !== "finished") {
            line(event.words || event.message, event.state === "failed" ? "error" : "");
          }
          if (event.state === "stopped_at_limit") {
            line("Your next message goes on with a new set of turns under the same limits.");
          }
          break;
        case "session_closed":
          if (source) source.close();
          source = null;
          setLive(false);
          line("Session closed. Send a message to carry on with it.");
          break;
        default:
          break;
      }
    }

    function listen() {
      if (source) source.close();
      source = new EventSource(`/api/chat/${sessionId}/events`);
      source.onmessage = (event) => render(JSON.parse(event.data));
      // The browser retries a dropped stream by itself; a refused one (the UI restarted and
      // the session is no longer open) is closed for good.
      source.onerror = () => {
        if (source && source.readyState === EventSource.CLOSED) {
          source = null;
          setLive(false);
          line("The session is no longer open here. Send a message to carry on with it.");
        }
      };
    }

    async function post(textToSend) {
      if (!textToSend.trim()) return;
      send.disabled = true;
      try {
        await api("POST", `/api/chat/${sessionId}/messages`, {text: textToSend});
        text.value = "";
        if (!live) {
          setLive(true);
          listen();
        }
      } catch (error) {
        fail(error);
        send.disabled = false;
      }
    }

    document.getElementById("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      post(text.value);
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        if (!send.disabled) post(text.value);
      }
    });
    stop.addEventListener("click", () => api("POST", `/api/chat/${sessionId}/stop`).catch(fail));
    closeButton.addEventListener("click", () => api("POST", `/api/chat/${sessionId}/close`).catch(fail));
    document.getElementById("popout").addEventListener("click", () => popOut(sessionId));

    api("GET", `/api/chat/${sessionId}`).then((data) => {
      const session = data.session;
      document.getElementById("session-title").textContent = `#${session.id} ${short(session.title || "", 70)}`;
      document.title = `#${session.id} ${short(session.title || "", 40)} · deskloop`;
      document.getElementById("session-meta").textContent = `${session.model} at ${session.endpoint}`;
      ended = session.state === "running" ? "" : session.state_words;
      if (ended) document.getElementById("session-ended").textContent = `Last run: ${ended}`;
      for (const event of data.transcript) render(event);
      bubble = null;
      setLive(data.live);
      if (data.live) listen();
    }).catch(fail);
  }

  if (match) sessionPage(Number(match[1]));
  else startPage();
})();
