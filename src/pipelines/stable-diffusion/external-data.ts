// Which files hold an ONNX graph's external data (a UNet is usually model.onnx plus gigabytes of
// model.onnx_data): the daemon keys, checks and watches them with the graph. Found by walking the
// protobuf from the file with positioned reads, skipping every payload it does not need, so a
// 500 MB graph with its weights inline costs a few hundred small reads, not a read of the file.
// Light on purpose (node:fs only): the daemon's workflow loader calls it.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, isAbsolute, normalize, resolve, sep } from 'node:path';

const MODEL_GRAPH = 7;
const GRAPH = { NODE: 1, INITIALIZER: 5, SPARSE_INITIALIZER: 15 } as const;
const NODE_ATTRIBUTE = 5;
const ATTR = { T: 5, G: 6, TENSORS: 10, GRAPHS: 11, SPARSE_TENSOR: 22, SPARSE_TENSORS: 23 } as const;
const SPARSE = { VALUES: 1, INDICES: 2 } as const;
const TENSOR_EXTERNAL_DATA = 13;
const ENTRY = { KEY: 1, VALUE: 2 } as const;
const LEN = 2;

/** Reads a file in windows, so fields are parsed in place and large payloads skipped without reading them. */
class Window {
  private buf = Buffer.alloc(1 << 20);
  private start = 0;
  private end = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  byte(pos: number): number {
    if (pos < this.start || pos >= this.end) {
      this.start = pos;
      this.end = pos + readSync(this.fd, this.buf, 0, this.buf.length, pos);
      if (this.end <= pos) throw new Error(`truncated at byte ${pos}`);
    }
    return this.buf[pos - this.start]!;
  }

  bytes(pos: number, len: number): Buffer {
    const out = Buffer.alloc(len);
    if (readSync(this.fd, out, 0, len, pos) !== len) throw new Error(`truncated at byte ${pos}`);
    return out;
  }

  varint(pos: number): { value: number; next: number } {
    let value = 0;
    let scale = 1;
    for (let p = pos; p < pos + 10; p++) {
      const b = this.byte(p);
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return { value, next: p + 1 };
    }
    throw new Error(`bad varint at byte ${pos}`);
  }
}

interface Field {
  no: number;
  wire: number;
  start: number;
  end: number;
}

function* fields(w: Window, start: number, end: number): Generator<Field> {
  let p = start;
  while (p < end) {
    const key = w.varint(p);
    const no = Math.floor(key.value / 8);
    const wire = key.value % 8;
    p = key.next;
    let payload = p;
    if (wire === 0) p = w.varint(p).next;
    else if (wire === LEN) {
      const len = w.varint(p);
      payload = len.next;
      p = len.next + len.value;
    } else if (wire === 5) p += 4;
    else if (wire === 1) p += 8;
    else throw new Error(`unsupported wire type ${wire} at byte ${p}`);
    if (p > end || no === 0) throw new Error(`malformed field at byte ${payload}`);
    yield { no, wire, start: payload, end: p };
  }
}

const within = (_w: Window, f: Field, no: number) => f.no === no && f.wire === LEN;

function tensor(w: Window, start: number, end: number, found: string[]): void {
  for (const f of fields(w, start, end)) {
    if (!within(w, f, TENSOR_EXTERNAL_DATA)) continue;
    let key = '';
    let value = '';
    for (const e of fields(w, f.start, f.end)) {
      if (e.wire !== LEN || e.end - e.start > 4096) continue;
      if (e.no === ENTRY.KEY) key = w.bytes(e.start, e.end - e.start).toString();
      if (e.no === ENTRY.VALUE) value = w.bytes(e.start, e.end - e.start).toString();
    }
    if (key === 'location') found.push(value);
  }
}

function sparse(w: Window, start: number, end: number, found: string[]): void {
  for (const f of fields(w, start, end)) if (within(w, f, SPARSE.VALUES) || within(w, f, SPARSE.INDICES)) tensor(w, f.start, f.end, found);
}

function graph(w: Window, start: number, end: number, found: string[]): void {
  for (const f of fields(w, start, end)) {
    if (within(w, f, GRAPH.INITIALIZER)) tensor(w, f.start, f.end, found);
    else if (within(w, f, GRAPH.SPARSE_INITIALIZER)) sparse(w, f.start, f.end, found);
    else if (within(w, f, GRAPH.NODE)) {
      for (const a of fields(w, f.start, f.end)) {
        if (!within(w, a, NODE_ATTRIBUTE)) continue;
        for (const v of fields(w, a.start, a.end)) {
          if (within(w, v, ATTR.T) || within(w, v, ATTR.TENSORS)) tensor(w, v.start, v.end, found);
          else if (within(w, v, ATTR.G) || within(w, v, ATTR.GRAPHS)) graph(w, v.start, v.end, found);
          else if (within(w, v, ATTR.SPARSE_TENSOR) || within(w, v, ATTR.SPARSE_TENSORS)) sparse(w, v.start, v.end, found);
        }
      }
    }
  }
}

/** The external-data locations of a model file as written in it (relative to its folder). */
export function externalLocations(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    const w = new Window(fd, statSync(path).size);
    const found: string[] = [];
    for (const f of fields(w, 0, w.size)) if (within(w, f, MODEL_GRAPH)) graph(w, f.start, f.end, found);
    return found;
  } finally {
    closeSync(fd);
  }
}

interface Memo {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  files: string[];
}
/** Keyed by path and checked by size, mtime, ctime and inode, as the daemon's FileHasher memoises hashes. */
const memo = new Map<string, Memo>();

/**
 * The files beside `path` that hold its external data, absolute, each once, in the order the graph
 * names them. A location that is absolute or leaves the model's folder is refused (onnxruntime
 * reads external data only from within it).
 */
export function externalDataFiles(path: string): string[] {
  const st = statSync(path);
  const m = memo.get(path);
  if (m && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ctimeMs === st.ctimeMs && m.ino === st.ino) return m.files;
  let locations: string[];
  try {
    locations = externalLocations(path);
  } catch (err) {
    throw new Error(`${path} is not an ONNX model that can be read (${(err as Error).message})`);
  }
  const dir = dirname(path);
  const files: string[] = [];
  for (const loc of locations) {
    const file = resolve(dir, normalize(loc));
    if (isAbsolute(loc) || !file.startsWith(dir + sep)) throw new Error(`${path} names external data "${loc}" outside its folder`);
    if (!files.includes(file)) files.push(file);
  }
  memo.set(path, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, files });
  return files;
}
