#include "export/pt2_schedule.h"

#include <algorithm>

namespace torchscope::pt2 {

namespace {

std::vector<int> reads(const Step& step) {
  std::vector<int> slots;
  for (const ArgSource& arg : step.args) {
    if (arg.slot >= 0) slots.push_back(arg.slot);
    for (int slot : arg.slots) {
      if (slot >= 0) slots.push_back(slot);
    }
  }
  return slots;
}

std::vector<int> writes(const Step& step) {
  std::vector<int> slots;
  for (const auto& outputs : step.outputs) {
    for (int slot : outputs) {
      if (slot >= 0) slots.push_back(slot);
    }
  }
  return slots;
}

// A step that must run whatever its results: it writes into an argument (relu_, add_: its
// effect is on a value others may read under another name), or it sets or restores a mode.
bool effectful(const Step& step) {
  if (step.kind == Step::kEnterGradMode || step.kind == Step::kEnterAutocast || step.kind == Step::kExitRegion) return true;
  if (!step.op) return false;
  for (const c10::Argument& argument : step.op->schema().arguments()) {
    if (argument.alias_info() && argument.alias_info()->isWrite()) return true;
  }
  return false;
}

}  // namespace

Schedule schedule(const std::vector<Step>& steps, size_t end, const std::vector<std::vector<HookSlots>>& before,
                  const std::vector<std::vector<HookSlots>>& after, const std::vector<bool>& kept, const std::vector<int>& returned) {
  const size_t slots = kept.size();
  Schedule out;
  out.runs.assign(end, false);
  std::vector<bool> live(slots, false);
  for (int slot : returned) live[slot] = true;
  auto hook = [&](const HookSlots& h) {
    for (int slot : h.written) live[slot] = false;
    for (int slot : h.read) live[slot] = true;
  };
  // Hooks placed before the step after the last (an ':input' that ends a cut run) read too.
  if (end < before.size()) {
    for (auto h = before[end].rbegin(); h != before[end].rend(); ++h) hook(*h);
  }
  for (size_t i = end; i-- > 0;) {
    for (auto h = after[i].rbegin(); h != after[i].rend(); ++h) hook(*h);
    const std::vector<int> outputs = writes(steps[i]);
    const bool needed = effectful(steps[i]) || std::any_of(outputs.begin(), outputs.end(), [&](int slot) { return live[slot]; });
    if (needed) {
      out.runs[i] = true;
      for (int slot : outputs) live[slot] = false;
      for (int slot : reads(steps[i])) live[slot] = true;
    }
    for (auto h = before[i].rbegin(); h != before[i].rend(); ++h) hook(*h);
  }
  // The last use of each value among what runs, hooks included.
  std::vector<int64_t> last(slots, -1);
  auto use = [&](int slot, size_t at) { last[slot] = std::max<int64_t>(last[slot], static_cast<int64_t>(at)); };
  for (size_t i = 0; i < end; ++i) {
    if (out.runs[i]) {
      for (int slot : reads(steps[i])) use(slot, i);
      for (int slot : writes(steps[i])) use(slot, i);
    }
    for (const auto* hooks : {&before[i], &after[i]}) {
      for (const HookSlots& h : *hooks) {
        for (int slot : h.read) use(slot, i);
        for (int slot : h.written) use(slot, i);
      }
    }
  }
  out.release.resize(end);
  for (size_t slot = 0; slot < slots; ++slot) {
    if (!kept[slot] && last[slot] >= 0) out.release[last[slot]].push_back(static_cast<int>(slot));
  }
  return out;
}

}  // namespace torchscope::pt2
