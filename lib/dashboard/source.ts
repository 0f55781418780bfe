// Where a dashboard's activations come from: any re-iterable source of batches (the activation
// store implements it), or a model run over a dataset of token sequences, batch by batch.
import { callSite, CallSite, failure } from '../core/errors';
import { checkOptions, integer, optionKeys, positiveInteger, string } from '../core/validate';
import { activations } from '../methods/activations';
import { Model } from '../model/model';
import { Tensor, tensor } from '../model/tensor';

/** One batch of a source: `rows` sequences of `contextSize` tokens. */
export interface ActivationBatch {
  /** int32 or int64 [rows, contextSize]: the token ids, shown in the dashboards. */
  tokens?: Tensor;
  /** float [rows, contextSize, d] (what an SAE encodes, or the channels themselves). */
  activations: Tensor;
}

/**
 * Activations over a dataset, in dataset order. Read twice (two passes), so `batches()` must give
 * the same batches each time it is called. A consumer is done with a batch when it asks for the
 * next one: the source may free its tensors then.
 */
export interface ActivationSource {
  contextSize: number;
  batches(): AsyncIterable<ActivationBatch>;
}

export interface ModelSourceOptions {
  /** Sequences per forward. Default 32. */
  batchSize?: number;
  /** Tokens per sequence; needed for an async iterable of sequences (arrays give their first sequence's length). */
  contextSize?: number;
}

const MODEL_SOURCE_KEYS = optionKeys<ModelSourceOptions>({ batchSize: true, contextSize: true });

/** Token ids as sequences: arrays, or an async iterable read again for each pass (not a generator, which is read once). */
export type TokenSequences = number[][] | Iterable<number[]> | AsyncIterable<number[]>;

function sequence(value: unknown, contextSize: number, at: number, site: CallSite): number[] {
  if (!Array.isArray(value) || value.length !== contextSize)
    throw failure(
      'SHAPE',
      `sequence ${at} must be an array of ${contextSize} token ids, got ${Array.isArray(value) ? `${value.length} ids` : typeof value}`,
      site,
    );
  for (const id of value)
    if (!Number.isSafeInteger(id) || id < 0) throw failure('INVALID_ARGUMENT', `sequence ${at} holds ${String(id)}, not a token id`, site);
  return value;
}

/**
 * Activations straight from a model: `layer` captured (torch.activations) on the sequences,
 * `batchSize` at a time, with their tokens. Every sequence has contextSize tokens.
 */
export function modelSource(model: Model, layer: string, sequences: TokenSequences, given?: ModelSourceOptions): ActivationSource {
  const site = callSite(modelSource);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'modelSource: model must come from torch.load()', site);
  string(layer, 'layer', site);
  const options = checkOptions(given, MODEL_SOURCE_KEYS, 'modelSource', site);
  const batchSize = positiveInteger(options.batchSize ?? 32, 'batchSize', site);
  const iterable = sequences as Partial<Iterable<number[]> & AsyncIterable<number[]>>;
  if (!Array.isArray(sequences) && typeof iterable?.[Symbol.iterator] !== 'function' && typeof iterable?.[Symbol.asyncIterator] !== 'function')
    throw failure('INVALID_ARGUMENT', 'sequences must be arrays of token ids, or an iterable of them', site);
  const first = Array.isArray(sequences) ? sequences[0] : undefined;
  if (options.contextSize === undefined && !Array.isArray(first))
    throw failure('INVALID_ARGUMENT', 'modelSource: give contextSize (tokens per sequence) with sequences that are not an array of arrays', site);
  const contextSize = integer(options.contextSize ?? (first as number[]).length, 'contextSize', { min: 1 }, site);
  if (Array.isArray(sequences)) sequences.forEach((s, i) => sequence(s, contextSize, i, site));

  async function* forward(rows: number[][]): AsyncGenerator<ActivationBatch> {
    const ids = tensor(BigInt64Array.from(rows.flat(), BigInt), [rows.length, contextSize], 'int64');
    let value: unknown;
    try {
      value = await activations(model, layer, ids);
      if (!(value instanceof Tensor)) throw failure('INVALID_ARGUMENT', `layer '${layer}' gives no tensor: name a hook point whose value is one`, site);
      yield { tokens: ids, activations: value };
    } finally {
      ids.dispose();
      if (value instanceof Tensor) value.dispose();
    }
  }

  return {
    contextSize,
    async *batches() {
      let rows: number[][] = [];
      let at = 0;
      for await (const item of sequences as AsyncIterable<number[]>) {
        rows.push(sequence(item, contextSize, at++, site));
        if (rows.length < batchSize) continue;
        yield* forward(rows);
        rows = [];
      }
      if (rows.length) yield* forward(rows);
    },
  };
}
