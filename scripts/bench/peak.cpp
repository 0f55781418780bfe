// The machine's arithmetic peak for `npm run bench:runtimes`: independent FMA chains on every
// thread, as wide as the CPU allows (-march=native), so a runtime's time can be printed as a
// share of what the cores can do. bf16: AVX-512 BF16 dot products (vdpbf16ps: 2 multiply-adds
// per lane, 32 bf16 pairs per instruction), where the CPU has them.
//
//   peak THREADS MILLISECONDS  ->  {"fp32": GFLOP/s, "bf16": GFLOP/s or null, "width": floats per vector}
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#if defined(__AVX512BF16__)
#include <immintrin.h>
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
#if defined(__AVX512BF16__)
  const double bf16 = gflops(threads, [&](float* sink) { return bf16Thread(ms, sink); });
  std::printf("{\"fp32\": %.1f, \"bf16\": %.1f, \"width\": %d}\n", fp32, bf16, kWidth);
#else
  std::printf("{\"fp32\": %.1f, \"bf16\": null, \"width\": %d}\n", fp32, kWidth);
#endif
  return 0;
}
