// The weight layout operator. In a channels-last program a 2-D convolution's weight is cast once
// in both layouts (program.cpp, castWeightsOnce), and this picks, for the input at hand, the one
// that makes oneDNN choose what it would choose with autocast's contiguous cast: channels-last
// when the input is (then nothing is reordered per call, nor again in the backward), the
// contiguous one otherwise (a convolution whose input some op made contiguous). The same kernel
// either way, so the same values as the exact program.
#pragma once

namespace torchscope {

// `torchscope::weight_for_layout(Tensor input, Tensor contiguous, Tensor channels_last) -> Tensor`
inline constexpr const char* kWeightLayoutOperator = "torchscope::weight_for_layout";

}  // namespace torchscope
