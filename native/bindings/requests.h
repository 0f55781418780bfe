// Requests from JS (lib/native/binding.ts types them), read on the JS thread into plain C++ structs:
// the work on the compute thread never touches a JS value. Every field is checked as it is
// read; a missing or wrong one throws INVALID_ARGUMENT naming it ("run request.patch[1].mode:
// expected an integer in [0, 3], got a string"), never a crash or a silent default.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "methods/objective.h"
#include "model/model_state.h"
#include "program/program.h"
#include "sae/sae.h"

namespace torchscope {

// Reads the fields of one JS object; `where` prefixes every error.
class RequestReader {
 public:
  RequestReader(Napi::Value value, std::string where);

  bool has(const char* key) const;  // present and not undefined
  std::string string(const char* key) const;
  int64_t integer(const char* key, int64_t min, int64_t max) const;
  double number(const char* key) const;  // finite
  bool boolean(const char* key) const;
  at::Tensor tensor(const char* key) const;
  std::shared_ptr<const Sae> sae(const char* key) const;
  std::shared_ptr<ModelState> model(const char* key) const;
  RequestReader object(const char* key) const;
  // Arrays: absent (undefined) reads as empty.
  std::vector<std::string> strings(const char* key) const;
  std::vector<int64_t> integers(const char* key) const;
  std::vector<double> numbers(const char* key) const;
  std::vector<RequestReader> objects(const char* key) const;

 private:
  Napi::Value field(const char* key) const;
  std::vector<Napi::Value> array(const char* key) const;
  [[noreturn]] void fail(const char* key, const std::string& expected, Napi::Value got) const;

  Napi::Object object_;
  std::string where_;
};

// What several requests share: `patch` ([{ layer, mode, value?, scale?, channels?, positions? }],
// into layers sorted as a program takes them and their run-time arguments in the same order),
// a call's `{ precision, upcast }`, and an objective ({ layer, objectives: [...] },
// lib/methods/objective.ts; objectives on a layer need one).
void parsePatches(const RequestReader& request, std::vector<std::string>& layers, std::vector<PatchArgs>& patches);
NumericsOverride parseNumerics(const RequestReader& request);
// `saes` ([{ sae, read, write, errorTerm }]): the splices sorted by the hook point read, and
// their SAEs in the same order.
void parseSaes(const RequestReader& request, std::vector<SaeSplice>& splices, std::vector<std::shared_ptr<const Sae>>& saes);
ObjectiveSpec parseObjectiveSpec(const RequestReader& request);
std::vector<std::string> sortedUnique(std::vector<std::string> layers);

// The largest index a request may give (a typo of 1e12 is refused, not allocated for).
inline constexpr int64_t kMaxIndex = 1LL << 31;
// 2^53 - 1: integers JS numbers hold exactly.
inline constexpr int64_t kMaxSafeInteger = 9007199254740991;

}  // namespace torchscope
