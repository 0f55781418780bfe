// torch.tensor / zeros and the Tensor class: dtypes, shapes, copies in, zero-copy views out.
import * as torch from '../lib';
import { expectTorchscopeError, modelPath } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readConfig } = require('../scripts/config.js') as { readConfig(): { libtorch: { version: string } } };

describe('torch.tensor from typed arrays', () => {
  const kinds: [string, torch.TypedArray, torch.DType][] = [
    ['Float32Array', new Float32Array([1.5, -2.25, 3, 4]), 'float32'],
    ['Float64Array', new Float64Array([1.5, -2.25, 1e300, 4]), 'float64'],
    ['Int8Array', new Int8Array([-128, -1, 0, 127]), 'int8'],
    ['Uint8Array', new Uint8Array([0, 1, 200, 255]), 'uint8'],
    ['Int16Array', new Int16Array([-32768, -1, 2, 32767]), 'int16'],
    ['Int32Array', new Int32Array([-(2 ** 31), -1, 2, 2 ** 31 - 1]), 'int32'],
    ['BigInt64Array', new BigInt64Array([-(2n ** 63n), -1n, 2n ** 62n + 1n, 2n ** 63n - 1n]), 'int64'],
  ];
  test.each(kinds)('%s gives its dtype, the values exactly, and a view of the same kind', (_name, data, dtype) => {
    const t = torch.tensor(data, [2, 2]);
    expect(t.dtype).toBe(dtype);
    expect(t.shape).toEqual([2, 2]);
    expect(t.size).toBe(4);
    expect(t.device).toBe('cpu');
    const view = t.data();
    // By tag, not constructor: native views come from Node's main realm, jest runs tests in another.
    expect(Object.prototype.toString.call(view)).toBe(Object.prototype.toString.call(data));
    expect(Array.from(view as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
  });

  test('without a shape a typed array is 1-D', () => {
    expect(torch.tensor(new Int32Array(7)).shape).toEqual([7]);
  });

  test('int64 via BigInt64Array keeps values beyond 2^53 exactly', () => {
    const big = 2n ** 62n + 12345n;
    const t = torch.tensor(new BigInt64Array([big, -big]));
    expect((t.data() as BigInt64Array)[0]).toBe(big);
    expect((t.data() as BigInt64Array)[1]).toBe(-big);
    // toArray gives numbers for int64 (documented): the nearest double.
    expect(t.toArray()).toEqual([Number(big), -Number(big)]);
  });

  test('float16 and bfloat16 from raw Uint16Array words', () => {
    const half = torch.tensor(new Uint16Array([0x3c00, 0xc000]), [2], 'float16'); // 1.0, -2.0
    expect(half.dtype).toBe('float16');
    expect(Array.from(half.data() as Uint16Array)).toEqual([0x3c00, 0xc000]);
    const bf = torch.tensor(new Uint16Array([0x3f80]), [1], 'bfloat16'); // 1.0
    expect(bf.dtype).toBe('bfloat16');
    expect((bf.data() as Uint16Array)[0]).toBe(0x3f80);
  });

  test('bool from a Uint8Array', () => {
    const t = torch.tensor(new Uint8Array([1, 0, 1]), [3], 'bool');
    expect(t.dtype).toBe('bool');
    expect(t.toArray()).toEqual([true, false, true]);
  });

  test('an explicit dtype converts the values (floats truncate toward zero into integers)', () => {
    expect(torch.tensor(new Float32Array([1.7, -1.7, 2.5]), [3], 'int32').toArray()).toEqual([1, -1, 2]);
    expect(torch.tensor(new Float32Array([1.7, -1.7]), [2], 'int64').data()).toEqual(new BigInt64Array([1n, -1n]));
    expect(torch.tensor(new Int32Array([3, -4]), [2], 'float64').data()).toEqual(new Float64Array([3, -4]));
    expect(torch.tensor(new Float64Array([0.1]), [1], 'float32').data()[0]).toBe(Math.fround(0.1));
  });

  test('a subarray (non-zero byteOffset) copies the right elements', () => {
    const backing = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const t = torch.tensor(backing.subarray(2, 6), [2, 2]);
    expect(t.toArray()).toEqual([
      [2, 3],
      [4, 5],
    ]);
  });

  test('a view from data() goes back into torch.tensor without naming its dtype', () => {
    const source = torch.tensor(new Int32Array([5, -6, 7]), [3]);
    const copy = torch.tensor(source.data(), [3]);
    expect(copy.dtype).toBe('int32');
    expect(copy.toArray()).toEqual([5, -6, 7]);
    const floats = torch.tensor(torch.tensor(new Float64Array([0.5]), [1]).data());
    expect(floats.dtype).toBe('float64');
  });

  test('the data is copied in: changing the source later does not change the tensor', () => {
    const source = new Float32Array([1, 2, 3]);
    const t = torch.tensor(source);
    source[0] = 100;
    expect(t.toArray()).toEqual([1, 2, 3]);
  });
});

describe('torch.tensor from nested arrays', () => {
  test('shape is inferred, default dtype float32', () => {
    const t = torch.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });
  test('three levels, with a dtype', () => {
    const t = torch.tensor(
      [
        [[1], [2]],
        [[3], [4]],
      ],
      undefined,
      'int32',
    );
    expect(t.shape).toEqual([2, 2, 1]);
    expect(t.dtype).toBe('int32');
    expect(Array.from(t.data() as Int32Array)).toEqual([1, 2, 3, 4]);
  });
  test('int64 and bool', () => {
    expect(torch.tensor([[101, 2023]], undefined, 'int64').data()).toEqual(new BigInt64Array([101n, 2023n]));
    const b = torch.tensor([true, false], undefined, 'bool');
    expect(b.dtype).toBe('bool');
    expect(b.toArray()).toEqual([true, false]);
  });
  test('a flat array with an explicit shape is reshaped', () => {
    expect(torch.tensor([1, 2, 3, 4, 5, 6], [3, 2]).toArray()).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
  });
  test('a number is a 0-d tensor', () => {
    const t = torch.tensor(2.5);
    expect(t.shape).toEqual([]);
    expect(t.size).toBe(1);
    expect(t.item()).toBe(2.5);
    expect(t.toArray()).toBe(2.5);
  });
  test('empty tensors', () => {
    expect(torch.tensor(new Float32Array(0), [2, 0]).shape).toEqual([2, 0]);
    expect(torch.tensor(new Float32Array(0), [2, 0]).toArray()).toEqual([[], []]);
    expect(torch.tensor(new Float32Array(0)).data()).toHaveLength(0);
  });
  test('mismatched shapes and ragged arrays are errors', async () => {
    await expectTorchscopeError(() => torch.tensor([1, 2, 3], [2, 2]), 'SHAPE');
    await expectTorchscopeError(() => torch.tensor(new Float32Array(6), [4]), 'SHAPE');
    await expectTorchscopeError(
      () =>
        torch.tensor([
          [1, 2],
          [3, 4, 5],
        ]),
      'INVALID_ARGUMENT',
    );
    await expectTorchscopeError(() => torch.tensor([[1, 2], 3] as torch.NestedArray), 'INVALID_ARGUMENT');
  });
});

describe('zeros', () => {
  test.each(['float32', 'float64', 'int32', 'int64', 'uint8', 'bool'] as torch.DType[])('%s', (dtype) => {
    const t = torch.zeros([2, 3], dtype);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe(dtype);
    expect(Array.from(t.data() as ArrayLike<number | bigint>).every((v) => Number(v) === 0)).toBe(true);
  });
});

describe('views and values', () => {
  test('data() is zero-copy: two views share memory, the tensor sees writes through a view', async () => {
    const t = torch.tensor(new Float32Array([1, 2, 3, 4]), [4]);
    const a = t.data() as Float32Array;
    const b = t.data() as Float32Array;
    expect(Array.from(a)).toEqual([1, 2, 3, 4]);
    a[2] = 42;
    expect(b[2]).toBe(42);
    expect(t.toArray()).toEqual([1, 2, 42, 4]);
    // The native tensor itself changed: a model (or a copy) sees the write.
    expect((await t.to('cpu')).toArray()).toEqual([1, 2, 42, 4]);
  });

  test('toArray nests by shape; item() reads one element of any dtype', () => {
    const t = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [1, 2, 3]);
    expect(t.toArray()).toEqual([
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
    ]);
    expect(torch.tensor(new BigInt64Array([7n]), [1, 1]).item()).toBe(7);
    expect(torch.tensor(new Int8Array([-3])).item()).toBe(-3);
  });

  test('toString describes the tensor, and a disposed one', () => {
    const t = torch.zeros([2, 3]);
    expect(String(t)).toBe('Tensor(shape=[2,3], dtype=float32, device=cpu)');
    t.dispose();
    expect(String(t)).toBe('Tensor(disposed)');
  });

  test('model outputs are CPU float32 tensors with their shape and views like any other', async () => {
    const model = await torch.load(modelPath('resnet-tiny.pt'));
    try {
      const out = (await model.forward(torch.zeros([3, 3, 32, 32]))) as torch.Tensor;
      expect(out).toBeInstanceOf(torch.Tensor);
      expect(out.shape).toEqual([3, 10]);
      expect(out.dtype).toBe('float32');
      expect(out.device).toBe('cpu');
      const rows = out.toArray() as number[][];
      // The same input three times: the same row three times.
      expect(rows[1]).toEqual(rows[0]);
      expect(rows[2]).toEqual(rows[0]);
      expect(Array.from(out.data() as Float32Array).slice(0, 10)).toEqual(rows[0]);
    } finally {
      model.dispose();
    }
  });

  test('info() and cuda describe the linked libtorch', () => {
    const info = torch.info();
    // The libtorch set-up built against (2.13.0 by default, 2.14.1 in CI's CUDA build).
    expect(info.libtorchVersion).toBe(readConfig().libtorch.version);
    expect(typeof info.cudaBuild).toBe('boolean');
    expect(info.threads).toBeGreaterThan(0);
    expect(torch.cuda.isAvailable()).toBe(info.cudaAvailable);
    expect(torch.cuda.deviceCount()).toBe(info.gpuCount);
  });
});
