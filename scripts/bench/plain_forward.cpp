// Baseline for `npm run bench`: what a C++ program calling libtorch directly takes for a
// forward pass. Usage: plain_forward MODEL BATCH WARMUP REPEATS; prints one time in ms per line.
#include <torch/script.h>

#include <chrono>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: plain_forward MODEL BATCH WARMUP REPEATS\n";
    return 2;
  }
  torch::jit::Module module = torch::jit::load(argv[1]);
  module.eval();
  const int64_t batch = std::stoll(argv[2]);
  const int warmup = std::stoi(argv[3]), repeats = std::stoi(argv[4]);
  torch::manual_seed(0);
  const torch::Tensor input = torch::rand({batch, 3, 224, 224});
  torch::NoGradGuard noGrad;
  for (int i = 0; i < warmup; ++i) module.forward({input});
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    module.forward({input});
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << elapsed.count() << std::endl;
  }
  return 0;
}
