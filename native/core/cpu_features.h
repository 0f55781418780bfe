// What this CPU computes as this process runs it: the instructions cpuid reports, limited by
// what the process let libtorch's kernel libraries use. ATen reads ATEN_CPU_CAPABILITY and
// oneDNN ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) once, at their first use, so a machine can run
// the lesser paths (CI proves AVX2 on an AVX-512 machine). Rewrites that are fast only with some
// instructions (channels-last bfloat16, prepacking at bfloat16) are chosen from this, and
// torch.info().cpu reports it.
#pragma once

#include <string>

namespace torchscope {

struct CpuFeatures {
  // ATen's kernel level in force: at::get_cpu_capability() ("DEFAULT", "AVX2", "AVX512", ...).
  std::string aten;
  // oneDNN's instruction set in force, in ONEDNN_MAX_CPU_ISA's names ("SSE41", "AVX2",
  // "AVX512_CORE", "AVX512_CORE_BF16", "AVX512_CORE_AMX"...); "" where this is not an x86-64 CPU.
  std::string onednn;
  // Whether oneDNN computes bfloat16 / float16 natively (AVX-512 or AMX instructions for the
  // type, an OS that saves their registers, and an ISA limit that lets oneDNN use them);
  // elsewhere libtorch emulates the type, slower than float32.
  bool bf16 = false;
  bool fp16 = false;
};

// Computed once (the libraries read their limits once too).
const CpuFeatures& cpuFeatures();

}  // namespace torchscope
