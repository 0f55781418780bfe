// The machine's arithmetic peak for `npm run bench:runtimes`: independent FMA chains on every
// thread, as wide as the CPU allows (-march=native), so a runtime's time can be printed as a
// share of what the cores can do. bf16: AVX-512 BF16 dot products (vdpbf16ps: 2 multiply-adds
// per lane, 32 bf16 pairs per instruction), where the CPU has them; and AMX tile products
// (tdpbf16ps: 16x16 float32 += 16x32 x 32x16 bfloat16), where it has those, since that is what
// oneDNN's bf16 kernels run on such a CPU. "bf16" is the faster of the two.
//
//   peak THREADS MILLISECONDS
//     ->  {"fp32": GFLOP/s, "bf16": GFLOP/s or null, "bf16Unit": "amx" | "avx512_bf16" | null, "width": floats per vector}
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#if defined(__AVX512BF16__) || defined(__AMX_BF16__)
#include <immintrin.h>
#endif
#if defined(__AMX_BF16__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#define TORCHSCOPE_AMX 1
#endif

namespace {

#if defined(__AVX512F__)
constexpr int kWidth = 16;
#elif defined(__AVX__)
constexpr int kWidth = 8;
#else
constexpr int kWidth = 4;
#endif
typedef float Vec __attribute__((vector_size(kWidth * 4)));
constexpr int kChains = 12;  // enough independent FMAs to cover the unit's latency x ports

// Multiply-adds per second of one thread for about `ms` milliseconds.
double fp32Thread(int ms, float seed, float* sink) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = Vec{} + seed * (c + 1);
  const Vec a = Vec{} + 0.999999f, b = Vec{} + 1e-7f;
  long iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  do {
    for (int i = 0; i < 4096; ++i) {
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
    }
    iterations += 4096;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds * 1000 < ms);
  float total = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kWidth; ++l) total += acc[c][l];
  *sink = total;
  return static_cast<double>(iterations) * kChains * kWidth / seconds;
}

#if defined(__AVX512BF16__)
double bf16Thread(int ms, float* sink) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.f);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
  long iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  do {
    for (int i = 0; i < 4096; ++i) {
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    }
    iterations += 4096;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds * 1000 < ms);
  float total = 0;
  for (int c = 0; c < kChains; ++c) total += _mm512_reduce_add_ps(acc[c]);
  *sink = total;
  return static_cast<double>(iterations) * kChains * 32 / seconds;  // 32 multiply-adds per instruction
}
#endif

#if defined(TORCHSCOPE_AMX)
// Linux hands out AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA).
bool amxPermitted() { return syscall(SYS_arch_prctl, 0x1023, 18) == 0; }

struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t bytesPerRow[16] = {};
  uint8_t rows[16] = {};
};

double amxThread(int ms, float* sink) {
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.bytesPerRow[t] = 64, config.rows[t] = 16;
  _tile_loadconfig(&config);
  alignas(64) static thread_local uint16_t a[16 * 32], b[16 * 32];
  alignas(64) static thread_local float c[16 * 16];
  for (int i = 0; i < 16 * 32; ++i) a[i] = 0x3f80, b[i] = 0x3380;  // 1.0, ~6e-8
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  long iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  do {
    for (int i = 0; i < 1024; ++i) {  // four independent accumulators
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    iterations += 1024;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds * 1000 < ms);
  _tile_stored(0, c, 64);
  _tile_release();
  *sink = c[0];
  return static_cast<double>(iterations) * 4 * 16 * 16 * 32 / seconds;  // multiply-adds per tile product
}
#endif

// GFLOP/s of `threads` threads running `fn` at once (a multiply-add is 2 FLOP).
template <typename Fn>
double gflops(int threads, Fn fn) {
  std::vector<double> rates(threads);
  std::vector<float> sinks(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { rates[t] = fn(&sinks[t]); });
  for (auto& thread : pool) thread.join();
  double total = 0;
  for (double r : rates) total += r;
  volatile float keep = sinks[0];
  (void)keep;
  return 2 * total / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int ms = argc > 2 ? std::atoi(argv[2]) : 500;
  const double fp32 = gflops(threads, [&](float* sink) { return fp32Thread(ms, 1.0f, sink); });
  double bf16 = 0;
  const char* unit = nullptr;
#if defined(__AVX512BF16__)
  bf16 = gflops(threads, [&](float* sink) { return bf16Thread(ms, sink); });
  unit = "avx512_bf16";
#endif
#if defined(TORCHSCOPE_AMX)
  if (amxPermitted()) {
    const double amx = gflops(threads, [&](float* sink) { return amxThread(ms, sink); });
    if (amx > bf16) bf16 = amx, unit = "amx";
  }
#endif
  if (unit) {
    std::printf("{\"fp32\": %.1f, \"bf16\": %.1f, \"bf16Unit\": \"%s\", \"width\": %d}\n", fp32, bf16, unit, kWidth);
  } else {
    std::printf("{\"fp32\": %.1f, \"bf16\": null, \"bf16Unit\": null, \"width\": %d}\n", fp32, kWidth);
  }
  return 0;
}
