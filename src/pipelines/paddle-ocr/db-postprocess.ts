// Differentiable-binarisation post-processing (PaddleOCR's DBPostProcess): turns the detector's
// text probability map into rotated text boxes in the original image's coordinates.
import { distance, expandRect, minAreaRect, orderClockwise, type Point, type Quad } from './geometry.js';

export interface DbOptions {
  /** Probability above which a pixel is text. */
  thresh: number;
  /** Minimum mean probability inside a candidate box. */
  boxThresh: number;
  /** How far a box grows back out (by area * ratio / perimeter): the map marks text shrunk inwards. */
  unclipRatio: number;
  maxCandidates: number;
  /** Shortest side, in map pixels, for a candidate to count. */
  minSize: number;
}

export const DB_DEFAULTS: DbOptions = { thresh: 0.3, boxThresh: 0.6, unclipRatio: 1.5, maxCandidates: 1000, minSize: 3 };

export interface ScoredBox {
  box: Quad;
  score: number;
}

/**
 * The connected regions (8-connected, like cv2.findContours) of pixels above `thresh`, in raster
 * order of their first pixel, each reduced to its leftmost and rightmost pixel per row: those
 * include every vertex of the region's convex hull, which is all the rectangle fit needs. Holes
 * are not reported (cv2 RETR_LIST would add their contours; they never make a text box).
 */
export function regions(prob: Float32Array, width: number, height: number, thresh: number, limit: number): Point[][] {
  const n = width * height;
  const label = new Int32Array(n); // 0 = unvisited, -1 = background, k = region k
  const stack = new Int32Array(n);
  // Per-row extremes of the region being filled; a row is reset when the region first reaches it.
  const rowMin = new Int32Array(height).fill(-1);
  const rowMax = new Int32Array(height).fill(-1);
  const out: Point[][] = [];
  for (let start = 0; start < n && out.length < limit; start++) {
    if (label[start] !== 0) continue;
    if (!(prob[start]! > thresh)) {
      label[start] = -1;
      continue;
    }
    const id = out.length + 1;
    // A region's first pixel in raster order is on its top row, and it grows at most downwards.
    const y0 = (start - (start % width)) / width;
    let y1 = y0;
    rowMin[y0] = rowMax[y0] = -1;
    let top = 0;
    stack[top++] = start;
    label[start] = id;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % width,
        y = (p - x) / width;
      if (y > y1) {
        for (let r = y1 + 1; r <= y; r++) rowMin[r] = rowMax[r] = -1;
        y1 = y;
      }
      if (rowMin[y] === -1 || x < rowMin[y]!) rowMin[y] = x;
      if (x > rowMax[y]!) rowMax[y] = x;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (label[q] !== 0) continue;
          if (prob[q]! > thresh) {
            label[q] = id;
            stack[top++] = q;
          } else label[q] = -1;
        }
      }
    }
    const pts: Point[] = [];
    for (let y = y0; y <= y1; y++) if (rowMin[y]! >= 0) pts.push([rowMin[y]!, y], [rowMax[y]!, y]);
    out.push(pts);
  }
  return out;
}

/**
 * Mean probability over the pixels inside the quad (PaddleOCR's box_score_fast: the polygon is
 * rasterised with its corners truncated to integers, borders included, within its bounding box).
 */
export function boxScore(prob: Float32Array, width: number, height: number, quad: readonly Point[]): number {
  const xs = quad.map((p) => p[0]),
    ys = quad.map((p) => p[1]);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const xmin = clamp(Math.floor(Math.min(...xs)), width - 1),
    xmax = clamp(Math.ceil(Math.max(...xs)), width - 1);
  const ymin = clamp(Math.floor(Math.min(...ys)), height - 1),
    ymax = clamp(Math.ceil(Math.max(...ys)), height - 1);
  const poly = quad.map((p): Point => [Math.trunc(p[0]), Math.trunc(p[1])]);
  // Orientation-independent inside test for a convex polygon: all edge cross products share a sign.
  const edges = poly.map((a, i) => [a, poly[(i + 1) % poly.length]!] as const);
  let sum = 0,
    count = 0;
  for (let y = ymin; y <= ymax; y++) {
    for (let x = xmin; x <= xmax; x++) {
      let pos = false,
        neg = false;
      for (const [a, b] of edges) {
        const c = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        if (c > 1e-9) pos = true;
        else if (c < -1e-9) neg = true;
      }
      if (pos && neg) continue;
      sum += prob[y * width + x]!;
      count += 1;
    }
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * Boxes from a probability map of `width` x `height`, scaled to an image of `destWidth` x
 * `destHeight`, corners rounded and clamped to it (PaddleOCR's boxes_from_bitmap).
 */
export function boxesFromProbability(
  prob: Float32Array,
  width: number,
  height: number,
  destWidth: number,
  destHeight: number,
  opts: DbOptions = DB_DEFAULTS,
): ScoredBox[] {
  const out: ScoredBox[] = [];
  for (const pts of regions(prob, width, height, opts.thresh, opts.maxCandidates)) {
    const rect = minAreaRect(pts);
    if (Math.min(...rect.sides) < opts.minSize) continue;
    const score = boxScore(prob, width, height, rect.corners);
    if (score < opts.boxThresh) continue;
    // pyclipper's round-joined offset by area*ratio/perimeter, then minAreaRect: for a rectangle
    // that is the same rectangle grown by the offset on each side.
    const [w, h] = rect.sides;
    const grown = expandRect(rect, (w * h * opts.unclipRatio) / (2 * (w + h)));
    if (Math.min(...grown.sides) < opts.minSize + 2) continue;
    const box = grown.corners.map(
      (p): Point => [
        Math.min(Math.max(Math.round((p[0] / width) * destWidth), 0), destWidth),
        Math.min(Math.max(Math.round((p[1] / height) * destHeight), 0), destHeight),
      ],
    );
    out.push({ box: box as Quad, score });
  }
  return out;
}

/**
 * PaddleOCR's filter_tag_det_res: corners clockwise from top-left, clamped inside the image, and
 * boxes 3 px or thinner either way dropped (nothing readable fits).
 */
export function finishBoxes(boxes: readonly ScoredBox[], imageWidth: number, imageHeight: number): ScoredBox[] {
  const out: ScoredBox[] = [];
  for (const { box, score } of boxes) {
    const q = orderClockwise(box).map(
      (p): Point => [Math.trunc(Math.min(Math.max(p[0], 0), imageWidth - 1)), Math.trunc(Math.min(Math.max(p[1], 0), imageHeight - 1))],
    ) as Quad;
    if (Math.trunc(distance(q[0], q[1])) <= 3 || Math.trunc(distance(q[0], q[3])) <= 3) continue;
    out.push({ box: q, score });
  }
  return out;
}
