// One stored analysis: GET /api/analyses/{id}, its advice (POST /api/recommendations by id),
// its charts, downloads, and scoring new customers (POST /api/analyses/{id}/assign).

import {
  ApiError, accuracyWords, apiJson, clearError, count, decimal, element, keyedDownload, labelCells,
  loadImage, percent, postJson, saveBlob, showError, sourceName,
} from "./api.js";
import { UnreadableHere, csvCell, parseRecords, readText, typedRecords } from "./files.js";

// the charts' own colours (segmentation/charts.py): by segment id, Outliers grey
const PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"];
const OUTLIERS = "#999999";

const $ = (id) => document.getElementById(id);
const analysisId = $("analysis").dataset.analysisId;
const base = `/api/analyses/${encodeURIComponent(analysisId)}`;
const source = sourceName(analysisId);

function term(dl, name, ...value) {
  dl.append(element("div", {}, element("dt", {}, name), element("dd", {}, ...value)));
}

function renderSummary(analysis) {
  const title = source ? `Analysis of ${source}` : "Analysis";
  $("analysis-title").textContent = title;
  document.title = `${title} · Customer segmentation`;
  const dl = $("summary");
  term(dl, "Customers", count(analysis.dataQuality.records));
  term(dl, "Segments", String(analysis.clusters.length));
  term(dl, "Accuracy", accuracyWords(analysis.accuracy));
  term(dl, "Algorithm", analysis.algorithm);
  if (analysis.lineage?.previousAnalysisId) {
    const previous = analysis.lineage.previousAnalysisId;
    term(dl, "Compared with", element("a", { href: `/analyses/${previous}` }, sourceName(previous) || previous));
  }
  term(dl, "New data", element("a", { href: `/?previous=${analysisId}` }, "Refit, compared with this analysis"));
}

// an outcome (churn, response) in one segment beside its overall value: "47% (27% overall)"
function outcomeText(value, outcome) {
  if (value === null || value === undefined) return "no value";
  const shown = (v) => (outcome.kind === "rate" ? percent(v) : decimal(v));
  return `${shown(value)} (${shown(outcome.overall)} overall)`;
}

function segmentCard(cluster, outcomes) {
  const colour = cluster.isOutliers ? OUTLIERS : PALETTE[cluster.clusterId % PALETTE.length];
  const facts = element("dl", { className: "facts" });
  term(facts, "Customers", `${count(cluster.size)} (${percent(cluster.share)})`);
  term(facts, "Confidence", `${decimal(cluster.confidence)}${cluster.ambiguousShare ? `, ${percent(cluster.ambiguousShare)} ambiguous` : ""}`);
  term(facts, "Stability", decimal(cluster.stability));
  for (const outcome of outcomes) {
    const value = cluster.outcomes?.[outcome.field];
    const measured = value?.rate ?? value?.mean;
    const what = outcome.kind === "rate" && outcome.positive && !["yes", "1", "true"].includes(outcome.positive.toLowerCase())
      ? `${outcome.field}: ${outcome.positive}` : outcome.field;
    term(facts, what, outcomeText(measured, outcome));
  }
  const traits = cluster.characteristics.length
    ? element("ul", { className: "traits" }, ...cluster.characteristics.map((c) => element("li", {}, c)))
    : element("p", { className: "muted" }, cluster.isOutliers ? "Customers no segment is dense enough to hold." : "No field sets it clearly apart from the average.");
  const card = element("li", { className: "card" },
    element("h3", {}, element("span", { className: "swatch", ariaHidden: "true" }), cluster.clusterName),
    cluster.renamedFrom ? element("p", { className: "muted" }, `Called “${cluster.renamedFrom}” in the previous analysis.`) : null,
    facts, traits);
  card.style.setProperty("--segment", colour);
  return card;
}

function renderAdvice(actions) {
  const list = $("advice");
  const ordered = [...actions].sort((a, b) => a.priority - b.priority);
  list.replaceChildren(...ordered.map((a) =>
    element("li", {}, element("strong", {}, a.action), " ", a.rationale)));
  $("advice-status").textContent = ordered.length ? "" : "No recommendation for this analysis.";
}

function renderK(k) {
  $("k-reason").textContent = k.reason;
  $("k-method").textContent = `Method, on ${count(k.sampleSize)} customers: ${k.method}.`;
  $("candidates").querySelector("tbody").replaceChildren(...k.candidates.map((c) => {
    const tr = element("tr", {},
      element("td", {}, c.algorithm), element("td", { className: "num" }, String(c.k)),
      element("td", { className: "num" }, decimal(c.predictionStrength)),
      element("td", { className: "num" }, decimal(c.silhouette)),
      element("td", {}, c.chosen ? `chosen${c.note ? `; ${c.note}` : ""}` : c.note));
    if (c.chosen) tr.className = "chosen";
    return tr;
  }));
  labelCells($("candidates"));
}

function renderQuality(quality) {
  const warnings = quality.warnings.length ? quality.warnings : ["No warnings: nothing unusual was found in the data."];
  $("warnings").replaceChildren(...warnings.map((w) => element("li", {}, w)));
  const rows = quality.fields.map((f) =>
    element("tr", {}, element("th", { scope: "row" }, f.field), element("td", {}, f.role + (f.axis ? ` (${f.axis})` : "")),
      element("td", { className: "num" }, count(f.missing)), element("td", {}, [f.reason, f.handling].filter(Boolean).join("; "))));
  const listed = new Set(quality.fields.map((f) => f.field));
  for (const f of quality.ignoredFields.filter((i) => !listed.has(i.field)))
    rows.push(element("tr", {}, element("th", { scope: "row" }, f.field), element("td", {}, "ignored"),
      element("td", { className: "num" }, "–"), element("td", {}, f.reason)));
  $("fields").querySelector("tbody").replaceChildren(...rows);
  labelCells($("fields"));
}

// "What changed", in words, from the response's lineage
function renderChanges(lineage, clusters) {
  const name = (id, fallback) => clusters.find((c) => c.clusterId === id)?.clusterName ?? fallback ?? `segment ${id}`;
  const summary = $("changes-summary");
  const share = lineage.customersCompared ? ` (${percent(lineage.moved / lineage.customersCompared)})` : "";
  const matched = lineage.matchedBy === "customers" ? "by the customers they share" : "by their centres (a new cohort)";
  summary.append(element("p", {},
    `${count(lineage.moved)} of the ${count(lineage.customersCompared)} customers in both analyses moved to another segment${share}. Segments were matched ${matched}.`));
  const quoted = (names) => names.map((n) => `“${n}”`).join(" and ");
  const splits = new Map(); // a split previous segment is one line, naming every part
  const events = [];
  for (const s of lineage.segments) {
    const now = s.clusterName ?? name(s.clusterId);
    const before = s.previousClusterName ?? `segment ${s.previousClusterId}`;
    if (s.event === "split") {
      if (!splits.has(before)) {
        splits.set(before, []);
        events.push({ split: before });
      }
      if (s.clusterId != null) splits.get(before).push(now);
    } else if (s.event === "survived") {
      const overlap = s.jaccard != null ? ` (${percent(s.jaccard)} overlap)` : "";
      events.push(`“${now}” persisted${overlap}${before !== now ? `, formerly “${before}”` : ""}.`);
    } else if (s.event === "emerged") events.push(`“${now}” is new.`);
    else if (s.event === "disappeared") events.push(`“${before}” disappeared.`);
    else events.push(`“${before}” merged into “${now}”.`);
  }
  const lines = events.map((e) => {
    if (typeof e === "string") return e;
    const parts = splits.get(e.split);
    return `“${e.split}” split${parts.length ? ` into ${quoted(parts)}` : ""}.`;
  });
  summary.append(element("ul", {}, ...lines.map((line) => element("li", {}, line))));
  const drifted = lineage.drift.filter((d) => d.psi !== null && d.psi >= 0.1);
  if (drifted.length) {
    summary.append(element("p", {}, "Fields whose distribution moved (population stability index 0.1 or more; above 0.25 a shift):"),
      element("ul", {}, ...drifted.map((d) => element("li", {},
        `${d.field}: mean ${decimal(d.previousMean, 1)} → ${decimal(d.mean, 1)}, PSI ${decimal(d.psi)}${d.psi > 0.25 ? " (a shift)" : ""}.`))));
  } else {
    summary.append(element("p", {}, "No field's distribution moved much (every population stability index below 0.1)."));
  }
  $("changes").hidden = false;
  $("toc-changes").hidden = false;
}

function setUpDownloads() {
  const links = {
    "assignments.csv": [`${base}/assignments?format=csv`, `assignments-${analysisId}.csv`],
    "assignments.parquet": [`${base}/assignments?format=parquet`, `assignments-${analysisId}.parquet`],
    "report.html": [`${base}/report.html`, `report-${analysisId}.html`],
    "analysis.json": [base, `analysis-${analysisId}.json`],
  };
  for (const link of document.querySelectorAll("[data-download]")) {
    const [href, filename] = links[link.dataset.download];
    link.href = href;
    link.download = filename;
    keyedDownload(link, $("download-error"));
  }
}

async function loadCharts() {
  const images = [...document.querySelectorAll("img[data-chart]")].filter((img) => !img.closest("[hidden]"));
  await Promise.all(images.map(async (img) => {
    try {
      await loadImage(img, `${base}/charts/${img.dataset.chart}.png`);
      // full size in a new tab: a phone's width makes the charts small
      const link = element("a", { href: img.src, target: "_blank", rel: "noopener" });
      link.setAttribute("aria-label", `${img.alt} (full size, opens a new tab)`);
      img.replaceWith(link);
      link.append(img);
    } catch (error) {
      const note = element("p", { className: "message error", role: "alert" });
      showError(note, error);
      img.replaceWith(note);
    }
  }));
}

// --- scoring new customers ------------------------------------------------------------------

const COLUMNS = ["index", "id", "clusterId", "clusterName", "confidence", "ambiguous"];

async function score(event) {
  event.preventDefault();
  const input = $("score-file");
  const box = $("score-error");
  clearError(box, input);
  $("score-status").textContent = "";
  const file = input.files[0];
  if (!file) return showError(box, new ApiError(422, "Choose a file of customers to score first."), input);
  $("score").disabled = true;
  try {
    let records;
    try {
      records = typedRecords(parseRecords(await readText(file)));
    } catch (error) {
      const why = error instanceof UnreadableHere
        ? `${error.message}: save it as CSV or JSON Lines, or use the command line (segmentation assign).`
        : `The file could not be read: ${error.message}.`;
      throw new ApiError(422, why);
    }
    if (!records.length) throw new ApiError(422, "The file holds no customers.");
    $("score-status").textContent = `Scoring ${count(records.length)} customers…`;
    const result = await postJson(`${base}/assign`, { customerData: records });
    const lines = [COLUMNS.join(","), ...result.assignments.map((a) => COLUMNS.map((c) => csvCell(a[c])).join(","))];
    saveBlob(new Blob([`${lines.join("\n")}\n`], { type: "text/csv" }), `scored-${file.name.replace(/\.[^.]+(\.(gz))?$/, "")}.csv`);
    const sizes = new Map();
    for (const a of result.assignments) sizes.set(a.clusterName, (sizes.get(a.clusterName) || 0) + 1);
    const parts = [...sizes].map(([name, n]) => `${count(n)} to ${name}`).join(", ");
    $("score-status").textContent = `Scored ${count(result.assignments.length)} customers (${parts}); the CSV is downloading.` +
      (result.warnings.length ? ` Note: ${result.warnings.join(" ")}` : "");
  } catch (error) {
    showError(box, error, input);
    $("score-status").textContent = "";
  } finally {
    $("score").disabled = false;
  }
}

// --- the page -------------------------------------------------------------------------------

async function main() {
  let analysis;
  try {
    analysis = await apiJson(base);
  } catch (error) {
    $("analysis-status").textContent = "";
    const box = $("page-message");
    showError(box, error);
    box.classList.add("error");
    box.append(" ", element("a", { href: "/analyses" }, "Back to the analyses"));
    return;
  }
  renderSummary(analysis);
  $("segments").replaceChildren(...analysis.clusters.map((c) => segmentCard(c, analysis.outcomes ?? [])));
  renderK(analysis.kSelection);
  renderQuality(analysis.dataQuality);
  if (analysis.lineage) renderChanges(analysis.lineage, analysis.clusters);
  setUpDownloads();
  $("score-form").addEventListener("submit", score);
  $("analysis-body").hidden = false;
  $("analysis-status").textContent = "";
  $("advice-status").textContent = "Loading the recommendations…";
  const advice = postJson("/api/recommendations", { analysisId })
    .then((body) => renderAdvice(body.actions))
    .catch((error) => {
      $("advice-status").textContent = "";
      const box = element("p", { className: "message error", role: "alert" });
      showError(box, error);
      $("advice").replaceWith(box);
    });
  await Promise.all([advice, loadCharts()]);
  document.body.dataset.ready = "true";
}

main();
