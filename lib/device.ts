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
  /**
   * What this CPU can do: ATen's kernel level ('AVX2', 'AVX512'...) and whether it computes
   * bfloat16 and float16 natively (AVX-512 / AMX instructions for them). Where it does not,
   * load({ precision }) on the CPU is emulated, slower than float32, and warns.
   */
  cpu: { capability: string; bf16: boolean; fp16: boolean };
}

export function info(): Info {
  const { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads, cpuCapability, cpuBf16, cpuFp16 } = guard(() => binding().buildInfo());
  return { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads, cpu: { capability: cpuCapability, bf16: cpuBf16, fp16: cpuFp16 } };
}
