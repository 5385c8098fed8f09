// The web UI's entry point: hash routes, the live indicator, errors and the token form.

import { mayAct, me, setWho, who } from "./actions.js";
import { setToken } from "./api.js";
import { show as buckets } from "./buckets.js";
import { show as dashboard } from "./dashboard.js";
import { show as pipelines } from "./pipelines.js";
import { show as results } from "./results.js";
import { show as runners } from "./runners.js";
import { show as work } from "./work.js";

const pages = { "": dashboard, buckets, runners, pipelines, results, work };
const main = document.getElementById("main");
const live = document.getElementById("live");
const banner = document.getElementById("banner");
const tokenForm = document.getElementById("token");
const whoBox = document.getElementById("who");
const meBox = document.getElementById("me");
let running = null;

const status = {
  live() {
    live.textContent = "live";
    live.className = "live on";
    banner.hidden = true;
    tokenForm.hidden = true;
  },
  lost(error) {
    live.textContent = "reconnecting…";
    live.className = "live off";
    if (error && error.status === 401) {
      live.textContent = "needs a token";
      tokenForm.hidden = false;
      tokenForm.querySelector("input").focus();
    } else {
      banner.textContent = `Lost the connection to the server (${error.message || error}); trying again.`;
      banner.hidden = false;
    }
  },
};

function route() {
  if (running) running.abort();
  running = new AbortController();
  const path = location.hash.replace(/^#\/?/, "").split("?")[0].split("/")[0];
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.page === (path || "dashboard"));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  const page = pages[path];
  if (!page) {
    main.innerHTML = `<h1>Not found</h1><p>There is no page “${path}”. <a href="#/">Go to the dashboard.</a></p>`;
    return;
  }
  page(main, running.signal, status);
  // The name box is for open servers: with tokens, actions carry the token's name.
  me().then((found) => {
    whoBox.hidden = !(found.open && mayAct(found));
    meBox.hidden = found.open;
    meBox.textContent = found.open ? "" : `${found.name} · ${found.role}`;
  }, () => { whoBox.hidden = true; meBox.hidden = true; });
}

whoBox.querySelector("input").value = who();
whoBox.querySelector("input").addEventListener("change", (event) => setWho(event.target.value));

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(tokenForm.querySelector("input").value.trim());
  tokenForm.hidden = true;
  route();
});
window.addEventListener("hashchange", route);
route();
