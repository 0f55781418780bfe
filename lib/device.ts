// What the linked libtorch is and which devices it can use.
import { guard } from './errors';
import { binding } from './native';

export const cuda = {
  /** True when libtorch was built with CUDA and a GPU is visible. */
  isAvailable(): boolean {
    return guard(() => binding().cudaIsAvailable());
  },
  deviceCount(): number {
    return guard(() => binding().cudaDeviceCount());
  },
};

export interface Info {
  /** libtorch version the addon runs with, e.g. '2.13.0'. */
  libtorchVersion: string;
  /** Whether this libtorch has CUDA support compiled in. */
  cudaBuild: boolean;
  cudaAvailable: boolean;
  gpuCount: number;
  /** Intra-op threads libtorch uses. */
  threads: number;
}

export function info(): Info {
  const { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads } = guard(() => binding().buildInfo());
  return { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads };
}
