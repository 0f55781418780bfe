// Child process for test/fuzz.test.ts: node fuzz-load.js MUTANTS_JSON START
// Loads each mutant from START on (test/fixtures/mutants.py wrote the list), runs forward and
// a capture on the ones that load, and reports each on stdout, written synchronously so that
// the parent knows which one was running if this process dies:
//   start <i>
//   done <i> <loaded|load:CODE|run:CODE> <rss bytes>
'use strict';
const fs = require('fs');
const torch = require('../../dist/lib');

const [listFile, startArg] = process.argv.slice(2);
const mutants = JSON.parse(fs.readFileSync(listFile, 'utf8'));

// What each base model takes, and a layer of it to capture.
const bases = {
  'resnet-tiny.pt': { inputs: () => [torch.zeros([1, 3, 32, 32])], layer: 'layer1' },
  'resnet-tiny-scripted.pt': { inputs: () => [torch.zeros([1, 3, 32, 32])], layer: 'layer1' },
  'bert-tiny.pt': {
    inputs: () => [torch.tensor(new BigInt64Array(8).fill(5n), [1, 8]), torch.tensor(new BigInt64Array(8).fill(1n), [1, 8])],
    layer: 'encoder.layer.0',
  },
};

const say = (line) => fs.writeSync(1, `${line}\n`);

async function one(mutant) {
  let model;
  try {
    model = await torch.load(mutant.file);
  } catch (error) {
    return `load:${error.code ?? 'UNTYPED'}`;
  }
  try {
    const base = bases[mutant.base];
    await model.forward(...base.inputs());
    await torch.activations(model, base.layer, ...base.inputs());
    return 'loaded';
  } catch (error) {
    return `run:${error.code ?? 'UNTYPED'}`;
  } finally {
    model.dispose();
  }
}

(async () => {
  for (let i = Number(startArg); i < mutants.length; i++) {
    say(`start ${i}`);
    say(`done ${i} ${await one(mutants[i])} ${process.memoryUsage().rss}`);
  }
})();
