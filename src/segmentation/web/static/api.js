// Every request of the dashboard goes through `api`: it adds the API key kept for this tab
// (sessionStorage, never localStorage) and, on a 401, asks for one and retries. Errors come
// back as ApiError in the service's shape: {detail, errors: [{record, field, message}]}.

const KEY_STORAGE = "segmentation.apiKey";
const SOURCES_STORAGE = "segmentation.sources";
const KEY_ATTEMPTS = 3;

export class ApiError extends Error {
  constructor(status, detail, errors = [], retryAfter = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.errors = errors;
    this.retryAfter = retryAfter;
  }
}

async function errorOf(response) {
  let detail = `${response.status} ${response.statusText}`.trim();
  let errors = [];
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") detail = body.detail;
    if (Array.isArray(body.errors)) errors = body.errors;
  } catch {
    // not the service's JSON (a proxy's page, say): keep the status line, never the markup
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return new ApiError(response.status, detail, errors, Number.isNaN(retry) ? null : retry);
}

let pendingPrompt = null; // one prompt answers every request that got a 401 meanwhile

function askForKey(reason) {
  pendingPrompt ??= new Promise((resolve) => {
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    document.getElementById("key-why").textContent =
      `${reason} The key is kept in this browser tab only, until you close it.`;
    input.value = "";
    dialog.addEventListener(
      "close",
      () => {
        const key = input.value.trim();
        if (dialog.returnValue === "save" && key) sessionStorage.setItem(KEY_STORAGE, key);
        pendingPrompt = null;
        resolve(dialog.returnValue === "save" && key !== "");
      },
      { once: true },
    );
    dialog.showModal();
  });
  return pendingPrompt;
}

export function hasKey() {
  return sessionStorage.getItem(KEY_STORAGE) !== null;
}

export async function api(path, init = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = new Headers(init.headers || {});
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.set("X-API-Key", key);
    let response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch {
      throw new ApiError(0, "The service could not be reached. Check that it is running, then try again.");
    }
    if (response.ok) return response;
    const error = await errorOf(response);
    if (response.status !== 401 || attempt >= KEY_ATTEMPTS) throw error;
    sessionStorage.removeItem(KEY_STORAGE);
    const reason = key ? "That API key was not accepted." : "The service asks for an API key.";
    if (!(await askForKey(reason))) throw error;
  }
}

export async function apiJson(path, init = {}) {
  const response = await api(path, init);
  return response.json();
}

export function postJson(path, body) {
  return apiJson(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// --- errors in words, next to the control that caused them ----------------------------------

function summary(error) {
  if (!(error instanceof ApiError)) return `Something went wrong on this page: ${error.message || error}`;
  switch (error.status) {
    case 0:
      return error.detail;
    case 401:
      return `An API key is needed: ${error.detail}`;
    case 403:
      return `This API key may not do that: ${error.detail}`;
    case 413:
      return `Too large for the service: ${error.detail}`;
    case 429:
    case 503: {
      const wait = error.retryAfter === null ? "in a moment" : `in ${error.retryAfter} s`;
      const why = error.status === 429 ? "Too many requests" : "The service is busy";
      return `${why} (${error.detail}). Try again ${wait}.`;
    }
    default:
      return error.status >= 500 ? `The service failed: ${error.detail}` : error.detail;
  }
}

function where(item) {
  const parts = [];
  if (item.record !== null && item.record !== undefined) parts.push(`record ${item.record}`);
  if (item.field) parts.push(`field “${item.field}”`);
  return parts.length ? `${parts.join(", ")}: ` : "";
}

export function showError(element, error, control = null) {
  element.replaceChildren(summary(error));
  const items = error instanceof ApiError ? error.errors : [];
  // the detail already says it when there is a single problem
  if (items.length > 1) {
    const list = document.createElement("ul");
    for (const item of items.slice(0, 20)) {
      const li = document.createElement("li");
      li.textContent = where(item) + item.message;
      list.append(li);
    }
    if (items.length > 20) list.append(Object.assign(document.createElement("li"), { textContent: `and ${items.length - 20} more` }));
    element.append(list);
  }
  element.hidden = false;
  if (control) control.setAttribute("aria-invalid", "true");
}

export function clearError(element, control = null) {
  element.hidden = true;
  element.replaceChildren();
  if (control) control.removeAttribute("aria-invalid");
}

// the page never goes blank: whatever escapes a handler is said in words at the top
function pageMessage(error) {
  const box = document.getElementById("page-message");
  if (box) {
    showError(box, error);
    box.classList.add("error");
  }
}
window.addEventListener("error", (event) => pageMessage(event.error || event.message));
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  pageMessage(event.reason);
});

// --- images and downloads that carry the key -------------------------------------------------

export async function loadImage(img, path) {
  const blob = await (await api(path)).blob();
  await new Promise((resolve, reject) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", () => reject(new Error(`the image ${path} could not be shown`)), { once: true });
    img.src = URL.createObjectURL(blob);
  });
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// A plain link streams a large file straight to disk; with a key it must be fetched (a link
// cannot send a header), so the file passes through memory.
export function keyedDownload(link, errorBox) {
  link.addEventListener("click", async (event) => {
    if (!hasKey()) return;
    event.preventDefault();
    clearError(errorBox);
    try {
      saveBlob(await (await api(link.getAttribute("href"))).blob(), link.download);
    } catch (error) {
      showError(errorBox, error);
    }
  });
}

// --- small shared pieces ----------------------------------------------------------------------

export function confirmDialog(text, yesLabel) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-yes").textContent = yesLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// The API stores no file name (yet): the name is remembered in this browser when it submits.
function sources() {
  try {
    return JSON.parse(localStorage.getItem(SOURCES_STORAGE) || "{}");
  } catch {
    return {};
  }
}

export function sourceName(analysisId) {
  return sources()[analysisId] ?? null;
}

export function rememberSource(analysisId, name) {
  const known = sources();
  known[analysisId] = name;
  localStorage.setItem(SOURCES_STORAGE, JSON.stringify(known));
}

export function forgetSource(analysisId) {
  const known = sources();
  delete known[analysisId];
  localStorage.setItem(SOURCES_STORAGE, JSON.stringify(known));
}

const integer = new Intl.NumberFormat("en-GB");
export const count = (value) => integer.format(value);
export const percent = (share) => `${(100 * share).toFixed(share > 0 && share < 0.1 ? 1 : 0)}%`;
export const decimal = (value, digits = 2) => (value === null || value === undefined ? "not measured" : Number(value).toFixed(digits));
export const when = (seconds) =>
  new Date(seconds * 1000).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });

export function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// a table read as one card per row on a phone (dashboard.css, table.stack): each cell carries
// its column's name
export function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((cell) => cell.textContent);
  for (const row of table.tBodies[0].rows) for (const [i, cell] of [...row.cells].entries()) cell.dataset.label = names[i];
}

export function accuracyWords(accuracy) {
  if (accuracy === null || accuracy === undefined) return "not measured (too few customers)";
  const words = accuracy >= 0.75 ? "stable" : accuracy >= 0.5 ? "moderately stable" : "weak: little real structure";
  return `${accuracy.toFixed(2)} (${words})`;
}
