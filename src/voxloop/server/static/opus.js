"use strict";
// Opus on the wire (docs/protocol.md, "Opus") through WebCodecs, where this browser has it: the
// microphone's PCM16 frames encoded into 20 ms packets, the server's packets decoded back to PCM16
// for the player. Where AudioEncoder or AudioDecoder cannot do Opus, that direction stays PCM16.

const OPUS_RATES = [8000, 12000, 16000, 24000, 48000];
const OPUS_MIC_BITRATE = 32000; // wideband speech (the recogniser hears 16 kHz); README: Opus on the wire

async function supported(kind, config) {
  const api = kind === "encoder" ? globalThis.AudioEncoder : globalThis.AudioDecoder;
  if (typeof api === "undefined") return false;
  try {
    return !!(await api.isConfigSupported(config)).supported;
  } catch {
    return false;
  }
}

// PCM16 frames (ArrayBuffers) at `rate` in; each Opus packet (an ArrayBuffer) to onPacket. Null
// when the browser cannot encode Opus at this rate.
async function opusMicEncoder(rate, onPacket, onError) {
  const config = {
    codec: "opus",
    sampleRate: rate,
    numberOfChannels: 1,
    bitrate: OPUS_MIC_BITRATE,
    opus: { frameDuration: 20000 },
  };
  if (!(await supported("encoder", config))) return null;
  const enc = new AudioEncoder({
    output: (chunk) => {
      const buf = new ArrayBuffer(chunk.byteLength);
      chunk.copyTo(buf);
      onPacket(buf);
    },
    error: onError,
  });
  enc.configure(config);
  let samples = 0;
  return {
    encode(pcm) {
      if (enc.state !== "configured") return;
      const n = pcm.byteLength / 2;
      const data = new AudioData({
        format: "s16",
        sampleRate: rate,
        numberOfFrames: n,
        numberOfChannels: 1,
        timestamp: Math.round((samples * 1e6) / rate),
        data: pcm,
      });
      samples += n;
      enc.encode(data);
      data.close();
    },
    close() {
      if (enc.state !== "closed") enc.close();
    },
  };
}

// Opus packets in, in order; PCM16 at `rate` (an ArrayBuffer per packet) to onPcm. `after(fn)`
// runs fn once every packet received before it has been handed on, so a stop or a pause reaches
// the player after the audio sent before it (the protocol's order). Null when the browser cannot
// decode Opus at this rate.
async function opusVoiceDecoder(rate, onPcm, onError) {
  const config = { codec: "opus", sampleRate: rate, numberOfChannels: 1 };
  if (!OPUS_RATES.includes(rate) || !(await supported("decoder", config))) return null;
  const dec = new AudioDecoder({
    output: (data) => {
      onPcm(toPcm16(data, rate));
      data.close();
    },
    error: onError,
  });
  dec.configure(config);
  let t = 0;
  let chain = Promise.resolve();
  const live = () => dec.state === "configured";
  return {
    decode(buf) {
      const chunk = new EncodedAudioChunk({ type: "key", timestamp: t, data: buf });
      t += 20000;
      chain = chain.then(() => live() && dec.decode(chunk));
    },
    after(fn) {
      chain = chain.then(() => (live() ? dec.flush() : null)).then(fn, fn);
    },
    close() {
      if (dec.state !== "closed") dec.close();
    },
  };
}

// An AudioData's first channel as PCM16 at `rate` (linear interpolation if it came at another).
function toPcm16(data, rate) {
  const n = data.numberOfFrames;
  const f = new Float32Array(n);
  data.copyTo(f, { planeIndex: 0, format: "f32-planar" });
  const m = data.sampleRate === rate ? n : Math.round((n * rate) / data.sampleRate);
  const out = new Int16Array(m);
  for (let i = 0; i < m; i++) {
    const x = m === n ? i : (i * (n - 1)) / Math.max(1, m - 1);
    const k = Math.floor(x);
    const s = k + 1 < n ? f[k] + (f[k + 1] - f[k]) * (x - k) : f[k];
    const c = Math.max(-1, Math.min(1, s));
    out[i] = c < 0 ? c * 0x8000 : c * 0x7fff;
  }
  return out.buffer;
}
