// Images in and out: decoding PNG/JPEG into model inputs and encoding tensors as PNG,
// with sharp (libvips) doing the codec work.
import { promises as fs } from 'fs';
import * as path from 'path';
import sharp from 'sharp';

import { callSite, CallSite, failure } from '../core/errors';
import { checkOptions, describeValue, instance, integer, integers, oneOf, optionKeys, positiveInteger } from '../core/validate';
import { Tensor, tensor } from '../model/tensor';

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

const IMAGE_KEYS = optionKeys<ImageOptions>({ size: true, fit: true, normalize: true });
const FITS = ['cover', 'fill', 'contain', 'inside'] as const;
const NORMALIZATIONS = ['imagenet', 'none', false] as const;
const PNG_KEYS = optionKeys<PngOptions>({ columns: true, gap: true });

/** Decodes a PNG or JPEG (path or bytes) into a float32 tensor [1, 3, H, W]. */
export async function image(source: string | Buffer | Uint8Array, given?: ImageOptions): Promise<Tensor> {
  const site = callSite(image);
  const options = checkOptions(given, IMAGE_KEYS, 'image', site);
  const normalize = oneOf(options.normalize ?? 'none', 'normalize', NORMALIZATIONS, site);
  const fit = oneOf(options.fit ?? 'cover', 'fit', FITS, site);
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
    throw failure('INVALID_ARGUMENT', 'image(source): source is a file path, a Buffer or a Uint8Array', site);
  }
  if (typeof source !== 'string' && source.length === 0) throw failure('INVALID_ARGUMENT', 'cannot decode image: the buffer is empty', site);
  let pipeline: ReturnType<typeof sharp>;
  try {
    pipeline = sharp(source).removeAlpha().toColourspace('srgb');
  } catch (error) {
    throw failure('INVALID_ARGUMENT', `cannot decode image: ${(error as Error).message}`, site);
  }
  if (options.size !== undefined) {
    const [height, width] = imageSize(options.size, site);
    pipeline = pipeline.resize(width, height, { fit, position: 'centre' });
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

export interface PngOptions {
  /** Tiles per row when the tensor holds a batch. Default: up to 8. */
  columns?: number;
  /** Pixels between tiles. Default 2. */
  gap?: number;
}

/**
 * PNG bytes for an image tensor in [0, 1]: [3, H, W], [H, W] (grey), or [B, 3, H, W], which
 * becomes a grid of B tiles. Values outside [0, 1] are clamped.
 */
export async function toPng(image: Tensor, options?: PngOptions): Promise<Buffer> {
  return png(image, options, 'toPng', callSite(toPng));
}

async function png(image: Tensor, given: PngOptions | undefined, what: string, site: CallSite): Promise<Buffer> {
  const options = checkOptions(given, PNG_KEYS, what, site);
  const shape = instance(image, 'image', Tensor, site).shape;
  const batched = shape.length === 4;
  const [count, channels, height, width] = batched ? shape : shape.length === 3 ? [1, ...shape] : [1, 1, ...shape];
  if (!(shape.length >= 2 && shape.length <= 4) || (channels !== 3 && channels !== 1)) {
    throw failure('SHAPE', `an image tensor is [3, H, W], [H, W] or [B, 3, H, W]; got [${shape}]`, site);
  }
  const columns = Math.min(count, positiveInteger(options.columns ?? 8, 'columns', site));
  const gap = count > 1 ? integer(options.gap ?? 2, 'gap', { min: 0 }, site) : 0;
  const rows = Math.ceil(count / columns);
  const gridWidth = columns * width + (columns - 1) * gap;
  const gridHeight = rows * height + (rows - 1) * gap;
  const values = image.dtype === 'float32' ? (image.data() as Float32Array) : Float32Array.from(image.data() as ArrayLike<number>);
  const plane = width * height;
  const bytes = Buffer.alloc(channels * gridWidth * gridHeight, 255);
  for (let b = 0; b < count; b++) {
    const left = (b % columns) * (width + gap);
    const top = Math.floor(b / columns) * (height + gap);
    for (let c = 0; c < channels; c++) {
      const offset = (b * channels + c) * plane;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const v = Math.min(1, Math.max(0, values[offset + y * width + x]));
          bytes[((top + y) * gridWidth + left + x) * channels + c] = Math.round(v * 255);
        }
      }
    }
  }
  return sharp(bytes, { raw: { width: gridWidth, height: gridHeight, channels: channels as 1 | 3 } })
    .png()
    .toBuffer();
}

/** Writes an image tensor (or a batch, as a grid) as a PNG file. */
export async function saveImage(image: Tensor, file: string, options?: PngOptions): Promise<void> {
  const bytes = await png(image, options, 'saveImage', callSite(saveImage));
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, bytes);
}

/** [height, width] of a `size` option: a number for a square, or [height, width]. */
export function imageSize(size: unknown, site: CallSite): [number, number] {
  if (typeof size === 'number') return [positiveInteger(size, 'size', site), size];
  const [height, width] = integers(size, 'size', { min: 1 }, site);
  if ((size as number[]).length !== 2) throw failure('INVALID_ARGUMENT', `size is a number or [height, width], got ${describeValue(size)}`, site);
  return [height, width];
}
