// The latent explorer page: decoder_int8.tflite on LiteRT.js (WebAssembly, CPU), drawn on a canvas.
//
// Reads the latent layout from the decoder's own metadata, builds a slider per continuous latent and
// a button per category of each discrete latent, and decodes again whenever one moves. Each redraw is
// timed from the input event to the first animation frame after the image is drawn; the times are
// shown in #timing and kept in window.latentExplorer.redrawMs. index.html?latent=v1,v2,... decodes that
// latent on load and writes its pixels into <pre id="decoded">, for scripts and tests.
import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {
  discreteStarts, initialLatent, median, parseLatent, priorSample, readDecoderMetadata, toRgba,
} from './explorer.js';

const MODEL_URL = 'decoder_int8.tflite';
const WASM_DIR = new URL('litert/wasm/', document.baseURI).href;
const SIGNATURE = 'decode';
const INPUT_NAME = 'latent';
const OUTPUT_NAME = 'images';
// Sliders span [-SLIDER_RANGE, SLIDER_RANGE]: 99.7% of the prior N(0, 1).
const SLIDER_RANGE = 3;
const SLIDER_STEP = 0.01;

const $ = (id) => document.getElementById(id);
const explorer = {redrawMs: [], decodeMs: [], ready: null};
window.latentExplorer = explorer;

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('status').textContent = 'Stopped.';
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));

class Explorer {
  constructor(model, layout, imageShape) {
    this.model = model;
    this.layout = layout;
    this.imageShape = imageShape;
    this.latent = initialLatent(layout);
    this.running = false;
    this.pendingSince = null;  // the oldest input event not drawn yet (performance.now() time base)
    const [height, width] = imageShape;
    this.canvas = $('image');
    this.canvas.width = width;
    this.canvas.height = height;
    this.context = this.canvas.getContext('2d');
    this.sliders = [];
    this.buttons = [];
  }

  /** Pixels Float32Array [H * W * C] in [0, 1] of the current latent. */
  async decode() {
    const input = new Tensor(Float32Array.from(this.latent), [1, this.layout.latentDim]);
    let outputs;
    try {
      outputs = await this.model.run(SIGNATURE, {[INPUT_NAME]: input});
    } finally {
      input.delete();
    }
    try {
      return outputs[OUTPUT_NAME].toTypedArray();
    } finally {
      for (const tensor of Object.values(outputs)) tensor.delete();
    }
  }

  async draw() {
    const start = performance.now();
    const pixels = await this.decode();
    const [height, width] = this.imageShape;
    this.context.putImageData(new ImageData(toRgba(pixels, this.imageShape), width, height), 0, 0);
    explorer.decodeMs.push(performance.now() - start);
    return pixels;
  }

  /** Redraws for an input event at `since`; events arriving meanwhile are folded into one more redraw. */
  async request(since) {
    this.pendingSince = this.pendingSince === null ? since : Math.min(this.pendingSince, since);
    if (this.running) return;
    this.running = true;
    try {
      while (this.pendingSince !== null) {
        const eventTime = this.pendingSince;
        this.pendingSince = null;
        await this.draw();
        const shown = await nextFrame();
        explorer.redrawMs.push(shown - eventTime);
        this.showTiming();
      }
    } catch (error) {
      showError(`decoding failed: ${error.message}`);
    } finally {
      this.running = false;
    }
  }

  showTiming() {
    const times = explorer.redrawMs;
    $('timing').textContent = `Redraw (input event to the frame showing it): last ${times.at(-1).toFixed(1)} ms, `
      + `median ${median(times).toFixed(1)} ms over ${times.length}; decode alone median `
      + `${median(explorer.decodeMs).toFixed(1)} ms.`;
  }

  /** Moves the controls to the current latent (sliders clamp to their range; the latent is kept exact). */
  syncControls() {
    this.sliders.forEach(({input, output}, i) => {
      input.value = String(this.latent[i]);
      output.value = this.latent[i].toFixed(2);
    });
    discreteStarts(this.layout).forEach((start, group) => {
      this.buttons[group].forEach((button, k) => button.setAttribute('aria-pressed', String(this.latent[start + k] === 1)));
    });
  }

  buildControls() {
    const continuous = $('continuous');
    for (let i = 0; i < this.layout.continuous; i++) {
      const row = document.createElement('div');
      row.className = 'latent';
      const label = document.createElement('label');
      const input = document.createElement('input');
      const output = document.createElement('output');
      input.type = 'range';
      input.id = `z${i}`;
      input.min = String(-SLIDER_RANGE);
      input.max = String(SLIDER_RANGE);
      input.step = String(SLIDER_STEP);
      label.htmlFor = input.id;
      label.textContent = `z${i + 1}`;
      input.addEventListener('input', (event) => {
        this.latent[i] = Number(input.value);
        output.value = this.latent[i].toFixed(2);
        this.request(event.timeStamp);
      });
      row.append(label, input, output);
      continuous.append(row);
      this.sliders.push({input, output});
    }
    const discrete = $('discrete');
    discreteStarts(this.layout).forEach((start, group) => {
      const fieldset = document.createElement('fieldset');
      const legend = document.createElement('legend');
      legend.textContent = `c${group + 1}`;
      fieldset.append(legend);
      const buttons = [];
      for (let k = 0; k < this.layout.discrete[group]; k++) {
        const button = document.createElement('button');
        button.type = 'button';
        button.id = `c${group}_${k}`;
        button.textContent = String(k);
        button.addEventListener('click', (event) => {
          this.latent.fill(0, start, start + this.layout.discrete[group]);
          this.latent[start + k] = 1;
          this.syncControls();
          this.request(event.timeStamp);
        });
        buttons.push(button);
        fieldset.append(button);
      }
      this.buttons.push(buttons);
      discrete.append(fieldset);
    });
    $('random').addEventListener('click', (event) => {
      this.latent = priorSample(this.layout);
      this.syncControls();
      this.request(event.timeStamp);
    });
    $('random').disabled = false;
    this.syncControls();
  }
}

async function main() {
  const requested = new URLSearchParams(location.search).get('latent');
  let bytes;
  try {
    const response = await fetch(MODEL_URL);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new Error(`cannot fetch ${MODEL_URL} (${error.message}): serve this folder over HTTP, `
                    + 'e.g. python -m http.server -d web');
  }
  const {layout, imageShape} = readDecoderMetadata(bytes);
  const latent = requested === null ? null : parseLatent(requested, layout);

  $('status').textContent = 'Loading LiteRT.js\u2026';
  await loadLiteRt(WASM_DIR);
  const model = await loadAndCompile(bytes, {accelerator: 'wasm'});
  const shape = Array.from(model.signatures[SIGNATURE].getInputDetails()[0].shape);
  if (shape.length !== 2 || shape[1] !== layout.latentDim) {
    throw new Error(`${MODEL_URL} takes latents of shape [${shape}], its metadata says width ${layout.latentDim}`);
  }

  const app = new Explorer(model, layout, imageShape);
  if (latent) app.latent = latent;
  app.buildControls();
  const pixels = await app.draw();
  if (latent) {
    $('decoded').dataset.shape = [1, ...imageShape].join(',');
    $('decoded').textContent = Array.prototype.join.call(pixels, ',');
  }
  const [height, width, channels] = imageShape;
  $('status').textContent = `Decoder: ${MODEL_URL}, latent ${layout.continuous} continuous + discrete `
    + `[${layout.discrete.join(', ')}], images ${height}x${width}x${channels}, LiteRT.js on WebAssembly.`;
  explorer.app = app;
}

explorer.ready = main().then(() => true, (error) => {
  showError(error.message);
  return false;
});
