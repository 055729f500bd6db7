// An ONNX model's top-level graph, read in place from its bytes (protobuf.ts), with what a rewrite
// needs to look at (nodes, who produces and reads each value, float constants, weight shapes) and
// a writer that copies every untouched field byte for byte.
import {
  bytesField,
  fieldsOf,
  floatField,
  intField,
  lengthPrefix,
  messageField,
  packedVarints,
  stringOf,
  WIRE,
  type Field,
} from './protobuf.js';

const MODEL = { GRAPH: 7, OPSET_IMPORT: 8 } as const;
const OPSET = { DOMAIN: 1, VERSION: 2 } as const;
const GRAPH = { NODE: 1, INITIALIZER: 5, INPUT: 11, OUTPUT: 12, SPARSE_INITIALIZER: 15 } as const;
const VALUE_INFO_NAME = 1;
const NODE = { INPUT: 1, OUTPUT: 2, NAME: 3, OP_TYPE: 4, ATTRIBUTE: 5, DOMAIN: 7 } as const;
const ATTR = { NAME: 1, F: 2, T: 5, G: 6, TENSORS: 10, GRAPHS: 11, TYPE: 20, SPARSE_TENSOR: 22, SPARSE_TENSORS: 23 } as const;
const ATTR_FLOAT = 1;
const TENSOR = { DIMS: 1, DATA_TYPE: 2, FLOAT_DATA: 4, NAME: 8, RAW_DATA: 9, DATA_LOCATION: 14 } as const;
const FLOAT = 1;
const EXTERNAL = 1;

/** Not a model a rewrite handles: it is loaded as it is. */
export class NotRewritable extends Error {}

export interface Node {
  op: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attr>;
}

/** What a rewrite changes; everything else is written back as it was. */
export interface Edits {
  removed: Set<Node>;
  /** A node's replacement: zero or more encoded nodes (newNode). */
  replaced: Map<Node, Buffer>;
  /** New initializers (floatTensor). */
  added: Buffer[];
  /** Values the replacements read, so their producers and constants stay. */
  reads: string[];
}

export const noEdits = (): Edits => ({ removed: new Set(), replaced: new Map(), added: [], reads: [] });

const view = (buf: Uint8Array, at: number) => new DataView(buf.buffer, buf.byteOffset + at, 4).getFloat32(0, true);

/**
 * A field this module interprets must have the wire type the ONNX schema gives it: protobuf
 * itself would skip one that has not, so reading it anyway could disagree with onnxruntime.
 */
function expect(f: Field, wire: number): Field {
  if (f.wire !== wire) throw new NotRewritable(`field ${f.no} has wire type ${f.wire}`);
  return f;
}

interface TensorInfo {
  type: number;
  dims: number[];
  elements: number;
  /** The first element, as a float, when there is one. */
  first: number | null;
}

/** What the rewrites need of a TensorProto. Tensors whose data live in another file are refused. */
function tensorInfo(buf: Uint8Array, tensor: Field): TensorInfo {
  let type = 0;
  const dims: number[] = [];
  let raw: Field | null = null;
  let floats = 0;
  let first: number | null = null;
  for (const f of fieldsOf(buf, tensor.start, tensor.end)) {
    if (f.no === TENSOR.DIMS) dims.push(...(f.wire === WIRE.LEN ? packedVarints(buf, f) : [expect(f, WIRE.VARINT).value]));
    else if (f.no === TENSOR.DATA_TYPE) type = expect(f, WIRE.VARINT).value;
    else if (f.no === TENSOR.RAW_DATA) raw = expect(f, WIRE.LEN);
    else if (f.no === TENSOR.DATA_LOCATION && expect(f, WIRE.VARINT).value === EXTERNAL) throw new NotRewritable('external data');
    else if (f.no === TENSOR.FLOAT_DATA) {
      const packed = f.wire === WIRE.LEN;
      if (!packed) expect(f, WIRE.I32);
      if (floats === 0 && f.end > f.start) first = view(buf, f.start);
      floats += packed ? Math.floor((f.end - f.start) / 4) : 1;
    }
  }
  if (raw && floats > 0) throw new NotRewritable('raw_data and float_data both set');
  if (raw)
    return { type, dims, elements: Math.floor((raw.end - raw.start) / 4), first: raw.end - raw.start >= 4 ? view(buf, raw.start) : null };
  return { type, dims, elements: floats, first };
}

interface Attr {
  /** The attribute's float (`f`), the last one written, as protobuf reads it. */
  f: number | null;
  /** Its tensor (`t`). */
  t: Field | null;
}

function parseAttr(buf: Uint8Array, raw: Field): { name: string; attr: Attr } {
  let name = '';
  const attr: Attr = { f: null, t: null };
  for (const a of fieldsOf(buf, raw.start, raw.end)) {
    if (a.no === ATTR.NAME) name = stringOf(buf, expect(a, WIRE.LEN));
    else if (a.no === ATTR.F) attr.f = view(buf, expect(a, WIRE.I32).start);
    else if (a.no === ATTR.T) {
      // A second t would be merged into the first by protobuf: not worth reading that way.
      if (attr.t) throw new NotRewritable('attribute with two tensors');
      attr.t = expect(a, WIRE.LEN);
      tensorInfo(buf, attr.t);
    } else if (a.no === ATTR.TENSORS) tensorInfo(buf, expect(a, WIRE.LEN));
    // A subgraph may read any outer value, so removing one could break it unseen.
    else if (a.no === ATTR.G || a.no === ATTR.GRAPHS) throw new NotRewritable('subgraph');
    else if (a.no === ATTR.SPARSE_TENSOR || a.no === ATTR.SPARSE_TENSORS) throw new NotRewritable('sparse tensor');
  }
  return { name, attr };
}

function parseNode(buf: Uint8Array, raw: Field): Node {
  const n: Node = { op: '', domain: '', name: '', inputs: [], outputs: [], attrs: new Map() };
  for (const f of fieldsOf(buf, raw.start, raw.end)) {
    if (f.no === NODE.INPUT) n.inputs.push(stringOf(buf, expect(f, WIRE.LEN)));
    else if (f.no === NODE.OUTPUT) n.outputs.push(stringOf(buf, expect(f, WIRE.LEN)));
    else if (f.no === NODE.NAME) n.name = stringOf(buf, expect(f, WIRE.LEN));
    else if (f.no === NODE.OP_TYPE) n.op = stringOf(buf, expect(f, WIRE.LEN));
    else if (f.no === NODE.DOMAIN) n.domain = stringOf(buf, expect(f, WIRE.LEN));
    else if (f.no === NODE.ATTRIBUTE) {
      const { name, attr } = parseAttr(buf, expect(f, WIRE.LEN));
      if (n.attrs.has(name)) throw new NotRewritable(`node "${n.name}" has two attributes "${name}"`);
      n.attrs.set(name, attr);
    }
  }
  return n;
}

export class OnnxGraph {
  /** The default domain's opset version. */
  readonly opset: number;
  readonly nodes: Node[] = [];
  private readonly modelFields: Field[];
  private readonly graphField: Field;
  private readonly entries: Field[];
  private readonly nodeAt = new Map<Field, Node>();
  private readonly producers = new Map<string, Node>();
  private readonly readers = new Map<string, Node[]>();
  private readonly initializers = new Map<string, Field>();
  private readonly graphInputs = new Set<string>();
  private readonly graphOutputs = new Set<string>();
  private readonly nodeNames = new Set<string>();

  constructor(private readonly buf: Uint8Array) {
    this.modelFields = [...fieldsOf(buf)];
    const graphs = this.modelFields.filter((f) => f.no === MODEL.GRAPH);
    // Two graph fields would be merged by protobuf.
    if (graphs.length !== 1) throw new NotRewritable('not one graph');
    this.graphField = expect(graphs[0]!, WIRE.LEN);
    let opset = 0;
    for (const f of this.modelFields.filter((m) => m.no === MODEL.OPSET_IMPORT)) {
      let domain = '',
        version = 0;
      for (const o of fieldsOf(buf, expect(f, WIRE.LEN).start, f.end)) {
        if (o.no === OPSET.DOMAIN) domain = stringOf(buf, expect(o, WIRE.LEN));
        if (o.no === OPSET.VERSION) version = expect(o, WIRE.VARINT).value;
      }
      if (domain === '' || domain === 'ai.onnx') opset = version;
    }
    this.opset = opset;
    this.entries = [...fieldsOf(buf, this.graphField.start, this.graphField.end)];
    for (const e of this.entries) {
      if (e.no === GRAPH.NODE) {
        const n = parseNode(buf, expect(e, WIRE.LEN));
        this.nodes.push(n);
        this.nodeNames.add(n.name);
        this.nodeAt.set(e, n);
        for (const o of n.outputs) this.producers.set(o, n);
        for (const i of n.inputs) {
          const list = this.readers.get(i);
          if (list) list.push(n);
          else this.readers.set(i, [n]);
        }
      } else if (e.no === GRAPH.INITIALIZER) {
        let name = '';
        for (const t of fieldsOf(buf, expect(e, WIRE.LEN).start, e.end))
          if (t.no === TENSOR.NAME) name = stringOf(buf, expect(t, WIRE.LEN));
        tensorInfo(buf, e);
        this.initializers.set(name, e);
      } else if (e.no === GRAPH.INPUT || e.no === GRAPH.OUTPUT) {
        const into = e.no === GRAPH.INPUT ? this.graphInputs : this.graphOutputs;
        for (const v of fieldsOf(buf, expect(e, WIRE.LEN).start, e.end))
          if (v.no === VALUE_INFO_NAME) into.add(stringOf(buf, expect(v, WIRE.LEN)));
      } else if (e.no === GRAPH.SPARSE_INITIALIZER) {
        throw new NotRewritable('sparse initializer');
      }
    }
  }

  producer(value: string | undefined): Node | undefined {
    return value === undefined ? undefined : this.producers.get(value);
  }

  /** Whether `name` is taken by a value or a node in the graph. */
  has(name: string): boolean {
    return (
      this.producers.has(name) ||
      this.readers.has(name) ||
      this.initializers.has(name) ||
      this.graphInputs.has(name) ||
      this.nodeNames.has(name)
    );
  }

  /** A standard-domain node of this op type. */
  static is(n: Node | undefined, op: string): n is Node {
    return n !== undefined && n.op === op && n.domain === '';
  }

  /** `n`'s single output is read by `next` alone and is not a graph output: gone with `next`. */
  onlyFeeds(n: Node, next: Node): boolean {
    const out = n.outputs[0]!;
    return n.outputs.length === 1 && !this.graphOutputs.has(out) && (this.readers.get(out) ?? []).every((r) => r === next);
  }

  /** The tensor of a constant: an initializer that is not a graph input, or a Constant node's value. */
  private tensorOf(value: string | undefined): Field | null {
    if (value === undefined || this.graphInputs.has(value)) return null;
    const init = this.initializers.get(value);
    if (init) return init;
    const c = this.producers.get(value);
    return (OnnxGraph.is(c, 'Constant') && c.attrs.get('value')?.t) || null;
  }

  /** tensorInfo of a constant, read once: the rewrites ask about the same constants many times. */
  private readonly infos = new Map<Field, TensorInfo>();
  private infoOf(tensor: Field): TensorInfo {
    let info = this.infos.get(tensor);
    if (!info) this.infos.set(tensor, (info = tensorInfo(this.buf, tensor)));
    return info;
  }

  /** A one-element float constant: its value, and its rank (which broadcasting adds to a result's). */
  scalar(value: string | undefined): { value: number; rank: number } | null {
    const tensor = this.tensorOf(value);
    if (tensor) {
      const t = this.infoOf(tensor);
      return t.type === FLOAT && t.elements === 1 && t.first !== null && t.dims.every((d) => d === 1)
        ? { value: t.first, rank: t.dims.length }
        : null;
    }
    const c = this.producer(value);
    const f = OnnxGraph.is(c, 'Constant') && !this.graphInputs.has(value!) ? this.floatAttr(c, 'value_float') : null;
    return f === null ? null : { value: f, rank: 0 };
  }

  /** The value of a one-element float constant, or null. */
  constant(value: string | undefined): number | null {
    return this.scalar(value)?.value ?? null;
  }

  /** The dims of a constant tensor (weights), or null if `value` is not one. */
  constantDims(value: string | undefined): number[] | null {
    const tensor = this.tensorOf(value);
    return tensor ? this.infoOf(tensor).dims : null;
  }

  floatAttr(n: Node, name: string): number | null {
    return n.attrs.get(name)?.f ?? null;
  }

  /** The model with `edits` applied; constants only the removed and replaced nodes read are dropped too. */
  write(edits: Edits): Uint8Array {
    const stillRead = new Set(edits.reads);
    for (const n of this.nodes) if (!edits.removed.has(n) && !edits.replaced.has(n)) for (const i of n.inputs) stillRead.add(i);
    const orphans = new Set(
      [...edits.removed, ...edits.replaced.keys()]
        .flatMap((n) => n.inputs)
        .filter((i) => !stillRead.has(i) && !this.graphOutputs.has(i) && !this.graphInputs.has(i)),
    );
    const orphanInits = new Set([...orphans].map((o) => this.initializers.get(o)));
    // The graph as spans of the original bytes (runs of untouched entries copied in one go) and new parts.
    const parts: Array<Uint8Array | [number, number]> = [];
    const keep = (start: number, end: number) => {
      const last = parts.at(-1);
      if (Array.isArray(last) && last[1] === start) last[1] = end;
      else parts.push([start, end]);
    };
    for (const e of this.entries) {
      const n = this.nodeAt.get(e);
      if (n && (edits.removed.has(n) || (n.op === 'Constant' && n.outputs.every((o) => orphans.has(o))))) continue;
      if (orphanInits.has(e)) continue;
      const replacement = n && edits.replaced.get(n);
      if (replacement) parts.push(replacement);
      else keep(e.rawStart, e.rawEnd);
    }
    parts.push(...edits.added);
    const size = (p: Uint8Array | [number, number]) => (Array.isArray(p) ? p[1] - p[0] : p.length);
    const graph = lengthPrefix(
      MODEL.GRAPH,
      parts.reduce((sum, p) => sum + size(p), 0),
    );
    // The model: its fields before the graph, the graph, its fields after, in one buffer.
    const all: Array<Uint8Array | [number, number]> = [
      [0, this.graphField.rawStart],
      graph,
      ...parts,
      [this.graphField.rawEnd, this.buf.length],
    ];
    const out = Buffer.allocUnsafe(all.reduce((sum, p) => sum + size(p), 0));
    let at = 0;
    for (const p of all) {
      if (Array.isArray(p)) out.set(this.buf.subarray(p[0], p[1]), at);
      else out.set(p, at);
      at += size(p);
    }
    return out;
  }
}

/** An encoded standard-domain node. */
export function newNode(op: string, name: string, inputs: string[], outputs: string[], floatAttrs: Record<string, number> = {}): Buffer {
  const attrs = Object.entries(floatAttrs).map(([k, v]) =>
    messageField(NODE.ATTRIBUTE, bytesField(ATTR.NAME, k), floatField(ATTR.F, v), intField(ATTR.TYPE, ATTR_FLOAT)),
  );
  return messageField(
    GRAPH.NODE,
    ...inputs.map((i) => bytesField(NODE.INPUT, i)),
    ...outputs.map((o) => bytesField(NODE.OUTPUT, o)),
    bytesField(NODE.NAME, name),
    bytesField(NODE.OP_TYPE, op),
    ...attrs,
  );
}

/** An encoded float initializer of these dims, every element `value`. */
export function floatTensor(name: string, dims: number[], value: number): Buffer {
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = Buffer.alloc(4 * count);
  for (let i = 0; i < count; i++) raw.writeFloatLE(value, 4 * i);
  return messageField(
    GRAPH.INITIALIZER,
    ...dims.map((d) => intField(TENSOR.DIMS, d)),
    intField(TENSOR.DATA_TYPE, FLOAT),
    bytesField(TENSOR.NAME, name),
    bytesField(TENSOR.RAW_DATA, raw),
  );
}
