// The environment that limits libtorch's kernel libraries to AVX2 on an x86-64 machine with more:
// ATen's dispatch (ATEN_CPU_CAPABILITY), oneDNN's (ONEDNN_MAX_CPU_ISA) and MKL's
// (MKL_ENABLE_INSTRUCTIONS), each read once by its library at first use. `npm run
// test:lesser-cpu` and `npm run bench:runtimes` run under it to show the AVX2 path on any machine;
// test/cpu.test.ts checks that each takes effect.
'use strict';

const AVX2_LIMITS = Object.freeze({ ATEN_CPU_CAPABILITY: 'avx2', ONEDNN_MAX_CPU_ISA: 'AVX2', MKL_ENABLE_INSTRUCTIONS: 'AVX2' });
// Every variable that limits one of those libraries (oneDNN also reads its older name).
const LIMIT_VARIABLES = Object.freeze([...Object.keys(AVX2_LIMITS), 'DNNL_MAX_CPU_ISA']);

module.exports = { AVX2_LIMITS, LIMIT_VARIABLES };
