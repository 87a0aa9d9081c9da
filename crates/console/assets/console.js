// stripe-sync console: live updates (server-sent events), the pipeline actions, the
// pipeline form, the explorer's filter and the copy buttons. Plain JavaScript, no dependencies; every value is
// set with textContent, never parsed as HTML.
"use strict";

const CONSOLE_HEADER = "x-stripe-sync-console";

function setLiveState(state) {
  const mark = document.getElementById("live-state");
  if (mark) {
    mark.dataset.state = state;
    mark.title = state === "open" ? "Live: updated every second" : "Not live: " + state;
  }
}

function follow(url, onUpdate) {
  const source = new EventSource(url);
  source.addEventListener("open", () => setLiveState("open"));
  source.addEventListener("error", () => setLiveState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"));
  source.addEventListener("problem", (e) => setLiveState("problem: " + e.data));
  source.addEventListener("update", (e) => {
    setLiveState("open");
    onUpdate(JSON.parse(e.data));
  });
  return source;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function setField(scope, field, value) {
  scope.querySelectorAll('[data-field="' + field + '"]').forEach((node) => {
    setText(node, value);
    if (field === "status") node.dataset.status = value;
  });
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

// The pipelines list.
function pipelineRow(row) {
  const tr = document.createElement("tr");
  tr.dataset.id = row.id;
  const th = document.createElement("th");
  th.scope = "row";
  const link = cell("a", row.id);
  link.href = "/console/pipelines/" + encodeURIComponent(row.id);
  th.appendChild(link);
  tr.appendChild(th);
  const statusCell = document.createElement("td");
  const badge = cell("span", row.status, "status");
  badge.dataset.field = "status";
  badge.dataset.status = row.status;
  statusCell.appendChild(badge);
  tr.appendChild(statusCell);
  for (const [field, className] of [["records", "num"], ["lag", "num"], ["failure_type", ""], ["error", "message"]]) {
    const td = cell("td", row[field], className);
    td.dataset.field = field;
    tr.appendChild(td);
  }
  return tr;
}

function updatePipelines(table, data) {
  setText(document.getElementById("summary"), data.summary);
  const body = table.tBodies[0];
  const shown = Array.from(body.rows).map((r) => r.dataset.id);
  const wanted = data.rows.map((r) => r.id);
  if (shown.join("\n") !== wanted.join("\n")) {
    body.replaceChildren(...data.rows.map(pipelineRow));
  } else {
    data.rows.forEach((row, i) => {
      const tr = body.rows[i];
      for (const field of ["status", "records", "lag", "failure_type", "error"]) setField(tr, field, row[field]);
    });
  }
  const empty = document.getElementById("empty");
  if (empty) empty.hidden = data.rows.length > 0;
}

// One pipeline.
function fillRows(body, rows, columns) {
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    columns.forEach(([key, tag, className]) => tr.appendChild(cell(tag, String(row[key]), className)));
    return tr;
  }));
}

function updatePipeline(root, data) {
  if (data.gone) {
    setField(root, "status", "deleted");
    setLiveState("closed");
    return "stop";
  }
  for (const field of ["status", "records", "lag", "failure_type", "error"]) setField(root, field, data.row[field]);
  for (const field of ["desired", "saves", "saved_at"]) setField(root, field, data[field]);
  root.dataset.desired = data.desired;
  const paused = data.desired === "paused";
  root.querySelector('[data-action="pause"]').disabled = paused;
  root.querySelector('[data-action="resume"]').disabled = !paused;
  fillRows(document.getElementById("stream-rows"), data.streams, [
    ["name", "th"], ["status", "td"], ["records", "td", "num"], ["rate", "td", "num"], ["ranges", "td"],
  ]);
  document.getElementById("accounts").hidden = data.accounts.length === 0;
  fillRows(document.getElementById("account-rows"), data.accounts, [
    ["id", "th"], ["status", "td"], ["last_synced_at", "td", "num"], ["error", "td", "message"],
  ]);
  fillRows(document.getElementById("run-rows"), data.runs, [
    ["id", "td", "num"], ["started_at", "td", "num"], ["duration", "td", "num"], ["status", "td"],
    ["records", "td", "num"], ["states", "td", "num"], ["error", "td", "message"],
  ]);
  return "go on";
}

async function callApi(method, path, body) {
  const headers = { [CONSOLE_HEADER]: "1" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      const answer = await response.json();
      if (answer && typeof answer.error === "string") message = answer.error;
    } catch (_) { /* not JSON: the status says enough */ }
    throw new Error(message);
  }
  return response;
}

function setupActions(root) {
  const id = root.dataset.id;
  const path = "/pipelines/" + encodeURIComponent(id);
  const result = document.getElementById("action-result");
  const run = async (what, doIt) => {
    setText(result, what + "…");
    try {
      await doIt();
      setText(result, what + ": done.");
    } catch (e) {
      setText(result, what + " failed: " + e.message);
    }
  };
  const dialog = document.getElementById("confirm-delete");
  root.querySelector('[data-action="pause"]').addEventListener("click", () =>
    run("Pause", () => callApi("PATCH", path, { status: "paused" })));
  root.querySelector('[data-action="resume"]').addEventListener("click", () =>
    run("Resume", () => callApi("PATCH", path, { status: "active" })));
  root.querySelector('[data-action="reconcile"]').addEventListener("click", () =>
    run("Reconcile", () => callApi("POST", path + "/reconcile")));
  root.querySelector('[data-action="delete"]').addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "delete") return;
    run("Delete", async () => {
      await callApi("DELETE", path);
      window.location.assign("/");
    });
  });
}

// The explorer.
function setupFilter(input) {
  const list = document.querySelector(input.dataset.filter);
  const count = document.getElementById("match-count");
  const cards = Array.from(list.children);
  const apply = () => {
    const terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const text = card.dataset.search;
      const match = terms.every((t) => text.includes(t));
      card.hidden = !match;
      if (match) shown += 1;
    }
    setText(count, shown + " of " + count.textContent.split(" of ")[1]);
  };
  input.addEventListener("input", apply);
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, select, textarea");
    if (e.key === "/" && !typing) {
      e.preventDefault();
      input.focus();
    }
  });
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch (_) { /* no permission (an unfocused or headless page): the old way below */ }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("the browser refused");
}

function setupCopy(button) {
  button.addEventListener("click", async () => {
    const source = document.querySelector(button.dataset.copy);
    const result = document.getElementById("copy-result");
    try {
      await copyText(source.textContent);
      setText(result, "SQL copied.");
    } catch (e) {
      setText(result, "Copy failed: " + e.message + " (the SQL is shown under ‘SQL’).");
    }
  });
}

// The pipeline form: new (POST /pipelines) or an edit (PATCH /pipelines/{id}).
async function postJson(path, body) {
  return (await callApi("POST", path, body)).json();
}

// A side's config from its fields. An edit sends what changed only: a field left as it was
// (a stored secret left empty) is kept, a cleared one is removed (null).
function readSide(fieldset, editing, problems) {
  const config = {};
  fieldset.querySelectorAll("[data-key]").forEach((input) => {
    const key = input.dataset.key;
    const kind = input.dataset.kind;
    // A number input holding what is not a number reports an empty value: never a clearing.
    if (input.validity && input.validity.badInput) {
      problems.push([input, key + ": must be a number"]);
      return;
    }
    const text = input.value.trim();
    const initial = input.dataset.initial || "";
    // A required field left empty (an edit's kept secret is not: it stays as stored).
    if (text === "" && input.required) {
      problems.push([input, key + ": required"]);
      return;
    }
    if (editing && text === initial) return;
    if (text === "") {
      if (editing && initial !== "") config[key] = null;
      return;
    }
    if (kind === "integer") {
      if (/^-?\d+$/.test(text) && Number.isSafeInteger(Number(text))) config[key] = Number(text);
      else problems.push([input, key + ": must be a whole number"]);
    } else if (kind === "number") {
      if (Number.isFinite(Number(text))) config[key] = Number(text);
      else problems.push([input, key + ": must be a number"]);
    } else if (kind === "boolean") {
      config[key] = text === "true";
    } else if (kind === "json") {
      try { config[key] = JSON.parse(text); } catch (e) { problems.push([input, key + ": not JSON (" + e.message + ")"]); }
    } else {
      config[key] = text;
    }
  });
  return config;
}

function clearErrors(form) {
  form.querySelectorAll(".field-error, .check-result").forEach((node) => {
    node.textContent = "";
    delete node.dataset.ok;
  });
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

function showAt(node, message, input) {
  node.textContent = message;
  const folded = node.closest("details");
  if (folded) folded.open = true;
  if (input) input.setAttribute("aria-invalid", "true");
}

// An error where its field is: the first `key: ` of the message that names a field of the form
// (`source.config.api_key: …`, `source-stripe config: invalid config: rate_limit: …`, `id: …`,
// `streams: …`), within the side the message starts with or the check it answers; otherwise
// under that side's check, or under the form.
function placeError(form, message, side) {
  const segments = message.split(": ");
  const first = segments[0];
  const named = /^source\b/.test(first) ? "source" : /^(destination|dest-)/.test(first) ? "destination" : null;
  const where = side || named;
  const scope = (where && form.querySelector('fieldset[data-side="' + where + '"]')) || form;
  for (const segment of segments.slice(0, -1)) {
    const key = segment.split(".").pop();
    if (!/^[a-z_][a-z0-9_]*$/.test(key)) continue;
    const slot = scope.querySelector('[data-error-for="' + key + '"]');
    if (slot) {
      showAt(slot, message, slot.parentElement.querySelector("[data-key], input"));
      return;
    }
  }
  showAt(where ? document.getElementById("check-" + where) : document.getElementById("form-error"), message);
}

function streamItem(offer, chosen) {
  const li = document.createElement("li");
  li.dataset.search = offer.name;
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = offer.name;
  box.checked = chosen === null ? offer.common : chosen.includes(offer.name);
  label.appendChild(box);
  label.appendChild(document.createTextNode(" " + offer.name));
  li.appendChild(label);
  return li;
}

function sameNames(a, b) {
  return a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
}

const storedName = (s) => (typeof s === "string" ? s : s.name);

// The form's stream list: filled from the source's discover. The first time, an edit ticks the
// stored choice (stored names the source no longer lists are shown too, so they can be
// unticked) and a new pipeline the common streams; later, what is ticked stays ticked.
function streamPicker(editing, stored) {
  const list = document.getElementById("stream-list");
  const tools = document.getElementById("picker-tools");
  const count = document.getElementById("stream-count");
  const search = document.getElementById("stream-search");
  const boxes = () => Array.from(list.querySelectorAll("input[type=checkbox]"));
  const ticked = () => boxes().filter((b) => b.checked).map((b) => b.value);
  const countChosen = () => setText(count, ticked().length + " of " + boxes().length + " chosen");
  const picker = { initial: null, ticked, total: () => boxes().length };
  picker.load = async (body) => {
    const answer = await postJson("/console/streams", body);
    const offers = answer.streams.slice();
    for (const name of (stored || []).map(storedName)) {
      if (!offers.some((o) => o.name === name)) offers.push({ name, common: false });
    }
    let chosen = null;
    if (picker.initial) chosen = ticked();
    else if (editing) chosen = stored ? stored.map(storedName) : offers.map((o) => o.name);
    list.replaceChildren(...offers.map((o) => streamItem(o, chosen)));
    tools.hidden = false;
    document.getElementById("streams-hint").hidden = true;
    if (!picker.initial) picker.initial = ticked();
    countChosen();
  };
  list.addEventListener("change", countChosen);
  tools.querySelectorAll("button[data-pick]").forEach((button) => button.addEventListener("click", () => {
    for (const box of boxes()) if (!box.closest("li").hidden) box.checked = button.dataset.pick === "all";
    countChosen();
  }));
  search.addEventListener("input", () => {
    const terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const li of list.children) li.hidden = !terms.every((t) => li.dataset.search.includes(t));
  });
  return picker;
}

// Each side's check answer under its side (an error naming a field, at the field); true when
// both passed.
function showChecks(form, answer) {
  let passed = true;
  for (const name of ["source", "destination"]) {
    const line = document.getElementById("check-" + name);
    const side = answer.sides.find((s) => s.side === name);
    if (!side) {
      passed = false;
      showAt(line, "No answer from the " + name + "'s check.");
    } else if (side.ok) {
      line.dataset.ok = "true";
      setText(line, "Check passed" + (side.message ? ": " + side.message : "."));
    } else {
      passed = false;
      placeError(form, side.message, name);
      if (!line.textContent) setText(line, "Check failed (see above).");
    }
  }
  return passed;
}

function focusFirstProblem(form) {
  const bad = form.querySelector('[aria-invalid="true"]');
  if (bad) bad.focus();
}

function setupPipelineForm(form) {
  const editing = form.dataset.editing || null;
  // An edit's stored streams as stored (names, or objects with a name and their settings); null: every stream.
  const stored = editing ? JSON.parse(form.dataset.storedStreams || "null") : null;
  const status = document.getElementById("form-status");
  const buttons = Array.from(form.querySelectorAll("button[data-action]"));
  const picker = streamPicker(editing, stored);
  let busy = false;

  const draft = () => {
    const problems = [];
    const body = editing ? { pipeline: editing } : {};
    for (const fieldset of form.querySelectorAll("fieldset[data-side]")) {
      const config = readSide(fieldset, editing, problems);
      // An edit changes the stored connectors' configs, never which connectors they are.
      body[fieldset.dataset.side] = editing ? { config } : { name: fieldset.dataset.name, config };
    }
    return { body, problems };
  };

  // Both sides' check; when the source passes, its streams are listed (again).
  const check = async () => {
    clearErrors(form);
    const { body, problems } = draft();
    if (problems.length) {
      problems.forEach(([input, message]) => showAt(document.getElementById(input.id + "-error"), message, input));
      focusFirstProblem(form);
      return false;
    }
    setText(status, "Checking…");
    let passed = false;
    try {
      const answer = await postJson("/console/check", body);
      passed = showChecks(form, answer);
      if (answer.sides.some((s) => s.side === "source" && s.ok)) await picker.load(body);
    } catch (e) {
      passed = false;
      placeError(form, e.message);
    }
    setText(status, passed ? "Both sides answer." : "The check failed: see the messages above.");
    focusFirstProblem(form);
    return passed;
  };

  const save = async () => {
    if (!(await check())) return;
    if (!picker.initial) {
      setText(status, "Choose the streams, then save.");
      return;
    }
    const chosen = picker.ticked();
    if (!chosen.length) {
      showAt(document.getElementById("streams-error"), "streams: choose at least one");
      return;
    }
    const { body } = draft();
    delete body.pipeline;
    setText(status, editing ? "Saving…" : "Creating…");
    try {
      if (editing) {
        for (const side of ["source", "destination"]) {
          if (!Object.keys(body[side].config).length) delete body[side];
        }
        // Sent only when the choice changed; a stream kept keeps its stored settings.
        if (!sameNames(chosen, picker.initial)) {
          body.streams = chosen.map((name) => (stored || []).find((s) => storedName(s) === name) || name);
        }
        await callApi("PATCH", "/pipelines/" + encodeURIComponent(editing), body);
        window.location.assign("/console/pipelines/" + encodeURIComponent(editing));
      } else {
        const id = document.getElementById("pipeline-id").value.trim();
        if (id) body.id = id;
        // Every stream: none named, so streams the source adds later are synced too.
        if (chosen.length < picker.total()) body.streams = chosen;
        const response = await callApi("POST", "/pipelines", body);
        const made = await response.json();
        window.location.assign("/console/pipelines/" + encodeURIComponent(made.id));
      }
    } catch (e) {
      placeError(form, e.message);
      setText(status, editing ? "Not saved." : "Not created.");
      focusFirstProblem(form);
    }
  };

  // One at a time: a second click while a check or save runs would make a second pipeline.
  const once = (action) => async () => {
    if (busy) return;
    busy = true;
    buttons.forEach((b) => { b.disabled = true; });
    try { await action(); } finally {
      busy = false;
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  form.querySelector('[data-action="check"]').addEventListener("click", once(check));
  const saveOnce = once(save);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    saveOnce();
  });
  if (editing) picker.load({ pipeline: editing }).catch((e) => placeError(form, e.message));
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("pipelines");
  if (list) follow(list.dataset.live, (data) => updatePipelines(list, data));
  const one = document.getElementById("pipeline");
  if (one) {
    setupActions(one);
    const source = follow(one.dataset.live, (data) => {
      if (updatePipeline(one, data) === "stop") source.close();
    });
  }
  const search = document.querySelector("input[data-filter]");
  if (search) setupFilter(search);
  document.querySelectorAll("select[data-autosubmit]").forEach((select) =>
    select.addEventListener("change", () => select.form.submit()));
  document.querySelectorAll("button[data-copy]").forEach(setupCopy);
  const pipelineForm = document.getElementById("pipeline-form");
  if (pipelineForm) setupPipelineForm(pipelineForm);
});
