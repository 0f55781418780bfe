// Jest runs the TypeScript sources (lib/ through ts-jest), so a test failure points at lib/*.ts.
// test/gpu/ skips itself, saying so, when no GPU is visible (TORCHSCOPE_GPU_TESTS=1 requires it).

// Two workers on two cores, plus the Python reference: libtorch's default of one OpenMP thread
// per core would oversubscribe the CPU, and OpenMP's spinning barriers then make small ops
// wait for descheduled threads (resnet-tiny calls measured 10-15x slower under that
// contention). One intra-op thread per process; set OMP_NUM_THREADS to override. Workers and
// the reference's Python processes inherit it.
process.env.OMP_NUM_THREADS ??= '1';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  transform: {
    // test/tsconfig.json extends the package's tsconfig with jest's types.
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  // Compiles lib/ to dist/lib for the suites that run it in child processes (test/children/).
  globalSetup: '<rootDir>/test/global-setup.js',
  // BERT-base and ResNet-18 on a 2-core machine: give each test room, but not forever.
  testTimeout: 120_000,
  maxWorkers: 2,
  // Files load ResNet-18 / BERT-base: a worker that grew past 2 GB is replaced before the next file.
  workerIdleMemoryLimit: '2GB',
};
