// The latent explorer's logic without the DOM or LiteRT.js: the decoder's metadata, latents, pixels.
// Plain ES module with no imports, so Node runs it too (tests/export/test_web.py checks it there).

export const METADATA_NAME = 'jointvae_decoder';
const TFLITE_IDENTIFIER = 'TFL3';
// Field indices in the TFLite schema (tflite/schema.fbs): Model.buffers, Model.metadata,
// Metadata.name, Metadata.buffer, Buffer.data, Buffer.offset, Buffer.size.
const MODEL_BUFFERS = 4;
const MODEL_METADATA = 6;
const METADATA_NAME_FIELD = 0;
const METADATA_BUFFER_FIELD = 1;
const BUFFER_DATA = 0;
const BUFFER_OFFSET = 1;
const BUFFER_SIZE = 2;

/**
 * The JSON jointvae-export stores in a decoder .tflite under the metadata name METADATA_NAME.
 *
 * A minimal FlatBuffers reader for the three tables it needs (Model, Metadata, Buffer).
 * @param {Uint8Array} bytes the whole .tflite file
 * @return {{layout: {continuous: number, discrete: number[], latentDim: number},
 *           imageShape: number[], metadata: object}}
 * @throws {Error} one line: not a TFLite file, no such metadata, or metadata that is not a decoder's
 */
export function readDecoderMetadata(bytes) {
  if (bytes.length < 8 || String.fromCharCode(...bytes.subarray(4, 8)) !== TFLITE_IDENTIFIER) {
    throw new Error(`not a TFLite model: it lacks the '${TFLITE_IDENTIFIER}' file identifier`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (pos) => view.getUint32(pos, true);
  const table = (pos) => pos + u32(pos);  // an offset to a table, from where it is stored
  const field = (tablePos, index) => {    // a field's position in a table, or 0 when absent
    const vtable = tablePos - view.getInt32(tablePos, true);
    const slot = 4 + 2 * index;
    if (slot >= view.getUint16(vtable, true)) return 0;
    const offset = view.getUint16(vtable + slot, true);
    return offset ? tablePos + offset : 0;
  };
  const vector = (fieldPos) => {
    if (!fieldPos) return {start: 0, length: 0};
    const start = fieldPos + u32(fieldPos);
    return {start: start + 4, length: u32(start)};
  };
  const text = (fieldPos) => {
    const {start, length} = vector(fieldPos);
    return new TextDecoder().decode(bytes.subarray(start, start + length));
  };

  const model = table(0);
  const entries = vector(field(model, MODEL_METADATA));
  const buffers = vector(field(model, MODEL_BUFFERS));
  for (let i = 0; i < entries.length; i++) {
    const entry = table(entries.start + 4 * i);
    if (text(field(entry, METADATA_NAME_FIELD)) !== METADATA_NAME) continue;
    const bufferField = field(entry, METADATA_BUFFER_FIELD);
    const index = bufferField ? u32(bufferField) : 0;
    if (index >= buffers.length) throw new Error(`the '${METADATA_NAME}' metadata names a missing buffer ${index}`);
    const buffer = table(buffers.start + 4 * index);
    let data = vector(field(buffer, BUFFER_DATA));
    if (!data.length && field(buffer, BUFFER_OFFSET)) {  // large models keep buffers after the flatbuffer
      data = {start: Number(view.getBigUint64(field(buffer, BUFFER_OFFSET), true)),
              length: Number(view.getBigUint64(field(buffer, BUFFER_SIZE), true))};
    }
    let metadata;
    try {
      metadata = JSON.parse(new TextDecoder().decode(bytes.subarray(data.start, data.start + data.length)));
    } catch {
      throw new Error(`the '${METADATA_NAME}' metadata is not JSON`);
    }
    return {...decoderLayout(metadata), metadata};
  }
  throw new Error(`no '${METADATA_NAME}' metadata: it is not a decoder written by jointvae-export`);
}

/** The latent layout and image shape of a decoder's metadata; Error if malformed. */
export function decoderLayout(metadata) {
  const spec = metadata && metadata.latent_spec;
  const isCount = (n) => Number.isInteger(n) && n >= 0;
  if (!spec || !isCount(spec.cont) || !Array.isArray(spec.disc) || !spec.disc.every((k) => isCount(k) && k >= 1)
      || !Array.isArray(metadata.image_shape) || metadata.image_shape.length !== 3
      || !metadata.image_shape.every((d) => isCount(d) && d >= 1)) {
    throw new Error(`malformed '${METADATA_NAME}' metadata: ${JSON.stringify(metadata)}`);
  }
  const discrete = spec.disc.slice();
  return {
    layout: {continuous: spec.cont, discrete, latentDim: spec.cont + discrete.reduce((a, b) => a + b, 0)},
    imageShape: metadata.image_shape.slice(),
  };
}

/** Where each discrete latent's one-hot group starts in the latent vector. */
export function discreteStarts(layout) {
  const starts = [];
  let start = layout.continuous;
  for (const k of layout.discrete) {
    starts.push(start);
    start += k;
  }
  return starts;
}

/**
 * A latent Float32Array [latentDim] from "z_1,...,z_n,c..." text: latentDim finite numbers, each
 * discrete group one-hot (the rules of export/decode_tflite.py's check_latent).
 * @throws {Error} one line naming the bad value and the layout allowed
 */
export function parseLatent(textValue, layout) {
  const what = `latent ${JSON.stringify(textValue)}`;
  const tokens = textValue.split(',');
  const values = tokens.map((token) => {
    const value = token.trim() === '' ? NaN : Number(token);
    if (Number.isNaN(value)) throw new Error(`${what}: ${JSON.stringify(token.trim())} is not a number`);
    return value;
  });
  const allowed = `${layout.continuous} continuous values then one-hot groups of [${layout.discrete.join(', ')}]`;
  if (values.length !== layout.latentDim) {
    throw new Error(`${what} has ${values.length} values; this decoder takes ${layout.latentDim}: ${allowed}`);
  }
  if (!values.every(Number.isFinite)) throw new Error(`${what} holds non-finite values`);
  discreteStarts(layout).forEach((start, i) => {
    const group = values.slice(start, start + layout.discrete[i]);
    const ones = group.filter((v) => v === 1).length;
    if (ones !== 1 || !group.every((v) => v === 0 || v === 1)) {
      throw new Error(`${what}: discrete latent ${i} (values ${start + 1} to ${start + group.length}) must be `
                      + `one-hot, a single 1 and ${group.length - 1} zeros, got [${group.map(pythonFloat).join(', ')}]`);
    }
  });
  return Float32Array.from(values);
}

/** A number as Python prints a float (1 -> "1.0"), so both tools word their errors alike. */
function pythonFloat(value) {
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

/** A latent from the prior: z ~ N(0, I) (Box-Muller), each discrete latent a uniform one-hot. */
export function priorSample(layout, random = Math.random) {
  const latent = new Float32Array(layout.latentDim);
  for (let i = 0; i < layout.continuous; i++) {
    const u = 1 - random();  // in (0, 1]: log(u) is finite
    latent[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  discreteStarts(layout).forEach((start, i) => {
    latent[start + Math.min(layout.discrete[i] - 1, Math.floor(random() * layout.discrete[i]))] = 1;
  });
  return latent;
}

/** The latent every page starts from: z = 0, the first category of each discrete latent. */
export function initialLatent(layout) {
  const latent = new Float32Array(layout.latentDim);
  for (const start of discreteStarts(layout)) latent[start] = 1;
  return latent;
}

/**
 * RGBA bytes [H * W * 4] for ImageData from decoded pixels [H * W * C] in [0, 1] (row-major):
 * round(255 p), clipped; one channel is shown as grey, three as RGB, alpha opaque.
 */
export function toRgba(pixels, imageShape) {
  const [height, width, channels] = imageShape;
  const rgba = new Uint8ClampedArray(height * width * 4);  // clamps and rounds half to even
  for (let i = 0, j = 0; i < height * width; i++, j += channels) {
    const r = pixels[j] * 255;
    rgba[4 * i] = r;
    rgba[4 * i + 1] = channels >= 3 ? pixels[j + 1] * 255 : r;
    rgba[4 * i + 2] = channels >= 3 ? pixels[j + 2] * 255 : r;
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

/** The median of a non-empty array of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
