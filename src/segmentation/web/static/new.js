// New analysis: a file (and its fields), options, orders mapped to RFM; submitted as a job
// (POST /api/jobs), followed until it ends (GET /api/jobs/{id}), cancellable (DELETE).

import {
  ApiError, apiJson, clearError, postJson, count, element, labelCells, rememberSource, showError, sourceName,
  when,
} from "./api.js";
import { UnreadableHere, readText } from "./files.js";

const PREVIEW_CHARS = 256 * 1024;
const POLL_MS = 400;
const STAGES = {
  queued: "Waiting for a worker",
  reading: "Reading the file",
  features: "Preparing the fields",
  search: "Choosing the number of segments",
  fit: "Fitting the segments",
  explain: "Measuring how far to trust them",
  profile: "Describing the segments",
  storing: "Saving the analysis",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

const $ = (id) => document.getElementById(id);
const form = $("analysis-form");
const fileInput = $("file");
let detectedFields = null; // null: the browser could not read the header

// --- the file and its fields ------------------------------------------------------------------

const ROLE_WORDS = {
  numeric: "number", boolean: "true / false", categorical: "category", date: "date",
  outcome: "outcome, reported per segment (never used to segment)", ignored: "ignored",
};

function roleText(role) {
  if (!role.role) return "decided when it runs";
  if (role.role === "id") return role.reason || "an identifier (not a feature)";
  const words = ROLE_WORDS[role.role] || role.role;
  return role.reason ? `${words}: ${role.reason}` : words;
}

// the service reads the first rows as it will read the whole file (POST /api/fields/file):
// its delimiter, header row, blank rows, numbers written as text, placeholders
function rolesOf(text) {
  const body = new FormData();
  body.append("file", new Blob([text], { type: "text/plain" }), "preview.csv");
  return apiJson("/api/fields/file", { method: "POST", body });
}

function fieldRow(role) {
  const field = role.field;
  const box = element("input", { type: "checkbox", checked: true, id: `use-${CSS.escape(field)}`, value: field });
  box.className = "use-field";
  const label = element("label", { htmlFor: box.id, className: "visually-hidden" }, `Use ${field}`);
  return element("tr", {},
    element("td", {}, box, label),
    element("th", { scope: "row" }, field),
    element("td", { className: "role" }, roleText(role)),
    element("td", {}, role.handling || "as written"),
    element("td", { className: "examples" }, (role.examples || []).join(", ")));
}

async function preview(file) {
  const section = $("fields-section");
  const tbody = $("fields-table").querySelector("tbody");
  tbody.replaceChildren();
  detectedFields = null;
  section.hidden = false;
  $("fields-note").textContent = "Reading the first rows…";
  try {
    const answer = await rolesOf(await readText(file, PREVIEW_CHARS));
    detectedFields = answer.fields.map((f) => f.field);
    for (const role of answer.fields) tbody.append(fieldRow(role));
    labelCells($("fields-table"));
    $("fields-table").hidden = false;
    $("exclude-typed").hidden = true;
    const notes = answer.notes.length ? ` ${answer.notes.map((n) => n[0].toUpperCase() + n.slice(1)).join(". ")}.` : "";
    $("fields-note").textContent =
      `${answer.fields.length} fields, read by the service from the first ${count(answer.customers)} rows as it will read the whole file.${notes} ` +
      "Untick a field to leave it out. The analysis decides each role on every row, and its page lists them under Data quality.";
  } catch (error) {
    $("fields-table").hidden = true;
    $("exclude-typed").hidden = false;
    const why = error instanceof UnreadableHere ? error.message
      : error instanceof ApiError ? `the first rows could not be read (${error.message})`
      : `the browser could not read the file (${error.message})`;
    $("fields-note").textContent =
      `${why}, so the fields are detected by the service when the analysis runs. ` +
      "You can still name fields to leave out, and the analysis page lists every field with its role.";
  }
  $("columns").replaceChildren(...(detectedFields || []).map((f) => element("option", { value: f })));
}

fileInput.addEventListener("change", () => {
  clearError($("file-error"), fileInput);
  const file = fileInput.files[0];
  if (file) preview(file);
});

const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  if (!event.dataTransfer.files.length) return;
  fileInput.files = event.dataTransfer.files;
  fileInput.dispatchEvent(new Event("change"));
});

$("orders").addEventListener("change", (event) => {
  $("orders-fields").hidden = !event.target.checked;
});

// --- previous analyses to compare with --------------------------------------------------------

async function listPrevious() {
  const wanted = new URLSearchParams(location.search).get("previous");
  try {
    const { analyses } = await apiJson("/api/analyses?limit=100");
    for (const a of analyses) {
      const name = sourceName(a.analysisId) || a.analysisId;
      const text = `${name} · ${when(a.createdAt)} · ${count(a.customers)} customers, ${a.segments} segments`;
      $("previous").append(element("option", { value: a.analysisId, selected: a.analysisId === wanted }, text));
    }
  } catch (error) {
    showError($("options-error"), error, $("previous"));
  }
}

// --- the request --------------------------------------------------------------------------------

const value = (id) => $(id).value.trim();

function options() {
  const chosen = { algorithm: $("algorithm").value, includeCustomers: false };
  // per-customer rows are in the assignments export: the stored JSON stays small
  const mode = form.querySelector("input[name=k-mode]:checked").value;
  if (mode === "fixed") chosen.nClusters = Number(value("k-value"));
  if (mode === "range") chosen.kRange = [Number(value("k-min")), Number(value("k-max"))];
  if (value("previous")) chosen.previousAnalysisId = value("previous");
  const exclude = detectedFields
    ? [...document.querySelectorAll(".use-field:not(:checked)")].map((box) => box.value)
    : value("exclude").split(",").map((f) => f.trim()).filter(Boolean);
  if (exclude.length) chosen.exclude = exclude;
  return chosen;
}

function transactions() {
  if (!$("orders").checked) return null;
  const spec = { customerId: value("tx-customer"), date: value("tx-date") };
  if (value("tx-amount")) spec.amount = value("tx-amount");
  else Object.assign(spec, { quantity: value("tx-quantity"), price: value("tx-price") });
  if (value("tx-invoice")) spec.invoice = value("tx-invoice");
  return spec;
}

// what can be said before anything is sent: each problem next to its control
function checkForm() {
  let ok = true;
  const fail = (box, control, text) => {
    showError(box, new ApiError(422, text), control);
    if (ok) control.focus();
    ok = false;
  };
  if (!fileInput.files.length) fail($("file-error"), fileInput, "Choose a customer file first.");
  const mode = form.querySelector("input[name=k-mode]:checked").value;
  const k = (id) => Number(value(id));
  const bad = (n) => !Number.isInteger(n) || n < 2 || n > 30;
  if (mode === "fixed" && bad(k("k-value"))) fail($("options-error"), $("k-value"), "The number of segments must be a whole number from 2 to 30.");
  if (mode === "range" && (bad(k("k-min")) || bad(k("k-max")) || k("k-min") > k("k-max")))
    fail($("options-error"), $("k-min"), "The range must be two whole numbers from 2 to 30, the first no larger than the second.");
  const spec = transactions();
  if (spec && (!spec.customerId || !spec.date)) fail($("orders-error"), $("tx-customer"), "Give the customer id and date columns of the orders.");
  else if (spec && !spec.amount && (!spec.quantity || !spec.price))
    fail($("orders-error"), $("tx-amount"), "Give the amount column, or both the quantity and unit price columns.");
  if (detectedFields && !document.querySelector(".use-field:checked"))
    fail($("submit-error"), document.querySelector(".use-field"), "Keep at least one field ticked.");
  return ok;
}

// the control a server-side problem belongs to, by the field it names
function placeOf(error) {
  const named = [error.detail, ...error.errors.map((e) => e.field || "")].join(" ");
  if (/options\.(nClusters|kRange|algorithm)|nClusters|kRange/.test(named)) return [$("options-error"), $("k-value")];
  if (/previousAnalysisId/.test(named)) return [$("options-error"), $("previous")];
  if (/transactions|customerId|asOf/.test(named)) return [$("orders-error"), $("tx-customer")];
  if (/exclude|features/.test(named)) return [$("submit-error"), null];
  if (error.status === 413 || error.errors.some((e) => e.field === "file")) return [$("file-error"), fileInput];
  return [$("submit-error"), null];
}

function clearAll() {
  for (const box of form.querySelectorAll(".message.error")) clearError(box);
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  clearError($("job-error"));
}

// --- the job -------------------------------------------------------------------------------------

let current = null; // {jobId, timer}

function showJob(job) {
  const stage = STAGES[job.stage] || job.stage;
  $("job-progress").value = job.progress;
  $("job-progress").textContent = `${Math.round(100 * job.progress)}%`;
  const ended = job.status === "failed" || job.status === "cancelled";
  $("job-stage").textContent = ended ? stage : `${stage} (${Math.round(100 * job.progress)}%)`;
}

function finish(text) {
  clearTimeout(current?.timer);
  current = null;
  $("start").disabled = false;
  $("cancel").hidden = true;
  $("job-status").textContent = text;
}

async function poll(jobId, fileName) {
  if (!current || current.jobId !== jobId) return;
  let job;
  try {
    job = await apiJson(`/api/jobs/${jobId}`);
  } catch (error) {
    if (error.status === 503 || error.status === 0) {
      current.timer = setTimeout(() => poll(jobId, fileName), 2000);
      return;
    }
    showError($("job-error"), error);
    finish("Lost track of the job.");
    return;
  }
  if (!current || current.jobId !== jobId) return;
  showJob(job);
  if (job.status === "succeeded") {
    rememberSource(job.analysisId, fileName);
    finish("Done: opening the analysis…");
    location.assign(`/analyses/${job.analysisId}`);
  } else if (job.status === "failed") {
    showError($("job-error"), new ApiError(422, `The analysis failed: ${job.error || "no reason was given"}.`));
    finish("The analysis failed.");
    $("job-error").focus();
  } else if (job.status === "cancelled") {
    finish("Cancelled. Change the file or options and start again.");
  } else {
    $("job-status").textContent = job.status === "queued" ? "Queued." : "Running.";
    current.timer = setTimeout(() => poll(jobId, fileName), POLL_MS);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearAll();
  if (!checkForm()) return;
  const file = fileInput.files[0];
  const body = new FormData();
  body.append("file", file, file.name);
  body.append("options", JSON.stringify(options()));
  const spec = transactions();
  if (spec) body.append("transactions", JSON.stringify(spec));
  $("job").hidden = false;
  $("start").disabled = true;
  $("cancel").hidden = false;
  $("cancel").disabled = true;
  $("job-progress").value = 0;
  $("job-stage").textContent = `Uploading ${file.name}…`;
  $("job-status").textContent = "Uploading.";
  try {
    const job = await apiJson("/api/jobs", { method: "POST", body });
    current = { jobId: job.jobId, timer: null };
    $("cancel").disabled = false;
    showJob(job);
    poll(job.jobId, file.name);
  } catch (error) {
    const [box, control] = placeOf(error);
    showError(box, error, control);
    finish("Not started.");
    $("job").hidden = true;
    (control || box).focus?.();
  }
});

$("cancel").addEventListener("click", async () => {
  if (!current) return;
  const { jobId } = current;
  $("cancel").disabled = true;
  try {
    const job = await apiJson(`/api/jobs/${jobId}`, { method: "DELETE" });
    showJob(job);
    finish("Cancelled. Change the file or options and start again.");
  } catch (error) {
    // 409: it finished meanwhile; the next poll says how
    if (error.status !== 409) showError($("job-error"), error);
  }
});

for (const box of form.querySelectorAll(".message.error")) box.tabIndex = -1;
$("job-error").tabIndex = -1;
listPrevious();
