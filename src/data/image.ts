// One image file -> the model's input, with exactly the evaluation preprocessing of a
// transform (transforms.ts). For `imagerate predict` and anything else that classifies a
// user's own PNG/JPEG:
//
//   cifar-crop32  decode RGB; resize the shorter side to 32 and take the centre 32x32 (a
//                 no-op for 32x32 images); normalise. Shape [3, 32, 32].
//   cifar-crop24  the same to 32x32, then the centre 24x24 crop; normalise. Shape [3, 24, 24].
//   imagenet      decode RGB; resize the shorter side to round(S*256/224) (256 for 224);
//                 centre crop S; normalise. Shape [3, S, S].
//   mnist         decode as greyscale; resize the shorter side to H and take the centre
//                 H x W (28x28); normalise. Shape [1, 28, 28]. MNIST digits are white on a
//                 black background: a photo or drawing of a dark digit on white paper must be
//                 inverted first (opts.invert: true does it).
//
// The decode (and its resize) is done by sharp, exactly as the decode workers do it for an
// ImageFolder source, so an image gives the same floats here as in an evaluation epoch.
import { ImagerateDataError, type Normalisation } from './dataset.js';
import { decodeImage } from './decode.js';
import { renderImage, resolveTransform, type TransformName } from './transforms.js';

export interface LoadImageOptions {
  /** The model's input shape [C, H, W]. */
  shape: readonly [number, number, number] | number[];
  /** The normalisation the model was trained with (per channel). */
  normalisation: Normalisation;
  transform: TransformName;
  /** mnist: invert grey levels (255 - v) before normalising, for dark digits on a light background. */
  invert?: boolean;
}

/** Decode a PNG/JPEG and apply the evaluation preprocessing of `opts.transform`. Returns C*H*W floats, CHW. */
export async function loadImageForEval(file: string, opts: LoadImageOptions): Promise<Float32Array> {
  const [c, h, w] = opts.shape;
  const name = opts.transform;
  const bad = (m: string): never => {
    throw new ImagerateDataError(file, `cannot prepare for a ${c}x${h}x${w} input with transform ${name}: ${m}`);
  };
  if (opts.shape.length !== 3) bad(`shape must be [C, H, W], got [${opts.shape.join(', ')}]`);
  if (h !== w) bad('non-square inputs are not supported');
  const t = resolveTransform({
    name, train: false, normalisation: opts.normalisation,
    ...(name === 'imagenet' || name === 'mnist' ? { inputSize: h } : {}),
  });
  const [tc, th, tw] = t.shape;
  if (tc !== c || th !== h || tw !== w) bad(`the transform produces ${tc}x${th}x${tw}`);
  const img = await decodeImage(file, t.decode);
  if (opts.invert) for (let i = 0; i < img.data.length; i++) img.data[i] = 255 - img.data[i];
  const out = new Float32Array(t.size);
  renderImage(t, { ...img, layout: 'hwc' }, null, out, 0);
  return out;
}
