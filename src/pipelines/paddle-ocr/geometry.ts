// Plane geometry for text boxes: convex hull, minimum-area rectangle, corner order, reading order.

export type Point = [number, number];
/** Four corners; after orderClockwise: top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

export interface RotatedRect {
  /** Corners in the order they go round the rectangle (either direction). */
  corners: Quad;
  /** Side lengths; which one is the "width" depends on the rectangle's angle. */
  sides: [number, number];
}

const cross = (o: Point, a: Point, b: Point): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Convex hull by Andrew's monotone chain, counter-clockwise (in y-up terms), without collinear points. */
export function convexHull(points: readonly Point[]): Point[] {
  const pts = [...points]
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .filter((p, i, all) => i === 0 || p[0] !== all[i - 1]![0] || p[1] !== all[i - 1]![1]);
  if (pts.length <= 2) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/**
 * The smallest-area rectangle enclosing the points (cv2.minAreaRect). One side of that rectangle
 * is collinear with an edge of the convex hull (the rotating-calipers theorem), so trying each
 * hull edge as a direction finds it; hulls of text blobs have few vertices, so O(h^2) is cheap.
 */
export function minAreaRect(points: readonly Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0)
    return {
      corners: [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      sides: [0, 0],
    };
  if (hull.length === 1) {
    const p = hull[0]!;
    return { corners: [p, p, p, p], sides: [0, 0] };
  }
  let best: { area: number; ux: number; uy: number; minU: number; maxU: number; minV: number; maxV: number } | undefined;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Infinity,
      maxU = -Infinity,
      minV = Infinity,
      maxV = -Infinity;
    for (const p of hull) {
      const u = p[0] * ux + p[1] * uy;
      const v = -p[0] * uy + p[1] * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (!best || area < best.area) best = { area, ux, uy, minU, maxU, minV, maxV };
  }
  const { ux, uy, minU, maxU, minV, maxV } = best!;
  const at = (u: number, v: number): Point => [u * ux - v * uy, u * uy + v * ux];
  return {
    corners: [at(minU, minV), at(maxU, minV), at(maxU, maxV), at(minU, maxV)],
    sides: [maxU - minU, maxV - minV],
  };
}

/** Grows a rectangle by `d` on every side, keeping its centre and angle. */
export function expandRect(rect: RotatedRect, d: number): RotatedRect {
  const [p0, p1, , p3] = rect.corners;
  const [w, h] = rect.sides;
  // Unit vectors along the two sides; a degenerate side gets the perpendicular of the other.
  let ax = w > 0 ? (p1[0] - p0[0]) / w : 0,
    ay = w > 0 ? (p1[1] - p0[1]) / w : 0;
  let bx = h > 0 ? (p3[0] - p0[0]) / h : 0,
    by = h > 0 ? (p3[1] - p0[1]) / h : 0;
  if (w === 0 && h === 0) [ax, ay, bx, by] = [1, 0, 0, 1];
  else if (w === 0) [ax, ay] = [by, -bx];
  else if (h === 0) [bx, by] = [-ay, ax];
  const cx = (rect.corners[0][0] + rect.corners[2][0]) / 2;
  const cy = (rect.corners[0][1] + rect.corners[2][1]) / 2;
  const hw = w / 2 + d,
    hh = h / 2 + d;
  const at = (s: number, t: number): Point => [cx + s * hw * ax + t * hh * bx, cy + s * hw * ay + t * hh * by];
  return { corners: [at(-1, -1), at(1, -1), at(1, 1), at(-1, 1)], sides: [w + 2 * d, h + 2 * d] };
}

/**
 * Orders four corners as top-left, top-right, bottom-right, bottom-left (clockwise on screen), as
 * PaddleOCR's order_points_clockwise: smallest x+y is top-left, largest is bottom-right, and of the
 * other two the one with smaller y-x is top-right.
 */
export function orderClockwise(pts: readonly Point[]): Quad {
  const idx = [0, 1, 2, 3];
  const sum = (i: number) => pts[i]![0] + pts[i]![1];
  const tl = idx.reduce((m, i) => (sum(i) < sum(m) ? i : m));
  const br = idx.reduce((m, i) => (sum(i) > sum(m) ? i : m), tl === 0 ? 1 : 0);
  const rest = idx.filter((i) => i !== tl && i !== br);
  const diff = (i: number) => pts[i]![1] - pts[i]![0];
  const [tr, bl] = diff(rest[0]!) <= diff(rest[1]!) ? [rest[0]!, rest[1]!] : [rest[1]!, rest[0]!];
  return [pts[tl]!, pts[tr]!, pts[br]!, pts[bl]!];
}

export const distance = (a: Point, b: Point): number => Math.hypot(a[0] - b[0], a[1] - b[1]);

/**
 * Reading order, as PaddleOCR's sorted_boxes: by the top-left corner's y then x, then one bubble
 * pass so that boxes whose tops are within 10 px count as one row and go left to right.
 */
export function sortReadingOrder<T extends { box: Quad }>(items: readonly T[]): T[] {
  const out = [...items].sort((a, b) => a.box[0][1] - b.box[0][1] || a.box[0][0] - b.box[0][0]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = out[j]!,
        b = out[j + 1]!;
      if (Math.abs(b.box[0][1] - a.box[0][1]) < 10 && b.box[0][0] < a.box[0][0]) {
        out[j] = b;
        out[j + 1] = a;
      } else break;
    }
  }
  return out;
}
