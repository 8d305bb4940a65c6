// The operator platform's page: log in, pick a market session, submit / revise / withdraw
// offers (aggregators), and read a cleared session's results. Plain JavaScript, no build
// step, no network beyond this service; every request goes through api().
"use strict";

(() => {
  const TOKEN_KEY = "tsodso.token";
  const SESSION_KEY = "tsodso.session";
  const POLL_MS = 5000;
  const $ = (selector) => document.querySelector(selector);
  const state = {token: sessionStorage.getItem(TOKEN_KEY), me: null, sid: null,
                 session: null, offers: [], revising: null, poll: null};

  // ------------------------------------------------------------------------ helpers
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key in node && !key.includes("-")) node[key] = value;
      else node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }
  const num = (x, digits) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  const short = (x) => String(+Number(x).toPrecision(6));
  const when = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16).replace("T", " ") +
                         " UTC" : "–");
  const canWrite = () => !!state.me && state.me.scopes.includes("offers:write");
  const isOpen = () => !!state.session && state.session.state === "open";

  function fillTable(table, rows, cells, empty, decorate = () => {}) {
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const width = table.tHead.rows[0].cells.length;
      body.append(el("tr", {}, el("td", {colSpan: width, className: "empty"}, empty)));
    }
    for (const row of rows) {
      const tr = el("tr", {}, ...cells(row).map((c) => el("td", {}, c)));
      decorate(tr, row);
      body.append(tr);
    }
  }

  // --------------------------------------------------------------------- API, errors
  class ApiError extends Error {
    constructor(status, detail) {
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(method, path, body, form) {
    const headers = {Accept: "application/json"};
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let payload;
    if (form) payload = new URLSearchParams(form);
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, {method, headers, body: payload});
    } catch (err) {
      throw new ApiError(0, `the service cannot be reached (${err.message})`);
    }
    const text = await res.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
    if (!res.ok) {
      if (res.status === 401 && path !== "/token") logout();
      const detail = data && typeof data === "object" && "detail" in data ? data.detail
        : (text || res.statusText);
      throw new ApiError(res.status, detail);
    }
    return data;
  }

  // detail is a message or a list of {msg|message, loc|field}
  function detailLines(detail) {
    if (!Array.isArray(detail)) {
      return [typeof detail === "object" && detail !== null ? JSON.stringify(detail)
        : String(detail)];
    }
    return detail.map((item) => {
      if (typeof item !== "object" || item === null) return String(item);
      const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body").join(".")
        : (item.field || "");
      const what = item.msg || item.message || JSON.stringify(item);
      return where ? `${where}: ${what}` : what;
    });
  }

  // the message goes just before the form or table the failed action came from
  function showError(err, anchor) {
    const box = $("#error");
    const lines = err instanceof ApiError ? detailLines(err.detail) : [String(err.message || err)];
    const head = err.status ? `Refused (HTTP ${err.status})` : "Error";
    if (lines.length === 1) box.replaceChildren(el("p", {}, `${head}: ${lines[0]}`));
    else {
      box.replaceChildren(el("p", {}, `${head}:`),
                          el("ul", {}, ...lines.map((line) => el("li", {}, line))));
    }
    if (!anchor || anchor.closest("[hidden]")) {
      anchor = state.me ? $("#sessions") : $("#login-form");  // the form is hidden now
    }
    anchor.before(box);
    box.hidden = false;
  }

  function clearError() {
    $("#error").hidden = true;
    $("#error").replaceChildren();
  }

  // -------------------------------------------------------------------- log in / out
  async function start() {
    state.me = await api("GET", "/api/me");
    $("#whoami").textContent = `Logged in as ${state.me.organisation} (${state.me.role})`;
    $("#whoami").title = [state.me.party, ...state.me.area].filter(Boolean).join(", ");
    $("#whoami").hidden = $("#logout").hidden = false;
    $("#login").hidden = true;
    $("#app").hidden = false;
    await loadSessions();
  }

  function logout() {
    clearTimeout(state.poll);
    sessionStorage.removeItem(TOKEN_KEY);
    Object.assign(state, {token: null, me: null, sid: null, session: null, offers: [],
                          revising: null});
    for (const id of ["#whoami", "#logout", "#app", "#results"]) $(id).hidden = true;
    $("#login").hidden = false;
    purgeCharts();
  }

  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      const answer = await api("POST", "/token", undefined, {
        username: $("#login-username").value, password: $("#login-password").value});
      state.token = answer.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $("#login-password").value = "";
      await start();
    } catch (err) { showError(err, $("#login-form")); }
  });

  $("#logout").addEventListener("click", () => {
    logout();
    clearError();
    sessionStorage.removeItem(SESSION_KEY);
  });

  // ------------------------------------------------------------------------ sessions
  async function loadSessions() {
    const sessions = await api("GET", "/api/sessions");
    const select = $("#session-select");
    select.replaceChildren(el("option", {value: "", disabled: true}, sessions.length
      ? "Choose a session" : "No sessions yet"),
      ...sessions.map((s) => el("option", {value: String(s.id)}, sessionLabel(s))));
    const wanted = state.sid ?? Number(sessionStorage.getItem(SESSION_KEY));
    const pick = sessions.find((s) => s.id === wanted) || sessions[sessions.length - 1];
    select.value = pick ? String(pick.id) : "";
    if (pick) await selectSession(pick.id);
  }

  const sessionLabel = (s) => `#${s.id} ${s.name} — ${s.state} (${s.scheme})`;

  async function selectSession(sid) {
    if (sid !== state.sid) {
      stopRevising();
      purgeCharts();
      $("#results").hidden = true;
    }
    state.sid = sid;
    sessionStorage.setItem(SESSION_KEY, String(sid));
    await refreshSession();
  }

  async function refreshSession() {
    const sid = state.sid;
    const session = await api("GET", `/api/sessions/${sid}`);
    if (sid !== state.sid) return;
    state.session = session;
    const option = $(`#session-select option[value="${sid}"]`);
    if (option) option.textContent = sessionLabel(session);
    renderSessionInfo();
    await loadOffers();
    if (session.state === "cleared") await loadResults();
    else $("#results").hidden = true;
    schedulePoll();
  }

  function renderSessionInfo() {
    const s = state.session;
    const items = [["Name", s.name], ["State", s.state], ["Scheme", s.scheme],
                   ["Scenario", s.scenario], ["Gate opens", when(s.gate_open)],
                   ["Gate closes", when(s.gate_close)],
                   ["Periods", `${s.n_periods} × ${s.period_hours} h`]];
    if (s.total_cost !== null) items.push(["Total cost ($)", num(s.total_cost, 2)]);
    if (s.status) items.push(["Solver status", s.status]);
    if (s.error) items.push(["Error", s.error]);
    $("#session-info").replaceChildren(...items.flatMap(([k, v]) => [
      el("dt", {}, k), el("dd", {"data-field": k.toLowerCase().replaceAll(" ", "-")}, v)]));
    $("#offer-section").hidden = !canWrite() || !isOpen();
  }

  // a session waiting for its gate or its clearing is read again every few seconds
  function schedulePoll() {
    clearTimeout(state.poll);
    if (state.session && ["open", "clearing"].includes(state.session.state)) {
      state.poll = setTimeout(async () => {
        try {
          const s = await api("GET", `/api/sessions/${state.sid}`);
          if (s.state !== state.session.state) await refreshSession();
          else schedulePoll();
        } catch { if (state.me) schedulePoll(); }
      }, POLL_MS);
    }
  }

  $("#session-select").addEventListener("change", async (ev) => {
    clearError();
    try { await selectSession(Number(ev.target.value)); }
    catch (err) { showError(err, $("#sessions")); }
  });

  $("#refresh").addEventListener("click", async () => {
    clearError();
    try { await loadSessions(); }
    catch (err) { showError(err, $("#sessions")); }
  });

  // -------------------------------------------------------------------------- offers
  async function loadOffers() {
    const sid = state.sid;
    const offers = await api("GET", `/api/sessions/${sid}/offers`);
    if (sid !== state.sid) return;
    state.offers = offers;
    fillTable($("#offers-table"), offers, (o) => [
      o.offer_id, o.der_id, o.feeder_id,
      o.steps.map((x) => `${short(x.quantity_mw)} MW @ ${short(x.price_per_mwh)} $/MWh`)
        .join("; ") + (o.max_mw ? " (capped per period)" : ""),
      num(o.offered_mw, 4), el("span", {className: `status ${o.status}`}, o.status),
      el("span", {className: "revision"}, String(o.revision)), offerActions(o)],
    "No offers yet", (tr, o) => {
      tr.setAttribute("data-testid", "offer-row");
      tr.dataset.offerId = o.offer_id;
    });
    // the DERs the caller may offer (its portfolio): id, kind, rating
    const ders = await api("GET", `/api/sessions/${sid}/ders`);
    if (sid !== state.sid) return;
    const offerable = ders.filter((d) => d.offerable);
    $("#der-list").replaceChildren(...offerable.map((d) => el("option", {value: d.der_id},
      `${d.kind}, ${d.feeder_id} bus ${d.bus_id}, ${short(d.p_max_mw)} MW`)));
    const offered = [...new Set(offers.map((o) => o.der_id))];
    $("#der-hint").textContent = offerable.length
      ? `${offerable.length} of your DERs take offers` +
        (offered.length ? `; offered in this session: ${offered.join(", ")}` : "")
      : "the id of one of your DERs";
  }

  function offerActions(o) {
    if (!canWrite() || !isOpen() || o.status !== "active") return "";
    const revise = el("button", {type: "button", "data-testid": "revise",
                                 "aria-label": `Revise offer ${o.offer_id}`}, "Revise");
    const withdraw = el("button", {type: "button", "data-testid": "withdraw",
                                   "aria-label": `Withdraw offer ${o.offer_id}`}, "Withdraw");
    revise.addEventListener("click", () => startRevising(o));
    withdraw.addEventListener("click", () => withdrawOffer(o));
    return el("span", {className: "actions"}, revise, " ", withdraw);
  }

  function addStep(quantity = "", price = "") {
    const remove = el("button", {type: "button", className: "remove-step"}, "Remove");
    const tr = el("tr", {className: "step"},
      el("td", {}, el("input", {type: "number", step: "any", value: String(quantity),
                                className: "step-quantity", "data-testid": "step-quantity"})),
      el("td", {}, el("input", {type: "number", step: "any", value: String(price),
                                className: "step-price", "data-testid": "step-price"})),
      el("td", {}, remove));
    remove.addEventListener("click", () => {
      tr.remove();
      if (!$("#steps").rows.length) addStep();
      labelSteps();
    });
    $("#steps").append(tr);
    labelSteps();
  }

  function labelSteps() {
    for (const [k, tr] of [...$("#steps").rows].entries()) {
      tr.querySelector(".step-quantity").setAttribute("aria-label", `Step ${k + 1} quantity (MW)`);
      tr.querySelector(".step-price").setAttribute("aria-label", `Step ${k + 1} price ($/MWh)`);
      tr.querySelector(".remove-step").setAttribute("aria-label", `Remove step ${k + 1}`);
    }
  }

  // what the user typed goes to the service as is: it checks and names every field
  const value = (text) => {
    const t = text.trim();
    if (t === "") return null;
    return Number.isNaN(Number(t)) ? t : Number(t);
  };

  function readSteps() {
    return [...$("#steps").rows].map((tr) => ({
      quantity_mw: value(tr.querySelector(".step-quantity").value),
      price_per_mwh: value(tr.querySelector(".step-price").value)}));
  }

  function readMax() {
    const parts = $("#offer-max").value.split(",").map(value).filter((v) => v !== null);
    if (!parts.length) return null;
    return parts.length === 1 ? Array(state.session.n_periods).fill(parts[0]) : parts;
  }

  function resetOfferForm() {
    $("#offer-form").reset();
    $("#steps").replaceChildren();
    addStep();
  }

  function startRevising(o) {
    clearError();
    state.revising = o;
    $("#offer-title").textContent = `Revise offer ${o.offer_id} (revision ${o.revision})`;
    $("#offer-id").value = o.offer_id;
    $("#offer-der").value = o.der_id;
    $("#offer-id").disabled = $("#offer-der").disabled = true;
    $("#steps").replaceChildren();
    for (const s of o.steps) addStep(s.quantity_mw, s.price_per_mwh);
    const caps = o.max_mw || [];
    $("#offer-max").value = caps.length && caps.every((c) => c === caps[0]) ? String(caps[0])
      : caps.join(", ");
    $("#offer-submit").textContent = "Save revision";
    $("#offer-cancel").hidden = false;
    $("#offer-form").scrollIntoView({block: "nearest"});
    $("#steps .step-quantity").focus();
  }

  function stopRevising() {
    state.revising = null;
    $("#offer-title").textContent = "Submit an offer";
    $("#offer-id").disabled = $("#offer-der").disabled = false;
    $("#offer-submit").textContent = "Submit offer";
    $("#offer-cancel").hidden = true;
    resetOfferForm();
  }

  async function withdrawOffer(o) {
    clearError();
    if (!window.confirm(`Withdraw offer ${o.offer_id} (DER ${o.der_id})?`)) return;
    try {
      await api("DELETE", `/api/offers/${o.id}`);
      if (state.revising && state.revising.id === o.id) stopRevising();
      await loadOffers();
    } catch (err) { showError(err, $("#offers-table")); }
  }

  $("#add-step").addEventListener("click", () => addStep());
  $("#offer-cancel").addEventListener("click", () => { clearError(); stopRevising(); });

  $("#offer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      const body = {steps: readSteps(), max_mw: readMax()};
      if (state.revising) {
        await api("PUT", `/api/offers/${state.revising.id}`, body);
        stopRevising();
      } else {
        await api("POST", `/api/sessions/${state.sid}/offers`, {
          offer_id: $("#offer-id").value.trim(), der_id: $("#offer-der").value.trim(), ...body});
        resetOfferForm();
      }
      await loadOffers();
    } catch (err) { showError(err, $("#offer-form")); }
  });

  // ------------------------------------------------------------------------- results
  async function loadResults() {
    const sid = state.sid;
    const base = `/api/sessions/${sid}`;
    try {
      const [awards, activations, statements] = await Promise.all([
        api("GET", `${base}/awards`), api("GET", `${base}/activations`),
        api("GET", `${base}/statements`)]);
      if (sid !== state.sid) return;
      $("#results").hidden = false;
      fillTable($("#awards-table"), awards, (a) => [a.offer_id, a.der_id, String(a.period),
        num(a.awarded_mw, 3), num(a.price_per_mwh, 2), a.settlement], "No awards");
      fillTable($("#activations-table"), activations, (a) => [String(a.id), a.der_id,
        String(a.period), num(a.mw, 3), a.state, a.reason || ""], "No activations");
      const total = statements.reduce((sum, s) => sum + s.amount, 0);
      fillTable($("#statements-table"), statements.length
        ? [...statements, {party: "", line: "Total", amount: total}] : [],
      (s) => [s.party, s.line, num(s.amount, 2)], "No statement lines");
      if (typeof window.Plotly === "undefined") return;  // no Plotly: no charts
      $("#charts").hidden = false;
      await drawChart($("#chart-grid-prices"), "grid_prices");
      await loadFeeders(sid);
    } catch (err) { showError(err, $("#results")); }
  }

  // the session's feeders (public, as the prices on them are)
  async function loadFeeders(sid) {
    const session = await api("GET", `/api/sessions/${sid}`);
    if (sid !== state.sid) return;
    const feeders = [...(session.feeder_ids || [])].sort();
    const select = $("#feeder-select");
    select.replaceChildren(...feeders.map((f) => el("option", {value: f}, f)));
    const mine = state.offers.map((o) => o.feeder_id).find((f) => feeders.includes(f));
    if (mine) select.value = mine;
    if (select.value) await drawChart($("#chart-dlmp"), "dlmp", select.value);
  }

  async function drawChart(div, name, feeder) {
    const query = feeder ? `?feeder_id=${encodeURIComponent(feeder)}` : "";
    const fig = await api("GET", `/api/sessions/${state.sid}/charts/${name}${query}`);
    await window.Plotly.react(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
  }

  function purgeCharts() {
    $("#charts").hidden = true;
    if (typeof window.Plotly === "undefined") return;
    for (const div of document.querySelectorAll(".chart")) window.Plotly.purge(div);
  }

  $("#feeder-select").addEventListener("change", async (ev) => {
    clearError();
    try { await drawChart($("#chart-dlmp"), "dlmp", ev.target.value); }
    catch (err) { showError(err, $("#charts")); }
  });

  // ---------------------------------------------------------------------------- start
  resetOfferForm();
  if (state.token) {
    start().catch((err) => showError(err, $("#login-form")));
  }
})();
