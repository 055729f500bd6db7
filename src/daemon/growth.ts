// Runner memory across warm runs of the same models, as the seed system watched it: a baseline is
// taken at the first run after the set of loaded models last changed, and growth past a threshold
// from there is worth a warning (a leak in a pipeline, or an allocator that keeps arenas).

export interface GrowthReport {
  baseline_rss: number;
  latest_rss: number;
  warning: string | null;
}

const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;

export class GrowthTracker {
  private generation = -1;
  private report: GrowthReport | null = null;

  constructor(private readonly warnBytes: number) {}

  /**
   * Records the runner's RSS after a run. The warning describes the runner as it is now (it goes
   * once the runner is back under the threshold); the return value is it when it is new, to log once.
   */
  note(rss: number, generation: number): string | null {
    if (!this.report || generation !== this.generation) {
      this.generation = generation;
      this.report = { baseline_rss: rss, latest_rss: rss, warning: null };
      return null;
    }
    const was = this.report.warning;
    this.report.latest_rss = rss;
    const grown = rss - this.report.baseline_rss;
    this.report.warning =
      grown > this.warnBytes
        ? `runner memory grew by ${mb(grown)} across warm runs of the same models (from ${mb(this.report.baseline_rss)} to ${mb(rss)}); \`dw clear\` gives it back`
        : null;
    return was === null ? this.report.warning : null;
  }

  reset(): void {
    this.report = null;
  }

  snapshot(): GrowthReport | null {
    return this.report ? { ...this.report } : null;
  }
}
