// CPU time, for assertions that must hold on a loaded machine: wall-clock gaps and step times
// stretch when the OS deschedules a thread, CPU time does not. Whether libtorch work runs off the
// JS thread shows in the JS thread's own CPU time; how much work ran shows in the process's.
import * as fs from 'fs';

/** Milliseconds of CPU time of the whole process (every thread) so far. */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Milliseconds of CPU time of the JS (main) thread so far, from Linux's per-thread accounting. */
export function jsThreadCpuMs(): number {
  // /proc/<pid>/task/<pid>/stat: the main thread's id is the process id. Fields after the
  // command's closing parenthesis: utime and stime are the 12th and 13th, in clock ticks.
  const stat = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** The Linux kernel's USER_HZ, which /proc reports times in on every architecture it runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time spent while `work` was pending: by the JS thread and by the whole process. */
export async function cpuDuring<T>(work: Promise<T>): Promise<[T, { jsThreadMs: number; processMs: number }]> {
  const js = jsThreadCpuMs();
  const all = processCpuMs();
  const value = await work;
  return [value, { jsThreadMs: jsThreadCpuMs() - js, processMs: processCpuMs() - all }];
}
