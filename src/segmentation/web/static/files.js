// Reading customer files in the browser: the first rows a preview sends to the service
// (POST /api/fields/file reads them as it reads any upload, segmentation/files.py) and new
// customers to score (assign takes JSON). The browser never decides a field's role.

const DELIMITERS = [",", ";", "\t", "|"];
const MAGIC = {
  parquet: [0x50, 0x41, 0x52, 0x31],
  gzip: [0x1f, 0x8b],
  xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
  bz2: [0x42, 0x5a, 0x68],
};

function startsWith(bytes, magic) {
  return magic.every((byte, i) => bytes[i] === byte);
}

async function kindOf(file) {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  for (const [kind, magic] of Object.entries(MAGIC)) if (startsWith(head, magic)) return kind;
  return "text";
}

export class UnreadableHere extends Error {}

// The text of a file (its first `limit` characters when given); gzip is inflated by the
// browser, xz, bz2 and Parquet cannot be read here.
export async function readText(file, limit = null) {
  const kind = await kindOf(file);
  if (kind === "parquet" || kind === "xz" || kind === "bz2") {
    const name = kind === "parquet" ? "Parquet" : `${kind}-compressed`;
    throw new UnreadableHere(`${name} files cannot be read in the browser`);
  }
  let stream = file.stream();
  if (kind === "gzip") stream = stream.pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
    if (limit !== null && text.length >= limit) {
      await reader.cancel();
      // the last line may be cut short
      return text.slice(0, text.lastIndexOf("\n") + 1) || text;
    }
  }
  return text.replace(/^\ufeff/, "");
}

// RFC 4180 rows: quoted fields may hold the delimiter, quotes ("") and line breaks.
function parseDelimited(text, delimiter, maxRows = Infinity) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i += 1) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"' && field === "") quoted = true;
    else if (char === delimiter) {
      row.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      if (row.length > 1 || row[0] !== "") rows.push(row);
      row = [];
      field = "";
    } else field += char;
  }
  if ((field !== "" || row.length) && rows.length < maxRows) rows.push([...row, field]);
  return rows;
}

// the delimiter that splits the first lines into the same, largest number of fields
function sniff(text) {
  const sample = text.slice(0, 65536);
  let best = null;
  let bestWidth = 1;
  for (const delimiter of DELIMITERS) {
    const rows = parseDelimited(sample, delimiter, 20).slice(0, -1);
    const widths = new Set(rows.map((r) => r.length));
    const width = rows.length ? rows[0].length : 0;
    if (widths.size === 1 && width > bestWidth) {
      best = delimiter;
      bestWidth = width;
    }
  }
  return best ?? ",";
}

function isJsonLines(text) {
  return text.trimStart().startsWith("{");
}

// {fields, rows: [object]}: text values as they are in the file, JSON values as sent
export function parseRecords(text, maxRows = Infinity) {
  if (isJsonLines(text)) {
    const rows = [];
    const fields = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length && rows.length < maxRows; i += 1) {
      if (!lines[i].trim()) continue;
      let record;
      try {
        record = JSON.parse(lines[i]);
      } catch {
        throw new Error(`line ${i + 1} is not valid JSON`);
      }
      for (const key of Object.keys(record)) if (!fields.includes(key)) fields.push(key);
      rows.push(record);
    }
    return { kind: "JSON Lines", fields, rows };
  }
  const delimiter = sniff(text);
  const [header = [], ...body] = parseDelimited(text, delimiter, maxRows === Infinity ? Infinity : maxRows + 1);
  const fields = header.map((name) => name.trim());
  const rows = body.map((values) => Object.fromEntries(fields.map((f, i) => [f, values[i] ?? ""])));
  const names = { ",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe" };
  return { kind: `CSV (${names[delimiter]}-separated)`, fields, rows };
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// Text columns whose every value is a number become numbers (a zero-padded code stays text,
// as the service reads files); empty cells become null. JSON Lines values are kept as sent.
export function typedRecords(parsed) {
  if (parsed.kind === "JSON Lines") return parsed.rows;
  const numeric = new Set(
    parsed.fields.filter((field) => {
      const values = parsed.rows.map((r) => r[field].trim()).filter((v) => v !== "");
      return values.length > 0 && values.every((v) => NUMBER.test(v) && !/^[+-]?0\d/.test(v));
    }),
  );
  return parsed.rows.map((row) =>
    Object.fromEntries(
      parsed.fields.map((f) => {
        const value = row[f].trim();
        if (value === "") return [f, null];
        return [f, numeric.has(f) ? Number(value) : row[f]];
      }),
    ),
  );
}

// One CSV cell: quoted when it holds a delimiter, a quote or a line break.
export function csvCell(value) {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
