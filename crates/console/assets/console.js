// stripe-sync console: live updates (server-sent events), the pipeline actions, the
// explorer's filter and the copy buttons. Plain JavaScript, no dependencies; every value is
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
});
