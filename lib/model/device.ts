// What the linked libtorch is and which devices it can use.
import { guard } from '../core/errors';
import { binding } from '../native/addon';

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
   * What this CPU computes as this process runs it: cpuid's instructions, limited by the
   * environment variables libtorch's kernel libraries read at their first use.
   * `capability`: ATen's kernel level ('DEFAULT', 'AVX2', 'AVX512'...; ATEN_CPU_CAPABILITY);
   * `onednn`: oneDNN's instruction set, in ONEDNN_MAX_CPU_ISA's names ('AVX2', 'AVX512_CORE',
   * 'AVX512_CORE_BF16', 'AVX512_CORE_AMX'...; '' off x86-64); `bf16` / `fp16`: whether oneDNN
   * computes that type natively (AVX-512 or AMX instructions for it). Where it does not,
   * load({ precision }) on the CPU is emulated, slower than float32, and warns.
   */
  cpu: { capability: string; onednn: string; bf16: boolean; fp16: boolean };
}

export function info(): Info {
  const { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads, cpuCapability, cpuOnednn, cpuBf16, cpuFp16 } = guard(() => binding().buildInfo());
  return { libtorchVersion, cudaBuild, cudaAvailable, gpuCount, threads, cpu: { capability: cpuCapability, onednn: cpuOnednn, bf16: cpuBf16, fp16: cpuFp16 } };
}
