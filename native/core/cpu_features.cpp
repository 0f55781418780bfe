#include "core/cpu_features.h"

#include <ATen/Version.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace torchscope {

namespace {

// oneDNN's x86-64 instruction sets, each a superset of the one before on the CPUs that have them,
// by the names ONEDNN_MAX_CPU_ISA takes (AVX10_1_512* are newer names of the AVX512_CORE_FP16
// and AMX levels).
enum class Isa {
  kNone,
  kSse41,
  kAvx,
  kAvx2,
  kAvx2Vnni,
  kAvx2Vnni2,
  kAvx512Core,
  kAvx512CoreVnni,
  kAvx512CoreBf16,
  kAvx512CoreFp16,
  kAvx512CoreAmx,
  kAvx512CoreAmxFp16
};

struct IsaName {
  const char* name;
  Isa isa;
};

constexpr std::array<IsaName, 14> kIsaNames = {{
    {"SSE41", Isa::kSse41},
    {"AVX", Isa::kAvx},
    {"AVX2", Isa::kAvx2},
    {"AVX2_VNNI", Isa::kAvx2Vnni},
    {"AVX2_VNNI_2", Isa::kAvx2Vnni2},
    {"AVX512_CORE", Isa::kAvx512Core},
    {"AVX512_CORE_VNNI", Isa::kAvx512CoreVnni},
    {"AVX512_CORE_BF16", Isa::kAvx512CoreBf16},
    {"AVX512_CORE_FP16", Isa::kAvx512CoreFp16},
    {"AVX512_CORE_AMX", Isa::kAvx512CoreAmx},
    {"AVX512_CORE_AMX_FP16", Isa::kAvx512CoreAmxFp16},
    {"AVX10_1_512", Isa::kAvx512CoreFp16},
    {"AVX10_1_512_AMX", Isa::kAvx512CoreAmx},
    {"AVX10_1_512_AMX_FP16", Isa::kAvx512CoreAmxFp16},
}};

std::string isaName(Isa isa) {
  for (const IsaName& entry : kIsaNames) {
    if (entry.isa == isa) return entry.name;
  }
  return "";
}

#if defined(__x86_64__)
bool bit(unsigned word, int index) { return (word >> index) & 1; }

// The highest level this CPU and OS support, from cpuid and the register states XCR0 enables.
Isa detectedIsa() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kNone;
  const bool sse41 = bit(c, 19), avx = bit(c, 28), osxsave = bit(c, 27);
  if (!sse41) return Isa::kNone;
  if (!avx || !osxsave) return Isa::kSse41;
  unsigned xcr0 = 0, xcr0High = 0;
  __asm__("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));  // the intrinsic needs -mxsave
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6, tiles = (xcr0 & 0x60000) == 0x60000;
  if (!ymm) return Isa::kSse41;
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, d71 = 0, unused = 0;
  if (!__get_cpuid_count(7, 0, &a, &b7, &c7, &d7)) return Isa::kAvx;
  __get_cpuid_count(7, 1, &a71, &unused, &unused, &d71);
  if (!bit(b7, 5)) return Isa::kAvx;
  const bool avx512Core = zmm && bit(b7, 16) && bit(b7, 17) && bit(b7, 30) && bit(b7, 31);
  if (!avx512Core) {
    const bool vnni = bit(a71, 4), vnni2 = vnni && bit(d71, 4) && bit(d71, 5);  // AVX-VNNI; AVX-VNNI-INT8 and AVX-NE-CONVERT
    return vnni2 ? Isa::kAvx2Vnni2 : vnni ? Isa::kAvx2Vnni : Isa::kAvx2;
  }
  if (!bit(c7, 11)) return Isa::kAvx512Core;
  if (!bit(a71, 5)) return Isa::kAvx512CoreVnni;
  if (!bit(d7, 23)) return Isa::kAvx512CoreBf16;
  const bool amx = tiles && bit(d7, 22) && bit(d7, 24) && bit(d7, 25);  // AMX-BF16, AMX-TILE, AMX-INT8
  if (!amx) return Isa::kAvx512CoreFp16;
  return bit(a71, 21) ? Isa::kAvx512CoreAmxFp16 : Isa::kAvx512CoreAmx;
}
#else
Isa detectedIsa() { return Isa::kNone; }
#endif

// oneDNN's limit from the environment, as oneDNN reads it (either name, any case); none for an
// unset or unknown value, which oneDNN ignores too.
Isa isaLimit() {
  const char* value = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (value == nullptr) value = std::getenv("DNNL_MAX_CPU_ISA");
  if (value == nullptr) return Isa::kAvx512CoreAmxFp16;
  std::string upper(value);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char ch) { return std::toupper(ch); });
  for (const IsaName& entry : kIsaNames) {
    if (upper == entry.name) return entry.isa;
  }
  return Isa::kAvx512CoreAmxFp16;  // ALL, DEFAULT, or a name oneDNN does not know
}

CpuFeatures compute() {
  CpuFeatures features;
  features.aten = at::get_cpu_capability();
  const Isa detected = detectedIsa();
  const Isa inForce = std::min(detected, isaLimit());
  features.onednn = isaName(inForce);
  features.bf16 = inForce >= Isa::kAvx512CoreBf16;
  features.fp16 = inForce >= Isa::kAvx512CoreFp16;
  return features;
}

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures features = compute();
  return features;
}

}  // namespace torchscope
