#!/usr/bin/env node
// `npx torchscope <command>`: the library's jobs from a shell.
//   doctor: what was found (addon, libtorch, GPUs, Python) and what to do about problems
//   build: builds the addon from source against the libtorch found (needs cmake and a compiler)
//   maximize --model FILE --layer NAME --channel N --out FILE.png [--steps N] [--size N] ...
//   attribute --model FILE --image FILE --target N --out FILE.png [--method NAME] ...
//   export FOLDER-OR-HUB-ID --out FILE.pt: a Hugging Face model traced, with its manifest and tokenizer
//   inspect FILE.pt [--seq N]: forward's inputs, the manifest's names, the module tree with shapes
import { spawnSync } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { SingleBar, Presets } from 'cli-progress';

import { TorchscopeError } from './core/errors';
import { packageRoot } from './native/addon';
import { doctor, formatDoctor } from './native/doctor';
import { load } from './model/model';
import { image, saveImage } from './io/image';
import { attributionOverlay, AttributionSign } from './plot/attribution';
import { attribute, AttributeOptions, AttributionMethod } from './methods/attribution';
import { maximize, MaximizeOptions } from './methods/maximize';
import { exportCommand, exportUsage } from './cli-export';
import { inspectCommand, inspectUsage } from './cli-inspect';

const usage = `usage: torchscope doctor
       torchscope build
       torchscope maximize --model FILE --layer NAME (--channel N | --logit K) --out FILE.png
                           [--steps 256] [--size 224] [--lr 0.05] [--seed 0]
                           [--parameterization fft|pixel] [--no-transforms] [--device cpu|cuda|auto]
       torchscope attribute --model FILE --image FILE --target N --out FILE.png
                           [--method integratedGradients|saliency|inputXGradient|layerGradCam|occlusion]
                           [--layer NAME (layerGradCam)] [--steps 50] [--size 224] [--normalize imagenet|none]
                           [--window 16 --stride 8 (occlusion)] [--sign absolute|all] [--device cpu|cuda|auto]
       ${exportUsage}
       ${inspectUsage}`;

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new TorchscopeError('INVALID_ARGUMENT', `--${name} must be an integer, got '${value}'`);
  return n;
}

async function maximizeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      layer: { type: 'string' },
      channel: { type: 'string' },
      logit: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string' },
      size: { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      parameterization: { type: 'string' },
      'no-transforms': { type: 'boolean' },
      device: { type: 'string' },
    },
  });
  if (!values.model || !values.out || (values.channel === undefined && values.logit === undefined)) {
    console.error(usage);
    return 2;
  }
  const model = await load(values.model, { device: (values.device ?? 'cpu') as 'cpu' });
  const controller = new AbortController();
  // Ctrl-C stops the optimisation and keeps the best image so far.
  const onInterrupt = () => controller.abort();
  process.once('SIGINT', onInterrupt);
  const steps = integer(values.steps, 'steps') ?? 256;
  const bar = new SingleBar(
    { format: 'maximizing {bar} {value}/{total} steps | objective {objective} | {duration_formatted}', hideCursor: true },
    Presets.shades_classic,
  );
  bar.start(steps, 0, { objective: '-' });
  const options: MaximizeOptions = {
    objective: values.logit !== undefined ? { logit: integer(values.logit, 'logit')! } : { channel: integer(values.channel, 'channel')! },
    steps,
    size: integer(values.size, 'size'),
    lr: values.lr === undefined ? undefined : Number(values.lr),
    seed: integer(values.seed, 'seed'),
    parameterization: values.parameterization as MaximizeOptions['parameterization'],
    transforms: values['no-transforms'] ? [] : undefined,
    signal: controller.signal,
    progressEvery: 1,
    onProgress: (p) => bar.update(p.step, { objective: p.objective.toFixed(4) }),
  };
  try {
    const result = await maximize(model, values.layer ?? null, options);
    bar.stop();
    await saveImage(result.image, values.out);
    const first = result.objective[0];
    const last = result.objective[result.objective.length - 1];
    const how = result.aborted ? `interrupted after ${result.steps} steps, best image kept` : `${result.steps} steps`;
    console.log(`wrote ${values.out} (${how}; objective ${first.toFixed(4)} -> ${last.toFixed(4)}, ${(result.elapsedMs / 1000).toFixed(1)} s)`);
    return 0;
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onInterrupt);
    model.dispose();
  }
}

async function attributeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      target: { type: 'string' },
      out: { type: 'string' },
      method: { type: 'string' },
      layer: { type: 'string' },
      steps: { type: 'string' },
      size: { type: 'string' },
      normalize: { type: 'string' },
      window: { type: 'string' },
      stride: { type: 'string' },
      sign: { type: 'string' },
      device: { type: 'string' },
    },
  });
  if (!values.model || !values.image || !values.out || values.target === undefined) {
    console.error(usage);
    return 2;
  }
  const method = (values.method ?? 'integratedGradients') as AttributionMethod;
  const size = integer(values.size, 'size') ?? 224;
  const normalize = (values.normalize ?? 'imagenet') as 'imagenet' | 'none';
  const [model, picture, input] = await Promise.all([
    load(values.model, { device: (values.device ?? 'cpu') as 'cpu' }),
    image(values.image, { size }),
    image(values.image, { size, normalize }),
  ]);
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  process.once('SIGINT', onInterrupt);
  const bar = new SingleBar({ format: `${method} {bar} {value}/{total} passes | {duration_formatted}`, hideCursor: true }, Presets.shades_classic);
  const window = integer(values.window, 'window') ?? 16;
  const options: AttributeOptions = {
    method,
    target: integer(values.target, 'target')!,
    ...(method === 'integratedGradients' ? { steps: integer(values.steps, 'steps') } : {}),
    ...(method === 'layerGradCam' ? { layer: values.layer, upsample: true, upsampleMode: 'bilinear' as const } : {}),
    ...(method === 'occlusion' ? { window: [3, window, window], strides: [3, integer(values.stride, 'stride') ?? window / 2], perturbationsPerEval: 8 } : {}),
    signal: controller.signal,
    onProgress: (p) => {
      if (p.step === 1) bar.start(p.steps, 0);
      bar.update(p.step);
    },
  };
  try {
    const result = await attribute(model, input, options);
    bar.stop();
    const sign = (values.sign ?? (method === 'saliency' ? 'absolute' : 'all')) as AttributionSign;
    await fs.writeFile(values.out, await attributionOverlay(picture, result.attributions, { sign }));
    console.log(`wrote ${values.out} (${method}, target ${options.target}, ${(result.elapsedMs / 1000).toFixed(1)} s)`);
    return 0;
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onInterrupt);
    model.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'maximize') return maximizeCommand(rest);
  if (command === 'attribute') return attributeCommand(rest);
  if (command === 'export') return exportCommand(rest);
  if (command === 'inspect') return inspectCommand(rest);
  if (command === 'build') {
    // The set-up script of `npm install`, forced to compile: the same libtorch search as at run time.
    const result = spawnSync(process.execPath, [path.join(packageRoot, 'scripts', 'setup.js'), '--rebuild'], { stdio: 'inherit', cwd: packageRoot });
    return result.status ?? 1;
  }
  if (command === 'doctor') {
    const report = doctor();
    console.log(formatDoctor(report));
    return report.problems.length ? 1 : 0;
  }
  console.error(usage);
  return command === undefined || command === '--help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof TorchscopeError ? `torchscope: ${error.code}: ${error.message}` : error);
    process.exit(1);
  },
);
