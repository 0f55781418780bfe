// The no_grad and autocast regions of an exported graph (wrap_with_set_grad_enabled,
// wrap_with_autocast: the training IR's `with torch.no_grad()` / `torch.autocast` blocks) inlined
// into it between marker nodes that set and restore the mode, so that the modules inside them
// are hook points like any other (their nodes keep their nn_module_stack; torch.cond and
// while_loop branches, which keep none, stay subgraphs). Inner values are renamed
// "<region node>.<name>"; the region node's outputs become aliases of the inner values.
#pragma once

#include "export/pt2_schema.h"

namespace torchscope::pt2 {

Graph inlineRegions(const Graph& graph);

}  // namespace torchscope::pt2
