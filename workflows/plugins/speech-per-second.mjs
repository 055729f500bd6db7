// A dw plugin pipeline (see "Plugins" in the README): the mean speech probability of each second
// of a recording, with the Silero VAD model the step names as "vad". It uses only what the context
// gives it: ctx.session (the daemon's session cache), ctx.ort, ctx.progress and ctx.signal.
const RATE = 16000;
const FRAME = 512;

export default {
  type: 'speech-per-second',
  roles: [{ name: 'vad', kind: 'onnx', required: true }],
  async run(args, ctx) {
    const { audio } = args;
    if (audio?.kind !== 'audio' || audio.sample_rate !== RATE || audio.channels !== 1) {
      throw new Error('"audio" must be 16 kHz mono audio, e.g. from an audio_resample step with mono: true');
    }
    const { Tensor } = ctx.ort;
    const session = await ctx.session('vad');
    const sr = new Tensor('int64', BigInt64Array.from([BigInt(RATE)]), []);
    let h = new Tensor('float32', new Float32Array(128), [2, 1, 64]);
    let c = new Tensor('float32', new Float32Array(128), [2, 1, 64]);
    const frames = Math.floor(audio.samples.length / FRAME);
    const seconds = [];
    for (let i = 0; i < frames; i++) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const input = new Tensor('float32', audio.samples.slice(i * FRAME, (i + 1) * FRAME), [1, FRAME]);
      const out = await session.run({ input, sr, h, c });
      h = out.hn;
      c = out.cn;
      (seconds[Math.floor((i * FRAME) / RATE)] ??= []).push(out.output.data[0]);
      ctx.progress(i + 1, frames, 'frames');
    }
    return { per_second: seconds.map((p) => Math.round((100 * p.reduce((a, b) => a + b, 0)) / p.length) / 100) };
  },
};
