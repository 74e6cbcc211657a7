// CSV export of the current filtered list and CSV import with a dry run (beyond PocketBase).
import { useState } from 'preact/hooks';
import { pb, Collection, errMessage } from '../api';
import { toast } from '../ui';

const esc = (v: any) => {
  const s = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One CSV line of `values`, quoted where needed. */
export const csvLine = (values: any[]) => values.map(esc).join(',');

export function toCsv(coll: Collection, rows: any[]): string {
  const cols = coll.fields.filter((f) => !f.hidden && f.type !== 'password').map((f) => f.name);
  return [cols.join(','), ...rows.map((r) => cols.map((c) => esc(r[c])).join(','))].join('\r\n') + '\r\n';
}

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') row.push(cur), (cur = '');
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cur);
      rows.push(row);
      row = [];
      cur = '';
    } else cur += ch;
  }
  if (cur || row.length) row.push(cur), rows.push(row);
  return rows.filter((r) => r.some((c) => c !== ''));
}

/** Converts a CSV cell to the field's JSON value; throws a readable message when it cannot. */
function convert(f: any, s: string): any {
  if (s === '') return f.type === 'bool' ? false : f.type === 'number' ? null : (f.maxSelect || 1) > 1 ? [] : '';
  switch (f.type) {
    case 'number': {
      const n = Number(s);
      if (Number.isNaN(n)) throw new Error(`${f.name}: "${s}" is not a number`);
      return n;
    }
    case 'bool':
      if (!/^(true|false|1|0)$/i.test(s)) throw new Error(`${f.name}: "${s}" is not true/false`);
      return /^(true|1)$/i.test(s);
    case 'json':
    case 'geoPoint':
      try {
        return JSON.parse(s);
      } catch {
        throw new Error(`${f.name}: invalid JSON`);
      }
    case 'select':
    case 'relation':
      if ((f.maxSelect || 1) > 1) return s.startsWith('[') ? JSON.parse(s) : s.split(',').map((x) => x.trim());
      return s;
    default:
      return s;
  }
}

export function CsvImport({ coll, onDone }: { coll: Collection; onDone: () => void }) {
  const [text, setText] = useState('');
  const [report, setReport] = useState<{ row: number; error: string }[] | null>(null);
  const [rows, setRows] = useState<any[]>([]);
  const [busy, setBusy] = useState(false);

  const dryRun = () => {
    const table = parseCsv(text);
    if (table.length < 1) return setReport([{ row: 0, error: 'Empty CSV.' }]);
    const head = table[0].map((h) => h.trim());
    const errors: { row: number; error: string }[] = [];
    const unknown = head.filter((h) => !coll.fields.some((f) => f.name === h));
    if (unknown.length) errors.push({ row: 1, error: `Unknown column(s): ${unknown.join(', ')}` });
    const out: any[] = [];
    table.slice(1).forEach((cells, i) => {
      const rec: any = {};
      try {
        head.forEach((h, j) => {
          const f = coll.fields.find((x) => x.name === h);
          if (!f || f.type === 'autodate' || f.type === 'file') return;
          if (h === 'id' && !cells[j]) return;
          rec[h] = convert(f, cells[j] ?? '');
        });
        for (const f of coll.fields) if (f.required && !f.system && f.type !== 'file' && (rec[f.name] === undefined || rec[f.name] === '')) throw new Error(`${f.name}: required`);
        out.push(rec);
      } catch (e: any) {
        errors.push({ row: i + 2, error: e.message });
      }
    });
    setRows(out);
    setReport(errors);
  };
  const run = async () => {
    setBusy(true);
    const errors: { row: number; error: string }[] = [];
    let ok = 0;
    for (let i = 0; i < rows.length; i++) {
      try {
        await pb.collection(coll.name).create(rows[i], { requestKey: null });
        ok++;
      } catch (e) {
        errors.push({ row: i + 2, error: errMessage(e) });
      }
    }
    setBusy(false);
    setReport(errors);
    toast(`Imported ${ok} of ${rows.length} row(s).`, errors.length ? 'err' : 'ok');
    if (!errors.length) onDone();
  };
  return (
    <div class="form">
      <p class="muted">First row: field names. Multi-value cells: comma separated or a JSON array. Files are not imported.</p>
      <input type="file" accept=".csv,text/csv" onChange={async (e) => setText(await e.currentTarget.files![0].text())} />
      <textarea class="code" rows={8} name="csv" value={text} onInput={(e) => (setText(e.currentTarget.value), setReport(null))} />
      <div class="row">
        <button class="btn" onClick={dryRun} disabled={!text}>
          Dry run
        </button>
        <button class="btn primary" onClick={run} disabled={!report || report.length > 0 || busy || !rows.length}>
          Import {rows.length || ''} row(s)
        </button>
      </div>
      {report && (report.length ? <ul class="errors">{report.map((r, i) => <li key={i}>Row {r.row}: {r.error}</li>)}</ul> : <p class="ok">Dry run: {rows.length} row(s) look valid.</p>)}
    </div>
  );
}
