// DB post-processing on synthetic probability maps, and the geometry and pixel helpers under it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  boxesFromProbability,
  boxScore,
  DB_DEFAULTS,
  finishBoxes,
  regions,
  type ScoredBox,
} from '../src/pipelines/paddle-ocr/db-postprocess.js';
import {
  convexHull,
  expandRect,
  minAreaRect,
  orderClockwise,
  sortReadingOrder,
  type Point,
  type Quad,
} from '../src/pipelines/paddle-ocr/geometry.js';
import { cropTextLine, growQuad, rotate90ccw, warpQuad } from '../src/pipelines/paddle-ocr/crop.js';
import { detInputSize } from '../src/pipelines/paddle-ocr/detect.js';
import { DET_NORM, resizeBilinear, writeChw } from '../src/pipelines/paddle-ocr/image.js';
import type { RawImage } from '../src/pipelines/types.js';

interface Map2D {
  data: Float32Array;
  width: number;
  height: number;
}

const blank = (width: number, height: number): Map2D => ({ data: new Float32Array(width * height), width, height });

/** Sets pixels x0..x1, y0..y1 (inclusive) to p. */
function fillRect(m: Map2D, x0: number, y0: number, x1: number, y1: number, p: number): Map2D {
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m.data[y * m.width + x] = p;
  return m;
}

/** Sets the pixels whose centre lies in a length x thickness bar centred at (cx, cy), turned by `deg` (clockwise on screen). */
function fillBar(m: Map2D, cx: number, cy: number, length: number, thickness: number, deg: number, p: number): Map2D {
  const a = (deg * Math.PI) / 180,
    ux = Math.cos(a),
    uy = Math.sin(a);
  for (let y = 0; y < m.height; y++) {
    for (let x = 0; x < m.width; x++) {
      const u = (x - cx) * ux + (y - cy) * uy,
        v = -(x - cx) * uy + (y - cy) * ux;
      if (Math.abs(u) <= length / 2 && Math.abs(v) <= thickness / 2) m.data[y * m.width + x] = p;
    }
  }
  return m;
}

const detectIn = (m: Map2D, destW = m.width, destH = m.height, opts = DB_DEFAULTS): ScoredBox[] =>
  finishBoxes(boxesFromProbability(m.data, m.width, m.height, destW, destH, opts), destW, destH);

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} is not within ${tol} of ${b}`);
const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

test('an axis-aligned blob gives one box, grown by area * unclip_ratio / perimeter on each side', () => {
  // Pixel centres span x 50..149 and y 40..49: a 99 x 9 rectangle. Offset = 99*9*1.5 / (2*(99+9)) = 6.1875.
  const m = fillRect(blank(200, 100), 50, 40, 149, 49, 0.9);
  const boxes = detectIn(m);
  assert.equal(boxes.length, 1);
  assert.deepEqual(boxes[0]!.box, [
    [44, 34],
    [155, 34],
    [155, 55],
    [44, 55],
  ]);
  near(boxes[0]!.score, 0.9, 1e-6, 'score');
  // The same map for an image twice the size: coordinates scale with it before rounding.
  assert.deepEqual(detectIn(m, 400, 200)[0]!.box, [
    [88, 68],
    [310, 68],
    [310, 110],
    [88, 110],
  ]);
  // A larger unclip_ratio grows the box further: offset 99*9*3 / 216 = 12.375.
  assert.deepEqual(detectIn(m, 200, 100, { ...DB_DEFAULTS, unclipRatio: 3 })[0]!.box, [
    [38, 28],
    [161, 28],
    [161, 61],
    [38, 61],
  ]);
});

test('a rotated blob gives a box rotated with it', () => {
  const m = fillBar(blank(300, 200), 150, 100, 160, 16, 20, 0.95);
  const boxes = detectIn(m);
  assert.equal(boxes.length, 1);
  const [tl, tr, br, bl] = boxes[0]!.box;
  near((Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * 180) / Math.PI, 20, 1.5, 'angle of the top edge');
  near((Math.atan2(br[1] - bl[1], br[0] - bl[0]) * 180) / Math.PI, 20, 1.5, 'angle of the bottom edge');
  near((tl[0] + br[0]) / 2, 150, 1.5, 'centre x');
  near((tl[1] + br[1]) / 2, 100, 1.5, 'centre y');
  // About 160 x 16 grown by ~ 160*16*1.5 / (2*176) ≈ 11 on each side.
  near(dist(tl, tr), 160 + 22, 4, 'long side');
  near(dist(tl, bl), 16 + 22, 4, 'short side');
});

test('two separate blobs give two boxes; blobs touching at a corner are one (8-connected)', () => {
  const two = fillRect(fillRect(blank(200, 60), 10, 20, 80, 35, 0.9), 110, 22, 190, 37, 0.9);
  const boxes = sortReadingOrder(detectIn(two));
  assert.equal(boxes.length, 2);
  assert.ok(boxes[0]!.box[1][0] < boxes[1]!.box[0][0], 'the left box ends before the right one starts');
  const diagonal = fillRect(fillRect(blank(200, 60), 10, 10, 60, 29, 0.9), 61, 30, 120, 49, 0.9);
  assert.equal(regions(diagonal.data, 200, 60, 0.3, 1000).length, 1);
});

test('blobs whose rectangle is thinner than min_size are dropped, the smallest kept one is not', () => {
  const m = blank(120, 40);
  fillRect(m, 5, 5, 7, 7, 0.95); // 3x3 pixels: a 2 x 2 rectangle through their centres
  fillRect(m, 20, 10, 90, 10, 0.95); // one pixel tall: 70 x 0
  fillRect(m, 100, 20, 103, 23, 0.95); // 4x4 pixels: 3 x 3, exactly min_size
  const boxes = detectIn(m);
  assert.equal(boxes.length, 1);
  near(boxes[0]!.box[0][0], 100, 2, 'the kept box is the 4x4 blob');
});

test('a region above thresh but with a mean below box_thresh is dropped', () => {
  const m = fillRect(blank(200, 60), 20, 20, 180, 35, 0.45);
  assert.equal(detectIn(m).length, 0, 'mean 0.45 < box_thresh 0.6');
  const kept = detectIn(m, 200, 60, { ...DB_DEFAULTS, boxThresh: 0.4 });
  assert.equal(kept.length, 1);
  near(kept[0]!.score, 0.45, 1e-6, 'score');
  assert.equal(detectIn(fillRect(blank(200, 60), 20, 20, 180, 35, 0.25)).length, 0, 'below thresh 0.3 is background');
});

test('max_candidates bounds the regions looked at', () => {
  const m = blank(400, 40);
  for (let i = 0; i < 5; i++) fillRect(m, 10 + i * 80, 10, 60 + i * 80, 25, 0.9);
  assert.equal(detectIn(m).length, 5);
  assert.equal(detectIn(m, 400, 40, { ...DB_DEFAULTS, maxCandidates: 3 }).length, 3);
});

test('a ring is one region: its hole does not become a box', () => {
  const m = fillRect(blank(100, 100), 20, 20, 79, 79, 0.9);
  fillRect(m, 35, 35, 64, 64, 0);
  assert.equal(regions(m.data, m.width, m.height, 0.3, 1000).length, 1);
  assert.equal(detectIn(m).length, 1);
});

test('box score is the mean probability inside the quad, borders included', () => {
  const m = fillRect(blank(20, 10), 0, 0, 9, 9, 1);
  near(
    boxScore(m.data, 20, 10, [
      [0, 0],
      [19, 0],
      [19, 9],
      [0, 9],
    ]),
    0.5,
    1e-9,
    'half the box is 1',
  );
  near(
    boxScore(m.data, 20, 10, [
      [2, 2],
      [7, 2],
      [7, 7],
      [2, 7],
    ]),
    1,
    1e-9,
    'all inside the blob',
  );
});

test('finished boxes are clockwise from top-left, clamped into the image, and thin ones dropped', () => {
  const boxes = finishBoxes(
    [
      {
        box: [
          [130, 40],
          [-5, 40],
          [-5, 10],
          [130, 10],
        ],
        score: 0.9,
      },
      {
        box: [
          [10, 50],
          [60, 50],
          [60, 53],
          [10, 53],
        ],
        score: 0.9,
      },
    ],
    100,
    80,
  );
  assert.deepEqual(boxes, [
    {
      box: [
        [0, 10],
        [99, 10],
        [99, 40],
        [0, 40],
      ],
      score: 0.9,
    },
  ]);
});

test('convex hull keeps the corners only', () => {
  const grid: Point[] = [];
  for (let x = 0; x <= 4; x++) for (let y = 0; y <= 4; y++) grid.push([x, y]);
  const hull = convexHull(grid);
  assert.equal(hull.length, 4);
  assert.deepEqual(
    [...hull].sort((a, b) => a[0] - b[0] || a[1] - b[1]),
    [
      [0, 0],
      [0, 4],
      [4, 0],
      [4, 4],
    ],
  );
  assert.deepEqual(
    convexHull([
      [1, 1],
      [1, 1],
    ]),
    [[1, 1]],
    'duplicates collapse',
  );
});

test('the minimum-area rectangle of a rotated rectangle is that rectangle', () => {
  const a = (30 * Math.PI) / 180;
  const corner = (u: number, v: number): Point => [100 + u * Math.cos(a) - v * Math.sin(a), 100 + u * Math.sin(a) + v * Math.cos(a)];
  const corners = [corner(-20, -5), corner(20, -5), corner(20, 5), corner(-20, 5)];
  const inside = [corner(0, 0), corner(10, 2), corner(-15, -4)];
  const rect = minAreaRect([...inside, ...corners]);
  const sides = [...rect.sides].sort((x, y) => x - y);
  near(sides[0]!, 10, 1e-9, 'short side');
  near(sides[1]!, 40, 1e-9, 'long side');
  for (const c of corners)
    assert.ok(
      rect.corners.some((r) => dist(r, c) < 1e-9),
      `corner ${c} is a corner of the fit`,
    );
  const axis = minAreaRect([
    [2, 3],
    [12, 3],
    [12, 8],
    [2, 8],
    [5, 5],
  ]);
  assert.deepEqual(
    [...axis.sides].sort((x, y) => x - y),
    [5, 10],
  );
});

test('a rectangle grows by the same distance on every side', () => {
  const grown = expandRect(
    minAreaRect([
      [10, 10],
      [50, 10],
      [50, 20],
      [10, 20],
    ]),
    2,
  );
  assert.deepEqual(
    [...grown.sides].sort((x, y) => x - y),
    [14, 44],
  );
  const q = orderClockwise(grown.corners).map((p) => p.map((v) => Math.round(v * 1e9) / 1e9));
  assert.deepEqual(q, [
    [8, 8],
    [52, 8],
    [52, 22],
    [8, 22],
  ]);
});

test('corners are ordered clockwise from top-left whatever order they come in', () => {
  assert.deepEqual(
    orderClockwise([
      [50, 20],
      [10, 10],
      [10, 20],
      [50, 10],
    ]),
    [
      [10, 10],
      [50, 10],
      [50, 20],
      [10, 20],
    ],
  );
  // A box tilted down to the right.
  assert.deepEqual(
    orderClockwise([
      [12, 30],
      [100, 40],
      [98, 60],
      [10, 50],
    ]),
    [
      [12, 30],
      [100, 40],
      [98, 60],
      [10, 50],
    ],
  );
});

test('reading order: top to bottom, and left to right for tops within 10 px', () => {
  const box = (x: number, y: number): Quad => [
    [x, y],
    [x + 30, y],
    [x + 30, y + 10],
    [x, y + 10],
  ];
  const items = [
    { id: 'right', box: box(100, 10) },
    { id: 'below', box: box(5, 40) },
    { id: 'left', box: box(10, 15) },
    { id: 'lower-left', box: box(0, 26) },
  ];
  assert.deepEqual(
    sortReadingOrder(items).map((i) => i.id),
    ['left', 'right', 'lower-left', 'below'],
  );
});

test('detector input: longer side limited, each side a multiple of 32 rounded like Python', () => {
  assert.deepEqual(detInputSize(1000, 500, 960), { width: 960, height: 480 });
  assert.deepEqual(detInputSize(640, 416, 960), { width: 640, height: 416 });
  // 80/32 = 2.5 rounds to 2 (to even), 112/32 = 3.5 rounds to 4; nothing below 32.
  assert.deepEqual(detInputSize(80, 112, 960), { width: 64, height: 128 });
  assert.deepEqual(detInputSize(10, 300, 960), { width: 32, height: 288 });
});

const img = (width: number, height: number, f: (x: number, y: number) => [number, number, number]): RawImage => {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(f(x, y), (y * width + x) * 3);
  return { data, width, height, channels: 3 };
};

test('bilinear resize samples like cv2.INTER_LINEAR', () => {
  const row = img(4, 1, (x) => [x * 60, 0, 0]);
  // Halving: destination pixel 0 samples source x 0.5, pixel 1 samples 2.5.
  assert.deepEqual(
    [...resizeBilinear(row, 2, 1).data].filter((_, i) => i % 3 === 0),
    [30, 150],
  );
  // Doubling: sources -0.25, 0.25, ..., 3.25; the ends clamp to the edge pixels.
  assert.deepEqual(
    [...resizeBilinear(row, 8, 1).data].filter((_, i) => i % 3 === 0),
    [0, 15, 45, 75, 105, 135, 165, 180],
  );
});

test('tensors are normalised planar BGR, as PaddleOCR feeds cv2 images', () => {
  const red = img(1, 1, () => [255, 0, 0]);
  const out = new Float32Array(3);
  writeChw(red, DET_NORM, out);
  near(out[0]!, (0 - 0.485) / 0.229, 1e-6, 'plane 0 is blue');
  near(out[2]!, (1 - 0.406) / 0.225, 1e-6, 'plane 2 is red');
});

test('an axis-aligned quad crops the exact pixels; a tall crop is turned on its side', () => {
  const page = img(20, 10, (x, y) => [x * 10, y * 20, 7]);
  const crop = warpQuad(
    page,
    [
      [3, 2],
      [11, 2],
      [11, 6],
      [3, 6],
    ],
    8,
    4,
  );
  assert.deepEqual(crop.data, img(8, 4, (x, y) => [(x + 3) * 10, (y + 2) * 20, 7]).data);
  const tall = cropTextLine(page, [
    [2, 0],
    [6, 0],
    [6, 9],
    [2, 9],
  ]);
  assert.deepEqual([tall.width, tall.height], [9, 4]);
  // Counter-clockwise: the input's top-right pixel ends at the output's top-left.
  const turned = rotate90ccw(img(3, 2, (x, y) => [x, y, 0]));
  assert.deepEqual([turned.width, turned.height], [2, 3]);
  assert.deepEqual([...turned.data.slice(0, 3)], [2, 0, 0]);
  assert.deepEqual([...turned.data.slice(-3)], [0, 1, 0]);
});

test('growQuad pushes every side out along the quad axes', () => {
  assert.deepEqual(
    growQuad(
      [
        [10, 10],
        [50, 10],
        [50, 20],
        [10, 20],
      ],
      3,
    ),
    [
      [7, 7],
      [53, 7],
      [53, 23],
      [7, 23],
    ],
  );
});
