// Audio threads of the voxloop page: the microphone in, the agent's voice out.

// Microphone -> 20 ms frames of 16-bit PCM, posted to the page (which sends them to the server).
// While muted (push-to-talk released) it sends silence, so the server still hears the pause that
// ends the user's turn. It also posts the input level about ten times a second.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = Math.round(sampleRate / 50);
    this.buf = new Int16Array(this.frame);
    this.n = 0;
    this.muted = false;
    this.sumSquares = 0;
    this.levelCount = 0;
    this.port.onmessage = (e) => {
      if (typeof e.data.muted === "boolean") this.muted = e.data.muted;
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const ch = channels[0];
    for (let i = 0; i < ch.length; i++) {
      let s = 0;
      for (let c = 0; c < channels.length; c++) s += channels[c][i];
      s = Math.max(-1, Math.min(1, s / channels.length));
      this.sumSquares += s * s;
      if (this.muted) s = 0;
      this.buf[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.n === this.frame) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Int16Array(this.frame);
        this.n = 0;
      }
    }
    this.levelCount += ch.length;
    if (this.levelCount >= sampleRate / 10) {
      this.port.postMessage({ level: Math.sqrt(this.sumSquares / this.levelCount) });
      this.sumSquares = 0;
      this.levelCount = 0;
    }
    return true;
  }
}

// The agent's voice: PCM chunks played back to back with no gaps, dropped at once on barge-in.
// `position` counts every sample received, played or skipped; the server uses it to know what
// the user heard. Reports go to the page every ~50 ms while playing, and when playback runs dry.
class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // Float32Arrays not yet played
    this.offset = 0; // read position in queue[0]
    this.buffered = 0; // samples queued
    this.received = 0; // samples received, in the server's count
    this.position = 0; // the next sample to play, in the server's count
    this.discarding = false; // after a local cut: skip audio until the server confirms the stop
    this.paused = false; // holding the sound (user sound over the agent, not yet judged)
    this.played = 0; // samples actually played
    this.peak = 0; // loudest sample played
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === "audio") {
      const pcm = new Int16Array(m.buffer);
      this.received += pcm.length;
      if (this.discarding) {
        this.position += pcm.length;
        return;
      }
      const f = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
      this.queue.push(f);
      this.buffered += f.length;
    } else if (m.type === "pause" || m.type === "resume") {
      this.paused = m.type === "pause";
      this.report();
    } else if (m.type === "cut" || m.type === "stop") {
      // drop what is queued: everything received so far counts as passed
      this.queue = [];
      this.offset = 0;
      this.buffered = 0;
      this.position = this.received;
      this.discarding = m.type === "cut";
      this.paused = false;
      this.report();
    }
  }

  report() {
    this.sinceReport = 0;
    this.port.postMessage({
      position: this.position,
      buffered: this.buffered,
      played: this.played,
      peak: this.peak,
    });
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const wasPlaying = this.buffered > 0 && !this.paused;
    let i = 0;
    while (wasPlaying && i < out.length && this.queue.length > 0) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      for (let k = 0; k < n; k++) {
        const s = head[this.offset + k];
        out[i + k] = s;
        const a = s < 0 ? -s : s;
        if (a > this.peak) this.peak = a;
      }
      i += n;
      this.offset += n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    out.fill(0, i);
    this.buffered -= i;
    this.position += i;
    this.played += i;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (wasPlaying) {
      this.sinceReport += out.length;
      if (this.buffered === 0 || this.sinceReport >= sampleRate / 20) this.report();
    }
    return true;
  }
}

registerProcessor("vox-capture", Capture);
registerProcessor("vox-player", Player);
