// No option is silently ignored: every options object of the public API, at every depth, rejects
// a key it does not know with INVALID_ARGUMENT naming the key, the closest valid one and all of
// them, and takes each of its own keys. The key lists are written out here, apart from lib/, so a
// key added to or dropped from an options type shows up as a failure until this table says so.
//
// Each call rejects on its keys before it reads a value or runs anything, so a key is shown to be
// accepted by passing it with a valid value first and an unknown key after it: the error then names
// the unknown one.
import * as path from 'path';
import { distance } from 'fastest-levenshtein';

import * as torch from '../lib';
import { expectTorchscopeError, modelPath, ROOT, scratchDir, removeDir } from './helpers';

const UNKNOWN = 'zzUnknownOption';

interface OptionsCase {
  /** The options type, as lib/ names it, and the call that takes it. */
  name: string;
  keys: string[];
  call(options: Record<string, unknown>): unknown;
  /** A value to give a key (forward's options are told from its inputs by an AbortSignal). */
  value?: () => unknown;
}

let resnet: torch.Model;
let gpt2: torch.Model;
let bert: torch.Model;
let bertTokenizer: torch.BertTokenizer;
let gpt2Tokenizer: torch.Gpt2Tokenizer;
let llamaTokenizer: torch.Tokenizer;
let dir: string;

beforeAll(async () => {
  [resnet, gpt2, bert] = await Promise.all(['resnet-tiny.pt', 'gpt2-tiny.pt', 'bert-tiny.pt'].map((name) => torch.load(modelPath(name))));
  bertTokenizer = await torch.BertTokenizer.fromVocab(modelPath('bert-vocab.txt'));
  gpt2Tokenizer = await torch.Gpt2Tokenizer.load();
  llamaTokenizer = await torch.Tokenizer.fromPretrained(LLAMA_TOKENIZER);
  dir = scratchDir('options-');
});

afterAll(() => {
  for (const model of [resnet, gpt2, bert]) model?.dispose();
  removeDir(dir);
});

const image = () => torch.zeros([1, 3, 32, 32]);
const ids = () => torch.tensor(BigInt64Array.from([464n, 3797n, 3332n]), [1, 3]);
const featureLike = () => ({ tokens: ['a', 'b'], features: torch.zeros([2, 4]) });
const attentionLike = () => ({ tokens: [['a', 'b']], attentions: torch.zeros([1, 1, 1, 2, 2]) });
const numerics = ['precision', 'upcast'];
// torch.sae.train's options: SAELens's training configuration.
const SAE_TRAIN_KEYS = [
  'batches',
  'architecture',
  'dSae',
  'steps',
  'trainingTokens',
  'k',
  'auxLossCoefficient',
  'rescaleActsByDecoderNorm',
  'topkThresholdLr',
  'l1Coefficient',
  'lpNorm',
  'l1WarmupSteps',
  'l0Coefficient',
  'l0WarmupSteps',
  'bandwidth',
  'initThreshold',
  'sparsityLoss',
  'tanhScale',
  'preActLossCoefficient',
  'lr',
  'adamBeta1',
  'adamBeta2',
  'lrScheduler',
  'lrWarmupSteps',
  'lrDecaySteps',
  'lrEnd',
  'nRestartCycles',
  'deadFeatureWindow',
  'featureSamplingWindow',
  'normalizeActivations',
  'normEstimateBatches',
  'decoderInitNorm',
  'applyBDecToInput',
  'seed',
  'initialWeights',
  'device',
  'metadata',
  'out',
  'checkpoints',
  'signal',
  'onProgress',
  'progressEvery',
];

const TOKENIZER_KEYS = [
  'bosToken',
  'eosToken',
  'unkToken',
  'padToken',
  'sepToken',
  'clsToken',
  'maskToken',
  'chatTemplate',
  'paddingSide',
  'truncationSide',
  'modelMaxLength',
  'addBosToken',
  'addEosToken',
  'cleanUpTokenizationSpaces',
];
const LLAMA_TOKENIZER = modelPath(path.join('llm', 'llama.tokenizer'));
// maximize and maximizeIter take the same options.
const MAXIMIZE_KEYS = [
  'channel',
  'objective',
  'steps',
  'lr',
  'betas',
  'size',
  'inputShape',
  'init',
  'seed',
  'parameterization',
  'range',
  'decorrelate',
  'transforms',
  'regularizers',
  'normalize',
  'signal',
  'onProgress',
  'progressEvery',
  'precision',
];

const cases: OptionsCase[] = [
  {
    name: 'LoadOptions (load)',
    keys: ['device', 'optimize', 'precision', 'upcast', 'trusted', 'maxInflatedBytes', 'signal', 'decodeStep'],
    call: (o) => torch.load(modelPath('resnet-tiny.pt'), o),
  },
  {
    name: 'CallOptions (model.forward)',
    keys: ['signal'],
    call: (o) => resnet.forward(image(), o as torch.CallOptions),
    value: () => new AbortController().signal,
  },
  {
    name: 'CallOptions (model.call)',
    keys: ['signal'],
    call: (o) => resnet.call('layer1', image(), o as torch.CallOptions),
    value: () => new AbortController().signal,
  },
  {
    name: 'CaptureRequest (activations)',
    keys: ['layers', 'calls', 'allowNotRun', 'signal', 'saes', 'errorTerm', ...numerics],
    call: (o) => torch.activations(resnet, o as never, image()),
  },
  {
    name: 'RunOptions (run)',
    keys: ['capture', 'patch', 'calls', 'allowNotRun', 'signal', 'saes', 'errorTerm', ...numerics],
    call: (o) => torch.run(resnet, [image()], o),
  },
  {
    name: 'PatchSpec (run patch)',
    keys: ['set', 'zero', 'add', 'scale', 'project', 'channels', 'positions'],
    call: (o) => torch.run(resnet, [image()], { patch: { layer1: o } }),
  },
  {
    name: 'InspectOptions (inspect)',
    keys: ['capture', 'patch', 'gradient', 'output', ...numerics],
    call: (o) => torch.inspect(resnet, o),
  },
  {
    name: 'GradientsOptions (gradients)',
    keys: ['objective', 'target', 'wrt', 'patch', 'calls', 'signal', 'saes', 'errorTerm', ...numerics],
    call: (o) => torch.gradients(resnet, image(), o as never),
  },
  {
    name: 'PatchSpec (gradients patch)',
    keys: ['set', 'zero', 'add', 'scale', 'project', 'channels', 'positions'],
    call: (o) => torch.gradients(resnet, image(), { target: 0, wrt: 'input', patch: { layer1: o } }),
  },
  {
    name: 'Objective (gradients objective)',
    keys: ['channel', 'neuron', 'direction', 'logit', 'logitDiff', 'logProb', 'target', 'sum', 'position', 'layer'],
    call: (o) => torch.gradients(resnet, image(), { objective: o as never, wrt: 'input' }),
  },
  {
    name: 'neuron objective',
    keys: ['channel', 'y', 'x'],
    call: (o) => torch.gradients(resnet, image(), { objective: { layer: 'layer1', neuron: o as never }, wrt: 'input' }),
  },
  {
    name: 'sum objective term',
    keys: ['weight', 'objective'],
    call: (o) => torch.gradients(resnet, image(), { objective: { layer: 'layer1', sum: [o as never] }, wrt: 'input' }),
  },
  {
    name: 'Objective inside a sum (no layer of its own)',
    keys: ['channel', 'neuron', 'direction', 'logit', 'logitDiff', 'logProb', 'target', 'sum', 'position'],
    call: (o) => torch.gradients(resnet, image(), { objective: { layer: 'layer1', sum: [{ objective: o as never }] }, wrt: 'input' }),
  },
  {
    name: 'AttributeOptions (attribute)',
    keys: [
      'method',
      'target',
      'objective',
      'input',
      'baseline',
      'abs',
      'steps',
      'integration',
      'internalBatchSize',
      'convergenceDelta',
      'multiplyByInputs',
      'layer',
      'relu',
      'upsample',
      'upsampleMode',
      'window',
      'strides',
      'featureMask',
      'perturbationsPerEval',
      'noise',
      'signal',
      'onProgress',
      ...numerics,
    ],
    call: (o) => torch.attribute(resnet, image(), o as never),
  },
  {
    name: 'NoiseOptions (attribute noise)',
    keys: ['type', 'samples', 'stdev', 'seed', 'samplesBatchSize'],
    call: (o) => torch.attribute(resnet, image(), { method: 'saliency', target: 0, noise: o as never }),
  },
  {
    name: 'MaximizeOptions (maximize)',
    keys: MAXIMIZE_KEYS,
    call: (o) => torch.maximize(resnet, 'layer1', o),
  },
  {
    name: 'MaximizeOptions (maximizeIter)',
    keys: MAXIMIZE_KEYS,
    call: (o) => torch.maximizeIter(resnet, 'layer1', o).result,
  },
  {
    name: 'maximize regularizers',
    keys: ['l1', 'l2', 'tv', 'blur'],
    call: (o) => torch.maximize(resnet, 'layer1', { channel: 0, regularizers: o }),
  },
  {
    name: 'TransformSpec (maximize transforms)',
    keys: ['pad', 'jitter', 'scale', 'rotate'],
    call: (o) => torch.maximize(resnet, 'layer1', { channel: 0, transforms: [o as never] }),
  },
  {
    name: 'Objective (maximize objective)',
    keys: ['channel', 'neuron', 'direction', 'logit', 'logitDiff', 'logProb', 'target', 'sum', 'position', 'layer'],
    call: (o) => torch.maximize(resnet, 'layer1', { objective: o as never }),
  },
  {
    name: 'LogitLensOptions (logitLens)',
    keys: ['layers', 'head', 'topK', 'signal', 'saes', 'errorTerm', ...numerics],
    call: (o) => torch.logitLens(gpt2, ids(), o as never),
  },
  {
    name: 'PatchingSweepOptions (patchingSweep)',
    keys: [
      'clean',
      'corrupted',
      'layers',
      'positions',
      'heads',
      'metric',
      'normalize',
      'batchSize',
      'method',
      'signal',
      'onProgress',
      'precision',
      'saes',
      'errorTerm',
    ],
    call: (o) => torch.patchingSweep(gpt2, o as never),
  },
  {
    name: 'Metric (patchingSweep metric)',
    keys: ['channel', 'neuron', 'direction', 'logit', 'logitDiff', 'logProb', 'target', 'sum', 'position', 'layer'],
    call: (o) => torch.patchingSweep(gpt2, { clean: ids(), corrupted: ids(), layers: ['transformer.h.0'], metric: o as never }),
  },
  {
    name: 'AttentionOptions (attention)',
    keys: ['tokenizer', 'maxLength'],
    call: (o) => torch.attention(bert, 'The cat sat.', o as never),
  },
  {
    name: 'GenerateOptions (generate)',
    keys: ['maxNewTokens', 'temperature', 'topK', 'seed', 'stop', 'signal', 'patch', 'saes', 'errorTerm', 'cache'],
    call: (o) => torch.generate(gpt2, gpt2Tokenizer, 'Hello', o).result,
  },
  {
    name: 'ImageOptions (image)',
    keys: ['size', 'fit', 'normalize'],
    call: (o) => torch.image(path.join(ROOT, 'assets', 'chelsea.jpg'), o),
  },
  {
    name: 'PngOptions (toPng)',
    keys: ['columns', 'gap'],
    call: (o) => torch.toPng(torch.zeros([3, 4, 4]), o),
  },
  {
    name: 'PngOptions (saveImage)',
    keys: ['columns', 'gap'],
    call: (o) => torch.saveImage(torch.zeros([3, 4, 4]), path.join(dir, 'never-written.png'), o),
  },
  {
    name: 'BertTokenizerOptions (BertTokenizer.fromVocab)',
    keys: ['lowercase', 'maxLength'],
    call: (o) => torch.BertTokenizer.fromVocab(modelPath('bert-vocab.txt'), o),
  },
  {
    name: 'BertTokenizerOptions (BertTokenizer.fromTokens)',
    keys: ['lowercase', 'maxLength'],
    call: (o) => torch.BertTokenizer.fromTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a'], o),
  },
  {
    name: 'EncodeOptions (BertTokenizer encode)',
    keys: ['maxLength', 'truncation'],
    call: (o) => bertTokenizer.encode('a cat', o),
  },
  {
    name: 'BatchEncodeOptions (BertTokenizer encodeBatch)',
    keys: ['maxLength', 'truncation', 'padding'],
    call: (o) => bertTokenizer.encodeBatch(['a cat'], o),
  },
  {
    name: 'DecodeOptions (BertTokenizer decode)',
    keys: ['skipSpecialTokens', 'cleanUpTokenizationSpaces'],
    call: (o) => bertTokenizer.decode([101, 102], o),
  },
  {
    name: 'Gpt2EncodeOptions (Gpt2Tokenizer encode)',
    keys: ['maxLength', 'truncationSide', 'prependBos'],
    call: (o) => gpt2Tokenizer.encode('a cat', o),
  },
  {
    name: 'Gpt2BatchOptions (Gpt2Tokenizer encodeBatch)',
    keys: ['maxLength', 'truncationSide', 'prependBos', 'padding', 'paddingSide'],
    call: (o) => gpt2Tokenizer.encodeBatch(['a cat'], o),
  },
  {
    name: 'Gpt2DecodeOptions (Gpt2Tokenizer decode)',
    keys: ['skipSpecialTokens'],
    call: (o) => gpt2Tokenizer.decode([64], o),
  },
  {
    name: 'TokenizerOptions (Tokenizer.fromPretrained)',
    keys: TOKENIZER_KEYS,
    call: (o) => torch.Tokenizer.fromPretrained(LLAMA_TOKENIZER, o),
  },
  {
    name: 'TokenizerOptions (Tokenizer.fromFile)',
    keys: TOKENIZER_KEYS,
    call: (o) => torch.Tokenizer.fromFile(path.join(LLAMA_TOKENIZER, 'tokenizer.json'), o),
  },
  {
    name: 'TokenizerEncodeOptions (Tokenizer encode)',
    keys: ['addSpecialTokens', 'maxLength', 'truncation', 'truncationSide'],
    call: (o) => llamaTokenizer.encode('a cat', o),
  },
  {
    name: 'TokenizerBatchOptions (Tokenizer encodeBatch)',
    keys: ['addSpecialTokens', 'maxLength', 'truncation', 'truncationSide', 'padding', 'paddingSide'],
    call: (o) => llamaTokenizer.encodeBatch(['a cat'], o),
  },
  {
    name: 'TokenizerDecodeOptions (Tokenizer decode)',
    keys: ['skipSpecialTokens', 'cleanUpTokenizationSpaces'],
    call: (o) => llamaTokenizer.decode([5, 6], o),
  },
  {
    name: 'ChatTemplateOptions (Tokenizer applyChatTemplate)',
    keys: ['addGenerationPrompt', 'tokenize', 'tools', 'documents', 'templateName', 'variables'],
    call: (o) => llamaTokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], o as never),
  },
  {
    name: 'SaeOptions (sae.load)',
    keys: ['hookPoint', 'hookPointOut', 'model', 'device', 'dtype'],
    call: (o) => torch.sae.load(path.join(dir, 'no-sae-here'), o),
  },
  {
    name: 'SaeTrainOptions (sae.train)',
    keys: SAE_TRAIN_KEYS,
    call: (o) => torch.sae.train(o as never),
  },
  {
    name: 'SaeTrainOptions (sae.trainIter)',
    keys: SAE_TRAIN_KEYS,
    call: (o) => torch.sae.trainIter(o as never).result,
  },
  {
    name: 'SaeInitialWeights (sae.train initialWeights)',
    keys: ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'],
    call: (o) => torch.sae.train({ batches: [], architecture: 'jumprelu', dSae: 8, steps: 1, initialWeights: o as never }),
  },
  {
    name: 'sae.train checkpoints',
    keys: ['every', 'dir'],
    call: (o) => torch.sae.train({ batches: [], architecture: 'standard', dSae: 8, steps: 1, checkpoints: o as never }),
  },
  {
    name: 'ProbeOptions (probe.fit)',
    keys: ['x', 'labels', 'kind', 'multiclass', 'l2', 'fitIntercept', 'maxIterations', 'tolerance', 'iid', 'validation', 'control', 'signal'],
    call: (o) => torch.probe.fit(o as never),
  },
  {
    name: 'validation (probe.fit): HeldOutFraction and HeldOutData',
    keys: ['fraction', 'seed', 'x', 'labels', 'types'],
    call: (o) => torch.probe.fit({ x: torch.zeros([2, 2]), labels: [0, 1], validation: o as never }),
  },
  {
    name: 'ControlTask (probe.fit control)',
    keys: ['types', 'seed'],
    call: (o) => torch.probe.fit({ x: torch.zeros([2, 2]), labels: [0, 1], control: o }),
  },
  {
    name: 'HeatmapOptions (plot.attentionHeatmap)',
    keys: ['layer', 'head', 'batch', 'size', 'colormap', 'vmax', 'title'],
    call: (o) => torch.plot.attentionHeatmap(attentionLike(), o as never),
  },
  {
    name: 'GridOptions (plot.attentionGrid)',
    keys: ['layer', 'batch', 'size', 'columns', 'colormap', 'vmax', 'title'],
    call: (o) => torch.plot.attentionGrid(attentionLike(), o as never),
  },
  {
    name: 'HtmlOptions (plot.attentionHtml)',
    keys: ['batch', 'title', 'compress', 'threshold'],
    call: (o) => torch.plot.attentionHtml(attentionLike(), o),
  },
  {
    name: 'HtmlOptions (plot.saveAttentionHtml)',
    keys: ['batch', 'title', 'compress', 'threshold'],
    call: (o) => torch.plot.saveAttentionHtml(attentionLike(), path.join(dir, 'never-written.html'), o),
  },
  {
    name: 'MatrixHeatmapOptions (plot.matrixHeatmap)',
    keys: ['title', 'rowLabels', 'columnLabels', 'colormap', 'vmin', 'vmax', 'cell', 'annotate'],
    call: (o) => torch.plot.matrixHeatmap(torch.zeros([2, 2]), o),
  },
  {
    name: 'OverlayOptions (plot.attributionOverlay)',
    keys: ['sign', 'outlierPercent', 'alpha', 'batch', 'size'],
    call: (o) => torch.plot.attributionOverlay(torch.zeros([1, 3, 4, 4]), torch.zeros([1, 3, 4, 4]), o),
  },
  {
    name: 'TokenOptions (plot.tokenAttributionHtml)',
    keys: ['normalize', 'title'],
    call: (o) => torch.plot.tokenAttributionHtml(['a'], [1], o),
  },
  {
    name: 'TokenPngOptions (plot.tokenAttributionPng)',
    keys: ['normalize', 'title', 'width'],
    call: (o) => torch.plot.tokenAttributionPng(['a'], [1], o),
  },
  {
    name: 'FeatureHtmlOptions (plot.featureHtml)',
    keys: ['topK', 'features', 'title'],
    call: (o) => torch.plot.featureHtml(featureLike(), o),
  },
  {
    name: 'FeatureHtmlOptions (plot.saveFeatureHtml)',
    keys: ['topK', 'features', 'title'],
    call: (o) => torch.plot.saveFeatureHtml(featureLike(), path.join(dir, 'never-written.html'), o),
  },
  {
    name: 'FeatureHeatmapOptions (plot.featureHeatmap)',
    keys: ['features', 'top', 'colormap', 'vmax', 'cell', 'annotate', 'title'],
    call: (o) => torch.plot.featureHeatmap(featureLike(), o),
  },
  {
    name: 'DashboardOptions (dashboard.features)',
    keys: ['sae', 'features', 'neurons', 'k', 'buffer', 'intervals', 'intervalSize', 'histogramBins', 'seed', 'logits', 'signal', 'onProgress'],
    call: (o) => torch.dashboard.features({ contextSize: 2, async *batches() {} }, o as never),
  },
  {
    name: 'ModelSourceOptions (dashboard.modelSource)',
    keys: ['batchSize', 'contextSize'],
    call: (o) => torch.dashboard.modelSource(gpt2, 'transformer.h.0', [[1, 2]], o),
  },
  {
    name: 'NeuronpediaOptions (dashboard.toNeuronpedia)',
    keys: ['tokenizer', 'modelId', 'layer', 'saeSet', 'dataset'],
    call: (o) => torch.dashboard.toNeuronpedia([], o as never),
  },
  {
    name: 'FeatureDashboardOptions (plot.featureDashboard)',
    keys: ['tokenizer', 'title', 'label', 'context'],
    call: (o) => torch.plot.featureDashboard([], o as never),
  },
  {
    name: 'FeatureDashboardOptions (plot.saveFeatureDashboard)',
    keys: ['tokenizer', 'title', 'label', 'context'],
    call: (o) => torch.plot.saveFeatureDashboard([], path.join(dir, 'never-written.html'), o as never),
  },
];

/** A misspelling one edit from `key` whose only closest key is `key`. */
function misspell(key: string, keys: string[]): string {
  const candidates = [key + key[key.length - 1], key[0] + key, key.slice(0, -1) + 'q' + key[key.length - 1]];
  const typo = candidates.find((t) => !keys.includes(t) && keys.every((k) => k === key || distance(t, k) > distance(t, key)));
  if (typo === undefined) throw new Error(`no misspelling of '${key}' is closest to it alone among ${keys.join(', ')}`);
  return typo;
}

/** The keys an unknown-option message lists after "expected one of: ". */
function listedKeys(message: string): string[] {
  const match = /expected one of: (.*)$/.exec(message);
  return match ? match[1].split(', ') : [];
}

describe.each(cases)('$name', ({ keys, call, value = () => 1 }) => {
  test.each(keys)('a misspelt %s rejects INVALID_ARGUMENT naming it and suggesting it', async (key) => {
    const typo = misspell(key, keys);
    const error = await expectTorchscopeError(
      () => call({ [typo]: value() }),
      'INVALID_ARGUMENT',
      new RegExp(`unknown option '${typo}' \\(did you mean '${key}'\\?\\); expected one of: `),
    );
    expect(error.suggestions).toEqual([key]);
    expect(listedKeys(error.message).sort()).toEqual([...keys].sort());
  });

  test.each(keys)('%s is accepted', async (key) => {
    const error = await expectTorchscopeError(
      () => call({ [key]: value(), [UNKNOWN]: value() }),
      'INVALID_ARGUMENT',
      new RegExp(`unknown option '${UNKNOWN}'`),
    );
    expect(error.message).not.toContain(`unknown option '${key}'`);
  });

  test('a key whose value is undefined is not given', async () => {
    const error = await expectTorchscopeError(() => call({ [UNKNOWN + 'Undefined']: undefined, [UNKNOWN]: value() }), 'INVALID_ARGUMENT');
    expect(error.message).toContain(`unknown option '${UNKNOWN}'`);
  });
});

// Each attribution method takes the common options and its own: another method's option is
// named as such, with the list of what this method takes.
const COMMON = ['target', 'objective', 'input', 'signal', 'onProgress', 'precision', 'upcast'];
const METHOD_OPTIONS: Record<torch.AttributionMethod, string[]> = {
  saliency: ['abs', 'noise'],
  inputXGradient: ['noise'],
  integratedGradients: ['baseline', 'steps', 'integration', 'internalBatchSize', 'convergenceDelta', 'multiplyByInputs', 'noise'],
  layerIntegratedGradients: ['layer', 'baseline', 'steps', 'integration', 'internalBatchSize', 'convergenceDelta', 'multiplyByInputs', 'noise'],
  layerGradCam: ['layer', 'relu', 'upsample', 'upsampleMode', 'noise'],
  occlusion: ['window', 'strides', 'baseline', 'perturbationsPerEval'],
  featureAblation: ['featureMask', 'baseline', 'perturbationsPerEval'],
};

test.each(Object.entries(METHOD_OPTIONS))("attribute's %s takes its own options and no other method's", async (method, own) => {
  const other = method === 'featureAblation' ? 'window' : 'featureMask';
  const error = await expectTorchscopeError(
    () => torch.attribute(resnet, image(), { method: method as torch.AttributionMethod, target: 0, [other]: 1 } as never),
    'INVALID_ARGUMENT',
    new RegExp(`${method} takes no option '${other}' \\(it takes `),
  );
  const listed = /\(it takes (.*)\)$/.exec(error.message)![1].split(', ');
  expect(listed.sort()).toEqual([...COMMON, ...own].sort());
});
