// File system failures of a store become RUNTIME errors that name the store; torchscope's own
// errors pass through unchanged.
import { CallSite, failure, TorchscopeError } from '../core/errors';

export async function storeCall<T>(dir: string, site: CallSite, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TorchscopeError) throw error;
    throw failure('RUNTIME', `activation store ${dir}: ${(error as Error).message}`, site);
  }
}
