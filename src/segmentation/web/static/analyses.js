// The stored analyses, newest first (GET /api/analyses); open one, or delete it
// (DELETE /api/analyses/{id}) after a confirmation.

import {
  api, apiJson, clearError, confirmDialog, count, element, forgetSource, labelCells, showError, sourceName,
  when,
} from "./api.js";

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const table = $("analyses-table");
const tbody = table.querySelector("tbody");
let offset = 0;

function cell(label, ...content) {
  return element("td", { className: label === "Customers" || label === "Segments" || label === "Accuracy" ? "num" : "" }, ...content);
}

function row(analysis) {
  const name = sourceName(analysis.analysisId);
  const created = when(analysis.createdAt);
  const title = name ? `${name}, ${created}` : `analysis ${analysis.analysisId}, ${created}`;
  const open = element("a", { href: `/analyses/${analysis.analysisId}`, className: "button" }, "Open");
  open.setAttribute("aria-label", `Open ${title}`);
  const remove = element("button", { type: "button", className: "danger" }, "Delete");
  remove.setAttribute("aria-label", `Delete ${title}`);
  const tr = element("tr", {},
    cell("File", name ? element("span", { className: "file" }, name) : element("span", { className: "muted" }, "not recorded")),
    cell("Created", element("time", { dateTime: new Date(analysis.createdAt * 1000).toISOString() }, created)),
    cell("Customers", count(analysis.customers)),
    cell("Segments", String(analysis.segments)),
    cell("Accuracy", analysis.accuracy === null ? "not measured" : analysis.accuracy.toFixed(2)),
    cell("Actions", element("span", { className: "row-actions" }, open, remove)));
  tr.dataset.analysisId = analysis.analysisId;
  remove.addEventListener("click", () => removeRow(tr, analysis.analysisId, title));
  return tr;
}

async function removeRow(tr, analysisId, title) {
  const sure = await confirmDialog(`Delete ${title}? Its segments, charts, report and assignments are deleted too. This cannot be undone.`, "Delete");
  if (!sure) return;
  clearError($("list-error"));
  try {
    await api(`/api/analyses/${analysisId}`, { method: "DELETE" });
    forgetSource(analysisId);
    tr.remove();
    offset -= 1;
    $("list-status").textContent = `Deleted ${title}.`;
    if (!tbody.rows.length) empty();
  } catch (error) {
    showError($("list-error"), error);
  }
  $("list-status").focus();
}

function empty() {
  table.hidden = true;
  $("list-status").replaceChildren("No analyses are stored yet. ", element("a", { href: "/" }, "Start one"), ".");
}

async function load() {
  clearError($("list-error"));
  try {
    const { analyses } = await apiJson(`/api/analyses?limit=${PAGE}&offset=${offset}`);
    tbody.append(...analyses.map(row));
    labelCells(table);
    offset += analyses.length;
    $("more").hidden = analyses.length < PAGE;
    if (!tbody.rows.length) return empty();
    table.hidden = false;
    $("list-status").textContent = `${count(tbody.rows.length)} analyses shown.`;
  } catch (error) {
    $("list-status").textContent = "";
    showError($("list-error"), error);
  }
}

$("list-status").tabIndex = -1;
$("more").addEventListener("click", load);
load();
