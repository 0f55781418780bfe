// Images in and out: decoding PNG/JPEG into model inputs and encoding tensors as PNG,
// with sharp (libvips) doing the codec work.
import sharp from 'sharp';

import { callSite, failure } from './errors';
import { Tensor, tensor } from './tensor';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface ImageOptions {
  /** Output size: a number for a square, or [height, width]. Default: the image's own size. */
  size?: number | [number, number];
  /** How the image meets `size` (sharp's fit): 'cover' (default) scales and centre-crops. */
  fit?: 'cover' | 'fill' | 'contain' | 'inside';
  /** 'imagenet': (x - mean) / std per channel, as torchvision models expect. Default: none, values in [0, 1]. */
  normalize?: 'imagenet' | 'none' | false;
}

/** Decodes a PNG or JPEG (path or bytes) into a float32 tensor [1, 3, H, W]. */
export async function image(source: string | Buffer | Uint8Array, options: ImageOptions = {}): Promise<Tensor> {
  const site = callSite(image);
  const normalize = options.normalize ?? 'none';
  if (normalize !== 'imagenet' && normalize !== 'none' && normalize !== false) {
    throw failure('INVALID_ARGUMENT', `normalize must be 'imagenet' or 'none', got ${JSON.stringify(normalize)}`, site);
  }
  let pipeline = sharp(source).removeAlpha().toColourspace('srgb');
  if (options.size !== undefined) {
    const [height, width] = typeof options.size === 'number' ? [options.size, options.size] : options.size;
    if (![height, width].every((n) => Number.isInteger(n) && n > 0)) {
      throw failure('INVALID_ARGUMENT', `size must be a positive integer or [height, width], got ${JSON.stringify(options.size)}`, site);
    }
    pipeline = pipeline.resize(width, height, { fit: options.fit ?? 'cover', position: 'centre' });
  }
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw failure('INVALID_ARGUMENT', `cannot decode image: ${(error as Error).message}`, site);
  }
  const { data, info } = decoded;
  const { width, height, channels } = info;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  // HWC bytes -> CHW floats.
  for (let c = 0; c < 3; c++) {
    const mean = normalize === 'imagenet' ? IMAGENET_MEAN[c] : 0;
    const std = normalize === 'imagenet' ? IMAGENET_STD[c] : 1;
    for (let i = 0; i < plane; i++) out[c * plane + i] = (data[i * channels + c] / 255 - mean) / std;
  }
  return tensor(out, [1, 3, height, width]);
}

/**
 * PNG bytes for an image tensor in [0, 1]: [3, H, W], [1, 3, H, W] or [H, W] (grey).
 * Values outside [0, 1] are clamped.
 */
export async function toPng(image: Tensor): Promise<Buffer> {
  const site = callSite(toPng);
  let shape = image.shape;
  if (shape.length === 4 && shape[0] === 1) shape = shape.slice(1);
  const grey = shape.length === 2;
  if (!grey && !(shape.length === 3 && (shape[0] === 3 || shape[0] === 1))) {
    throw failure('SHAPE', `toPng needs [3, H, W], [1, 3, H, W] or [H, W]; got [${image.shape}]`, site);
  }
  const [channels, height, width] = grey ? [1, shape[0], shape[1]] : shape;
  const values = image.dtype === 'float32' ? (image.data() as Float32Array) : Float32Array.from(image.data() as ArrayLike<number>);
  const plane = width * height;
  const bytes = Buffer.alloc(channels * plane);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) bytes[i * channels + c] = Math.round(Math.min(1, Math.max(0, values[c * plane + i])) * 255);
  }
  return sharp(bytes, { raw: { width, height, channels: channels as 1 | 3 } }).png().toBuffer();
}
