import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { readable } from '../src/cli/doctor.js';

describe('readable (a list your kubeconfig may not be allowed to read)', () => {
  it('passes the items through', async () => {
    expect(await readable(Promise.resolve({ items: [1, 2] }))).toEqual({ items: [1, 2] });
  });

  it('turns a 403 into "could not check", with the API server message', async () => {
    const status = {
      kind: 'Status',
      code: 403,
      reason: 'Forbidden',
      message: 'priorityclasses.scheduling.k8s.io is forbidden: User "dev" cannot list resource "priorityclasses"',
    };
    const err = new ApiException(403, 'forbidden', JSON.stringify(status), {});
    expect(await readable(Promise.reject(err))).toEqual({ unreadable: expect.stringMatching(/is forbidden/) });
  });

  it('throws anything else (doctor then exits 2: it could not look)', async () => {
    await expect(readable(Promise.reject(new ApiException(500, 'boom', '', {})))).rejects.toBeInstanceOf(ApiException);
  });
});
