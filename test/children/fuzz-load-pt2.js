// Child process for test/pt2-files.test.ts: node fuzz-load-pt2.js FILES_JSON START REFERENCE_JSON
// Loads each archive of FILES_JSON ([{ file }], test/fixtures/hostile_pt2.py's mutants and
// hostile archives) from START on, runs forward and a capture of linear1 on the ones that load
// (on the input of REFERENCE_JSON), and reports each on stdout, written synchronously so that the
// parent knows which one was running if this process dies:
//   start <i>
//   done <i> <loaded|load:CODE|run:CODE>
'use strict';
const fs = require('fs');
const torch = require('../../dist/lib');

const [listFile, startArg, referenceFile] = process.argv.slice(2);
const files = JSON.parse(fs.readFileSync(listFile, 'utf8'));
const reference = JSON.parse(fs.readFileSync(referenceFile, 'utf8'));
const input = () => torch.tensor(Float32Array.from(reference.input), reference.inputShape);

const say = (line) => fs.writeSync(1, `${line}\n`);

async function one(file) {
  let model;
  try {
    model = await torch.load(file);
  } catch (error) {
    return `load:${error.code ?? 'UNTYPED'}`;
  }
  try {
    await model.forward(input());
    await torch.activations(model, 'linear1', input());
    return 'loaded';
  } catch (error) {
    return `run:${error.code ?? 'UNTYPED'}`;
  } finally {
    model.dispose();
  }
}

(async () => {
  for (let i = Number(startArg); i < files.length; i++) {
    say(`start ${i}`);
    say(`done ${i} ${await one(files[i].file)}`);
  }
})();
