// The rows a collect writes, from what users iterate: texts (tokenized, concatenated and cut into
// context-size sequences the way SAELens's concat_and_batch_sequences does), token id arrays, or
// tensors (one example each, e.g. an image [C, H, W]).
import { CallSite, failure } from '../core/errors';
import { describeValue } from '../core/validate';
import { Tensor } from '../model/tensor';

/** What `collect` needs of a tokenizer (torch.Tokenizer fits). */
export interface CollectTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): { ids: ArrayLike<number> };
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

/** A special token: the tokenizer's BOS or EOS, or an id. */
export type SpecialToken = 'bos' | 'eos' | number;

/** How token streams become sequences of `contextSize` (SAELens's defaults). */
export interface SequenceOptions {
  contextSize: number;
  tokenizer?: CollectTokenizer;
  /** First token of every sequence (SAELens's prepend_bos: begin_batch_token). Default 'bos'; null for none. */
  beginBatch?: SpecialToken | null;
  /** Between two concatenated texts (SAELens's sequence_separator_token). Default 'bos'. */
  separator?: SpecialToken | null;
  /** First token of every text (SAELens's begin_sequence_token). Default null. */
  beginSequence?: SpecialToken | null;
}

export type CollectInput = string | ArrayLike<number> | BigInt64Array | Tensor;

/** One row: token ids (sequences) or an example tensor. */
export type Row = { ids: Int32Array; example?: undefined } | { ids?: undefined; example: Tensor };

function specialId(token: SpecialToken | null | undefined, tokenizer: CollectTokenizer | undefined, what: string, site: CallSite): number | null {
  if (token === null || token === undefined) return null;
  if (typeof token === 'number') {
    if (!Number.isInteger(token) || token < 0) throw failure('INVALID_ARGUMENT', `${what} must be a token id, 'bos', 'eos' or null; got ${token}`, site);
    return token;
  }
  const id = token === 'bos' ? tokenizer?.bosTokenId : token === 'eos' ? tokenizer?.eosTokenId : undefined;
  if (id === undefined) {
    throw failure(
      'INVALID_ARGUMENT',
      `${what} is '${String(token)}', but ${tokenizer ? 'the tokenizer has no such token' : 'no tokenizer is given'}: give a token id or null`,
      site,
    );
  }
  return id;
}

function idsOf(item: ArrayLike<number> | BigInt64Array, site: CallSite): number[] {
  const ids = Array.from(item as ArrayLike<number | bigint>, Number);
  if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id <= 0x7fffffff)) {
    throw failure('INVALID_ARGUMENT', 'token ids must be integers in [0, 2^31)', site);
  }
  return ids;
}

/** Cuts concatenated token streams into sequences of `size` (SAELens's concat_and_batch_sequences). */
class Chunker {
  private batch: number[] | null = null;

  constructor(
    private readonly size: number,
    private readonly beginBatch: number | null,
    private readonly separator: number | null,
    private readonly beginSequence: number | null,
  ) {}

  *push(tokens: readonly number[]): Generator<Int32Array> {
    let offset = 0;
    let startOfText = true;
    while (offset < tokens.length) {
      const prefix: number[] = [];
      let first = tokens[offset];
      const prepend = (token: number | null) => {
        if (token !== null && first !== token) {
          prefix.unshift(token);
          first = token;
        }
      };
      if (startOfText) prepend(this.beginSequence);
      if (this.batch === null) {
        prepend(this.beginBatch);
        const needed = Math.max(this.size - prefix.length, 0);
        this.batch = [...prefix.slice(0, this.size), ...tokens.slice(offset, offset + needed)];
        offset += needed;
      } else {
        prepend(this.separator);
        const room = Math.max(this.size - this.batch.length, 0);
        const needed = Math.max(room - prefix.length, 0);
        this.batch.push(...prefix.slice(0, room), ...tokens.slice(offset, offset + needed));
        offset += needed;
      }
      startOfText = false;
      if (this.batch.length === this.size) {
        yield Int32Array.from(this.batch);
        this.batch = null;
      }
    }
  }
}

/**
 * The rows of `inputs`. With `sequences`, texts and id arrays are concatenated and cut into
 * sequences of its contextSize (a trailing partial sequence is dropped, as SAELens does);
 * without, id arrays are rows as given (all one length) and tensors are examples.
 */
export async function* rowsOf(
  inputs: Iterable<CollectInput> | AsyncIterable<CollectInput>,
  sequences: SequenceOptions | undefined,
  site: CallSite,
): AsyncGenerator<Row> {
  const tokenizer = sequences?.tokenizer;
  const chunker =
    sequences &&
    new Chunker(
      sequences.contextSize,
      specialId(sequences.beginBatch === undefined ? 'bos' : sequences.beginBatch, tokenizer, 'beginBatch', site),
      specialId(sequences.separator === undefined ? 'bos' : sequences.separator, tokenizer, 'separator', site),
      specialId(sequences.beginSequence, tokenizer, 'beginSequence', site),
    );
  let rowLength: number | undefined;
  for await (const item of inputs as AsyncIterable<CollectInput>) {
    if (item instanceof Tensor) {
      if (chunker) throw failure('INVALID_ARGUMENT', 'with contextSize, inputs are texts or token id arrays, not tensors', site);
      yield { example: item };
    } else if (typeof item === 'string') {
      if (!chunker || !tokenizer) throw failure('INVALID_ARGUMENT', 'texts need a tokenizer and a contextSize', site);
      yield* [...chunker.push(idsOf(tokenizer.encode(item, { addSpecialTokens: false }).ids, site))].map((ids) => ({ ids }));
    } else if (ArrayBuffer.isView(item) || Array.isArray(item)) {
      const ids = idsOf(item as ArrayLike<number>, site);
      if (chunker) {
        yield* [...chunker.push(ids)].map((seq) => ({ ids: seq }));
        continue;
      }
      rowLength ??= ids.length;
      if (ids.length !== rowLength || ids.length === 0) {
        throw failure('INVALID_ARGUMENT', `token id rows must all have one length (${rowLength}); give contextSize to concatenate and cut them`, site);
      }
      yield { ids: Int32Array.from(ids) };
    } else {
      throw failure('INVALID_ARGUMENT', `an input is a text, an array of token ids or a Tensor; got ${describeValue(item)}`, site);
    }
  }
}
