// Child-process tests (test/children/) run the compiled library, dist/lib: compile it first,
// so that they test the sources jest sees.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = function compileLibrary() {
  const root = path.resolve(__dirname, '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
};
