// Shared by the dashboard suites.
import * as torch from '../../lib';

/** A source over batches held in memory (the same tensors each time it is read), counting its reads. */
export function memorySource(
  batches: { tokens?: torch.Tensor; activations: torch.Tensor }[],
  contextSize: number,
): torch.dashboard.ActivationSource & { reads: number } {
  const source = {
    contextSize,
    reads: 0,
    async *batches() {
      source.reads++;
      for (const b of batches) yield b;
    },
  };
  return source;
}
