// An ONNX model's top-level graph, read in place from its bytes (protobuf.ts), with what a rewrite
// needs to look at (nodes, who produces and reads each value, float constants, weight shapes) and
// a writer that copies every untouched field byte for byte.
import { bytesField, fieldsOf, floatField, intField, lengthPrefix, messageField, stringOf, WIRE, type Field } from './protobuf.js';

const MODEL = { GRAPH: 7, OPSET_IMPORT: 8 } as const;
const OPSET = { DOMAIN: 1, VERSION: 2 } as const;
const GRAPH = { NODE: 1, INITIALIZER: 5, INPUT: 11, OUTPUT: 12 } as const;
const VALUE_INFO_NAME = 1;
const NODE = { INPUT: 1, OUTPUT: 2, NAME: 3, OP_TYPE: 4, ATTRIBUTE: 5, DOMAIN: 7 } as const;
const ATTR = { NAME: 1, F: 2, T: 5, G: 6, GRAPHS: 11, TYPE: 20 } as const;
const ATTR_FLOAT = 1;
const TENSOR = { DIMS: 1, DATA_TYPE: 2, FLOAT_DATA: 4, NAME: 8, RAW_DATA: 9, DATA_LOCATION: 14 } as const;
const FLOAT = 1;
const EXTERNAL = 1;

/** Not a model a rewrite handles: it is loaded as it is. */
export class NotRewritable extends Error {}

export interface Node {
  raw: Field;
  op: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Field>;
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

function packedVarints(buf: Uint8Array, f: Field): number[] {
  const out: number[] = [];
  let p = f.start;
  while (p < f.end) {
    let v = 0, scale = 1, b: number;
    do {
      b = buf[p++]!;
      v += (b & 0x7f) * scale;
      scale *= 128;
    } while (b & 0x80 && p < f.end);
    out.push(v);
  }
  return out;
}

/** A tensor's dims, whether written packed or one field each. */
function dimsOf(buf: Uint8Array, tensor: Field): number[] {
  const dims: number[] = [];
  for (const f of fieldsOf(buf, tensor.start, tensor.end)) {
    if (f.no === TENSOR.DIMS && f.wire === WIRE.VARINT) dims.push(f.value);
    else if (f.no === TENSOR.DIMS && f.wire === WIRE.LEN) dims.push(...packedVarints(buf, f));
  }
  return dims;
}

/** The value of a one-element float tensor, or null. */
function floatScalar(buf: Uint8Array, tensor: Field): number | null {
  let type = 0;
  const values: number[] = [];
  for (const f of fieldsOf(buf, tensor.start, tensor.end)) {
    if (f.no === TENSOR.DATA_TYPE) type = f.value;
    else if (f.no === TENSOR.RAW_DATA || (f.no === TENSOR.FLOAT_DATA && f.wire === WIRE.LEN)) for (let p = f.start; p + 4 <= f.end && values.length < 2; p += 4) values.push(view(buf, p));
    else if (f.no === TENSOR.FLOAT_DATA && f.wire === WIRE.I32) values.push(view(buf, f.start));
    else if (f.no === TENSOR.DATA_LOCATION && f.value === EXTERNAL) throw new NotRewritable('external data');
  }
  return type === FLOAT && values.length === 1 && dimsOf(buf, tensor).every((d) => d === 1) ? values[0]! : null;
}

function parseNode(buf: Uint8Array, raw: Field): Node {
  const n: Node = { raw, op: '', domain: '', name: '', inputs: [], outputs: [], attrs: new Map() };
  for (const f of fieldsOf(buf, raw.start, raw.end)) {
    if (f.no === NODE.INPUT) n.inputs.push(stringOf(buf, f));
    else if (f.no === NODE.OUTPUT) n.outputs.push(stringOf(buf, f));
    else if (f.no === NODE.NAME) n.name = stringOf(buf, f);
    else if (f.no === NODE.OP_TYPE) n.op = stringOf(buf, f);
    else if (f.no === NODE.DOMAIN) n.domain = stringOf(buf, f);
    else if (f.no === NODE.ATTRIBUTE) {
      let name = '';
      for (const a of fieldsOf(buf, f.start, f.end)) {
        if (a.no === ATTR.NAME) name = stringOf(buf, a);
        // A subgraph may read any outer value, so removing one could break it unseen.
        if (a.no === ATTR.G || a.no === ATTR.GRAPHS) throw new NotRewritable('subgraph');
      }
      n.attrs.set(name, f);
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

  constructor(private readonly buf: Uint8Array) {
    this.modelFields = [...fieldsOf(buf)];
    const graphs = this.modelFields.filter((f) => f.no === MODEL.GRAPH);
    if (graphs.length !== 1) throw new NotRewritable('not one graph');
    this.graphField = graphs[0]!;
    let opset = 0;
    for (const f of this.modelFields.filter((m) => m.no === MODEL.OPSET_IMPORT)) {
      let domain = '', version = 0;
      for (const o of fieldsOf(buf, f.start, f.end)) {
        if (o.no === OPSET.DOMAIN) domain = stringOf(buf, o);
        if (o.no === OPSET.VERSION) version = o.value;
      }
      if (domain === '' || domain === 'ai.onnx') opset = version;
    }
    this.opset = opset;
    this.entries = [...fieldsOf(buf, this.graphField.start, this.graphField.end)];
    for (const e of this.entries) {
      if (e.no === GRAPH.NODE) {
        const n = parseNode(buf, e);
        this.nodes.push(n);
        this.nodeAt.set(e, n);
        for (const o of n.outputs) this.producers.set(o, n);
        for (const i of n.inputs) {
          const list = this.readers.get(i);
          if (list) list.push(n);
          else this.readers.set(i, [n]);
        }
      } else if (e.no === GRAPH.INITIALIZER) {
        let name = '';
        for (const t of fieldsOf(buf, e.start, e.end)) {
          if (t.no === TENSOR.NAME) name = stringOf(buf, t);
          if (t.no === TENSOR.DATA_LOCATION && t.value === EXTERNAL) throw new NotRewritable('external data');
        }
        this.initializers.set(name, e);
      } else if (e.no === GRAPH.INPUT || e.no === GRAPH.OUTPUT) {
        const into = e.no === GRAPH.INPUT ? this.graphInputs : this.graphOutputs;
        for (const v of fieldsOf(buf, e.start, e.end)) if (v.no === VALUE_INFO_NAME) into.add(stringOf(buf, v));
      }
    }
  }

  producer(value: string | undefined): Node | undefined {
    return value === undefined ? undefined : this.producers.get(value);
  }

  /** Whether `name` is taken by any value in the graph. */
  has(name: string): boolean {
    return this.producers.has(name) || this.readers.has(name) || this.initializers.has(name) || this.graphInputs.has(name);
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
    const attr = OnnxGraph.is(c, 'Constant') ? c.attrs.get('value') : undefined;
    if (attr) for (const a of fieldsOf(this.buf, attr.start, attr.end)) if (a.no === ATTR.T) return a;
    return null;
  }

  /** The value of a one-element float constant, or null. */
  constant(value: string | undefined): number | null {
    const tensor = this.tensorOf(value);
    if (tensor) return floatScalar(this.buf, tensor);
    const c = this.producer(value);
    return OnnxGraph.is(c, 'Constant') && !this.graphInputs.has(value!) ? this.floatAttr(c, 'value_float') : null;
  }

  /** The dims of a constant tensor (weights), or null if `value` is not one. */
  constantDims(value: string | undefined): number[] | null {
    const tensor = this.tensorOf(value);
    return tensor ? dimsOf(this.buf, tensor) : null;
  }

  floatAttr(n: Node, name: string): number | null {
    const attr = n.attrs.get(name);
    if (!attr) return null;
    for (const a of fieldsOf(this.buf, attr.start, attr.end)) if (a.no === ATTR.F && a.wire === WIRE.I32) return view(this.buf, a.start);
    return null;
  }

  /** The model with `edits` applied; constants only the removed and replaced nodes read are dropped too. */
  write(edits: Edits): Uint8Array {
    const stillRead = new Set(edits.reads);
    for (const n of this.nodes) if (!edits.removed.has(n) && !edits.replaced.has(n)) for (const i of n.inputs) stillRead.add(i);
    const orphans = new Set(
      [...edits.removed, ...edits.replaced.keys()].flatMap((n) => n.inputs).filter((i) => !stillRead.has(i) && !this.graphOutputs.has(i) && !this.graphInputs.has(i)),
    );
    const orphanInits = new Set([...orphans].map((o) => this.initializers.get(o)));
    const out: Uint8Array[] = [];
    for (const e of this.entries) {
      const n = this.nodeAt.get(e);
      if (n && (edits.removed.has(n) || (n.op === 'Constant' && n.outputs.every((o) => orphans.has(o))))) continue;
      if (orphanInits.has(e)) continue;
      out.push((n && edits.replaced.get(n)) ?? this.buf.subarray(e.rawStart, e.rawEnd));
    }
    out.push(...edits.added);
    // One copy of the model: the graph's new key and length, then its parts.
    const graphLength = out.reduce((sum, part) => sum + part.length, 0);
    const parts = this.modelFields.flatMap((f) => (f === this.graphField ? [lengthPrefix(MODEL.GRAPH, graphLength), ...out] : [this.buf.subarray(f.rawStart, f.rawEnd)]));
    return Buffer.concat(parts);
  }
}

/** An encoded standard-domain node. */
export function newNode(op: string, name: string, inputs: string[], outputs: string[], floatAttrs: Record<string, number> = {}): Buffer {
  const attrs = Object.entries(floatAttrs).map(([k, v]) => messageField(NODE.ATTRIBUTE, bytesField(ATTR.NAME, k), floatField(ATTR.F, v), intField(ATTR.TYPE, ATTR_FLOAT)));
  return messageField(GRAPH.NODE, ...inputs.map((i) => bytesField(NODE.INPUT, i)), ...outputs.map((o) => bytesField(NODE.OUTPUT, o)), bytesField(NODE.NAME, name), bytesField(NODE.OP_TYPE, op), ...attrs);
}

/** An encoded float initializer of these dims, every element `value`. */
export function floatTensor(name: string, dims: number[], value: number): Buffer {
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = Buffer.alloc(4 * count);
  for (let i = 0; i < count; i++) raw.writeFloatLE(value, 4 * i);
  return messageField(GRAPH.INITIALIZER, ...dims.map((d) => intField(TENSOR.DIMS, d)), intField(TENSOR.DATA_TYPE, FLOAT), bytesField(TENSOR.NAME, name), bytesField(TENSOR.RAW_DATA, raw));
}
