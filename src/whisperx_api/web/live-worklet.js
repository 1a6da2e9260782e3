// Live captions' audio tap: runs on the audio thread, turns the microphone's float samples into
// 16-bit PCM at the rate the live session expects (24 kHz), and posts ~100 ms pieces to the page.
// The page asks for a 24 kHz AudioContext, so this usually only converts; a browser that keeps
// its own rate gets linear resampling here. Served from this origin (the page's CSP allows no
// other), as a file: worklets cannot be inline.
"use strict";

class PcmTap extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.target = options.processorOptions.rate;
    this.step = sampleRate / this.target; // input samples per output sample
    this.position = 0; // where the next output sample falls, in input samples
    this.last = 0; // the previous block's last sample, for interpolation across blocks
    this.size = Math.round(this.target / 10);
    this.piece = new Int16Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    while (this.position < channel.length) {
      const index = Math.floor(this.position);
      const fraction = this.position - index;
      const before = index === 0 ? this.last : channel[index - 1];
      const sample = before + (channel[index] - before) * fraction;
      const clipped = Math.max(-1, Math.min(1, sample));
      this.piece[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.size) {
        this.port.postMessage(this.piece.buffer, [this.piece.buffer]); // detaches this.piece
        this.piece = new Int16Array(this.size);
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= channel.length;
    this.last = channel[channel.length - 1];
    return true;
  }
}

registerProcessor("pcm-tap", PcmTap);
