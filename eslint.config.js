// ESLint (flat config), run by `npm run lint`: ESLint's and typescript-eslint's recommended rules
// on the TypeScript (lib/, test/, scripts/demo.ts) and the CommonJS scripts. Layout is Prettier's
// (.prettierrc.json), so no formatting rules here.
const { defineConfig, globalIgnores } = require('eslint/config');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');

module.exports = defineConfig([
  globalIgnores(['dist/', 'build/', 'models/', 'out/', 'prebuilds/', 'coverage/', '.venv*/', '.torchscope/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    // A disable comment that no longer disables anything is an error: each one stays meaningful.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    // scripts/, test/children/, test/consumer/ and the config files are CommonJS run by Node
    // directly: require() is how they import.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests read the Python references' untyped JSON (index.json) and hand the API deliberately
    // ill-typed values; `any` is the point there. lib/ keeps the rule.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
]);
