// Which steps of an instrumented program run, and when each value is dropped. Run backward from
// what the program returns and what its hooks read: a step none of whose results is needed is
// skipped (a patching sweep's replaced value no longer needs what computed it, so a sweep of
// block 9 does not run blocks 0-8 again), except steps that write into their arguments and the
// markers of inlined regions; each value is dropped after its last use, as eager Python drops
// it, so a run's peak memory is a forward's.
#pragma once

#include <vector>

#include "export/pt2_plan.h"

namespace torchscope::pt2 {

// The slots a hook reads (before it runs) and writes.
struct HookSlots {
  std::vector<int> read;
  std::vector<int> written;
};

struct Schedule {
  std::vector<bool> runs;                 // per step
  std::vector<std::vector<int>> release;  // slots dead after each step (and its hooks)
};

// `steps[0, end)` with the hooks before and after each (`before` may hold one more: hooks run
// after the last step); `kept`: slots never dropped (weights,
// the returned outputs), `returned`: those the program returns (needed at the end).
Schedule schedule(const std::vector<Step>& steps, size_t end, const std::vector<std::vector<HookSlots>>& before,
                  const std::vector<std::vector<HookSlots>>& after, const std::vector<bool>& kept, const std::vector<int>& returned);

}  // namespace torchscope::pt2
