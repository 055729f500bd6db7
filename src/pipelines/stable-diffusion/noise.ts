// The seeded noise of a generation: the initial latents, a VAE encoder's sample, and the fresh noise
// that ancestral and LCM steps add. It is NumPy's legacy generator, `np.random.RandomState(seed)`
// with `.randn()`: MT19937 seeded by init_genrand(seed), 53-bit doubles (genrand_res53) and the polar
// Box-Muller method, cast to float32. That is what diffusers' ONNX pipelines
// (OnnxStableDiffusionPipeline) draw their latents from, so a seed means the same starting noise
// there; it cannot match torch.randn bit for bit (torch's CPU generator draws floats differently
// and its vectorised path uses other math), so images differ from a PyTorch pipeline's of that seed.
// The same seed always gives the same numbers here, on any machine: only integer and IEEE double
// arithmetic (+, *, /, sqrt, log) is involved, and V8's log is its own fdlibm port, not the host's.

const N = 624;
const M = 397;
// MT19937's constants as int32 bit patterns (the hex literals are doubles above 2^31).
const UPPER = 0x80000000 | 0;
const MATRIX_A = 0x9908b0df | 0;
const TEMPER_B = 0x9d2c5680 | 0;
const TEMPER_C = 0xefc60000 | 0;

export const MAX_SEED = 0xffffffff;
const TWO_TO_MINUS_53 = 2 ** -53;

export class Noise {
  // Int32Array, not Uint32Array: words of 2^31 and more would leave V8's small-integer path (5x slower).
  private readonly mt = new Int32Array(N);
  /** The state's words after tempering: what genrand_int32 returns (as int32 bits), made N at a time. */
  private readonly words = new Int32Array(N);
  private index = N + 1;
  /** The polar method makes two numbers at a time; NumPy keeps the second for the next call. */
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED}`);
    // init_genrand (Matsumoto & Nishimura, mt19937ar.c).
    this.mt[0] = seed | 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, modulo 2^32, without losing bits to doubles.
      this.mt[i] = (Math.imul(1812433253, prev) + i) | 0;
    }
    this.index = N;
  }

  private refill(): void {
    const mt = this.mt;
    const words = this.words;
    // mt19937ar.c's three loops (no modulo per word: ancestral steps draw 65k numbers each), each
    // word tempered as soon as it is final, and the odd-word XOR without a branch (-(y & 1) is all
    // ones or zero): 2.7x faster here than a tempering pass of its own and a conditional. The
    // tempering is written out in each loop on purpose: as a shared function it was 3x slower.
    let k = 0;
    for (; k < N - M; k++) {
      const y = (mt[k]! & UPPER) | (mt[k + 1]! & 0x7fffffff);
      let t = mt[k + M]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
      mt[k] = t;
      t ^= t >>> 11;
      t ^= (t << 7) & TEMPER_B;
      t ^= (t << 15) & TEMPER_C;
      words[k] = t ^ (t >>> 18);
    }
    for (; k < N - 1; k++) {
      const y = (mt[k]! & UPPER) | (mt[k + 1]! & 0x7fffffff);
      let t = mt[k + M - N]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
      mt[k] = t;
      t ^= t >>> 11;
      t ^= (t << 7) & TEMPER_B;
      t ^= (t << 15) & TEMPER_C;
      words[k] = t ^ (t >>> 18);
    }
    const y = (mt[N - 1]! & UPPER) | (mt[0]! & 0x7fffffff);
    let t = mt[M - 1]! ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    mt[N - 1] = t;
    t ^= t >>> 11;
    t ^= (t << 7) & TEMPER_B;
    t ^= (t << 15) & TEMPER_C;
    words[N - 1] = t ^ (t >>> 18);
    this.index = 0;
  }

  /** genrand_int32: the next 32-bit output, tempered. */
  uint32(): number {
    if (this.index >= N) this.refill();
    return this.words[this.index++]! >>> 0;
  }

  /** genrand_res53: a double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** NumPy's legacy_gauss: one standard normal double. */
  gauss(): number {
    if (this.spare !== null) {
      const g = this.spare;
      this.spare = null;
      return g;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.uniform() - 1;
      x2 = 2 * this.uniform() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.spare = f * x1;
    return f * x2;
  }

  /**
   * `n` standard normal numbers as float32, in the order NumPy's randn fills a C-order array: the
   * same arithmetic as gauss(), inlined (an ancestral step draws one per latent, 65k at 1024×1024).
   */
  randn(n: number): Float32Array {
    const out = new Float32Array(n);
    let i = 0;
    if (n > 0 && this.spare !== null) {
      out[i++] = this.spare;
      this.spare = null;
    }
    const words = this.words;
    let at = this.index;
    while (i < n) {
      let x1: number, x2: number, r2: number;
      do {
        // Four words per try (two 53-bit doubles); where fewer are left, one at a time through uint32().
        let w0: number, w1: number, w2: number, w3: number;
        if (at <= N - 4) {
          w0 = words[at]!;
          w1 = words[at + 1]!;
          w2 = words[at + 2]!;
          w3 = words[at + 3]!;
          at += 4;
        } else {
          this.index = at;
          w0 = this.uint32();
          w1 = this.uint32();
          w2 = this.uint32();
          w3 = this.uint32();
          at = this.index;
        }
        // (a * 2^26 + b) / 2^53, the division by a power of two done as an exact product.
        x1 = 2 * (((w0 >>> 5) * 67108864 + (w1 >>> 6)) * TWO_TO_MINUS_53) - 1;
        x2 = 2 * (((w2 >>> 5) * 67108864 + (w3 >>> 6)) * TWO_TO_MINUS_53) - 1;
        r2 = x1 * x1 + x2 * x2;
      } while (r2 >= 1 || r2 === 0);
      const f = Math.sqrt((-2 * Math.log(r2)) / r2);
      out[i++] = f * x2;
      if (i < n) out[i++] = f * x1;
      else this.spare = f * x1;
    }
    this.index = at;
    return out;
  }
}
