// Doctor: runs the checks and shows each with its fix.
"use strict";

(() => {
  const {api, el, banner} = deskloop;
  const verdict = document.getElementById("verdict");
  const button = document.getElementById("run");

  function render(report) {
    document.getElementById("platform").textContent = `platform: ${report.platform}`;
    const yes = (flag) => (flag ? "yes" : "no");
    const kind = report.can_act ? "ok" : report.can_see ? "warn" : "error";
    banner(verdict, kind, `Can see the screen: ${yes(report.can_see)}. Can act on it: ${yes(report.can_act)}.` +
      (report.verdict ? ` ${report.verdict}` : ""));
    const rows = report.checks.map((check) => el("tr", {dataset: {check: check.name}},
      el("td", {}, el("span", {class: `badge ${check.status}`}, check.status)),
      el("td", {}, check.name, el("div", {class: "small muted"}, `needed to ${check.needed_to}`)),
      el("td", {}, check.detail,
        check.status !== "ok" && check.fix ? el("div", {class: "small"}, el("strong", {}, "Fix: "), el("code", {}, check.fix)) : null)));
    document.querySelector("#checks tbody").replaceChildren(...rows);
  }

  async function run() {
    button.disabled = true;
    banner(verdict, "warn", "Running the checks…");
    try {
      render(await api("GET", "/api/doctor"));
    } catch (error) {
      banner(verdict, "error", error.message);
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener("click", run);
  run();
})();
