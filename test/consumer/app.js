// The consumer's program in test/consumer.test.ts: a project that installed the packed
// tarball loads a model and captures activations, as a user would. Prints one JSON line.
'use strict';
const torch = require('torchscope');

async function main() {
  const [modelFile, layer] = process.argv.slice(2);
  const input = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.01);
  try {
    const model = await torch.load(modelFile);
    const act = await torch.activations(model, layer, torch.tensor(input, [1, 3, 224, 224]));
    const values = act.data();
    const report = torch.doctor();
    console.log(
      JSON.stringify({
        ok: true,
        shape: act.shape,
        values: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64'),
        addon: report.addon,
        addonKind: report.addonKind,
        libtorch: report.libtorch,
      }),
    );
  } catch (error) {
    console.log(JSON.stringify({ ok: false, code: error.code, message: error.message }));
  }
}

main();
