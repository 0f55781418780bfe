import * as torch from '../lib';
test('x', () => { expect(torch.info().libtorchVersion).toBe('2.13.0'); });
