// Shared by every page: the navigation bar, JSON calls that carry the CSRF token, DOM helpers.
"use strict";

const deskloop = (() => {
  const csrf = document.querySelector('meta[name="deskloop-csrf"]').content;
  const pages = [
    ["/chat", "Chat"],
    ["/history", "History"],
    ["/routines", "Routines"],
    ["/settings", "Settings"],
    ["/mcp", "MCP servers"],
    ["/doctor", "Doctor"],
  ];

  // el("div", {class: "x", onclick: f}, "text", child) builds an element; text is never HTML.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function renderNav() {
    const header = document.getElementById("nav");
    if (!header) return;
    header.className = "nav";
    header.append(el("span", {class: "brand"}, "deskloop"));
    for (const [path, label] of pages) {
      const current = location.pathname === path || location.pathname.startsWith(path + "/");
      header.append(el("a", {href: path, class: current ? "current" : null}, label));
    }
  }

  async function api(method, path, body) {
    const options = {method, headers: {}};
    if (method !== "GET") {
      options.headers["X-Deskloop-CSRF"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      throw new Error(data && data.error ? data.error : `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function banner(node, kind, text) {
    node.className = `banner ${kind}`;
    node.textContent = text;
    node.classList.toggle("hidden", !text);
  }

  function when(seconds) {
    if (!seconds) return "";
    return new Date(seconds * 1000).toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }

  // A time as a person reads it, in this browser's zone: "today 14:05", "tomorrow 08:00",
  // "yesterday 21:30", "Fri 09:00" within the week ahead, else "24 Dec 18:00" (and the year
  // when it is not this one). Takes epoch seconds or an ISO string.
  function readable(value) {
    if (value === null || value === undefined || value === "") return "";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const clock = date.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
    const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((day(date) - day(new Date())) / 86_400_000);
    if (days === 0) return `today ${clock}`;
    if (days === 1) return `tomorrow ${clock}`;
    if (days === -1) return `yesterday ${clock}`;
    if (days > 1 && days < 7) return `${date.toLocaleDateString(undefined, {weekday: "short"})} ${clock}`;
    const sameYear = date.getFullYear() === new Date().getFullYear();
    const dayMonth = date.toLocaleDateString(undefined, {day: "numeric", month: "short", year: sameYear ? undefined : "numeric"});
    return `${dayMonth} ${clock}`;
  }

  // The full local date and time, for a tooltip beside `readable`.
  function fullTime(value) {
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString(undefined, {dateStyle: "full", timeStyle: "short"});
  }

  function short(value, limit) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  document.addEventListener("DOMContentLoaded", renderNav);
  return {api, el, banner, when, readable, fullTime, short};
})();
