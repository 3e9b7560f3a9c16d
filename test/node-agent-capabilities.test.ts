import { describe, expect, it } from '@jest/globals';
import type { V1SecurityContext } from '@kubernetes/client-node';
import { containerCapabilities, setprivCapabilityArgs } from '../e2e/node-agent/capabilities.js';
import { renderRootScript } from '../e2e/node-agent/container-root.js';

describe('containerCapabilities (the runtime default set, minus drop, plus add)', () => {
  const table: [string, V1SecurityContext | undefined, string[] | undefined][] = [
    ['no securityContext: left as is', undefined, undefined],
    ['no capabilities field: left as is', { runAsUser: 0 }, undefined],
    [
      "the helper's: drop ALL, add DAC_OVERRIDE and FOWNER",
      { capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] } },
      ['DAC_OVERRIDE', 'FOWNER'],
    ],
    ['drop ALL and add nothing', { capabilities: { drop: ['ALL'] } }, []],
    [
      'drop some of the default set, CAP_ prefix and case ignored',
      { capabilities: { drop: ['CAP_NET_RAW', 'mknod', 'KILL', 'AUDIT_WRITE', 'SETFCAP'], add: ['SYS_ADMIN'] } },
      [
        'CHOWN',
        'DAC_OVERRIDE',
        'FOWNER',
        'FSETID',
        'NET_BIND_SERVICE',
        'SETGID',
        'SETPCAP',
        'SETUID',
        'SYS_ADMIN',
        'SYS_CHROOT',
      ],
    ],
  ];
  it.each(table)('%s', (_name, sc, expected) => {
    expect(containerCapabilities(sc)).toEqual(expected);
  });
});

describe('setprivCapabilityArgs', () => {
  it.each([
    [
      ['DAC_OVERRIDE', 'FOWNER'],
      true,
      ['--inh-caps=-all', '--bounding-set=-all,+dac_override,+fowner', '--no-new-privs'],
    ],
    [[], false, ['--inh-caps=-all', '--bounding-set=-all']],
    [undefined, true, ['--no-new-privs']],
    [undefined, false, []],
  ])('%j, no_new_privs %j → %j', (caps, nnp, expected) => {
    expect(setprivCapabilityArgs(caps, nnp)).toEqual(expected);
  });

  it('a root container with a capability set is exec-ed through setpriv without changing its identity', () => {
    const script = renderRootScript('/st/root', [], {
      argv: ['sh', '-c', 'true'],
      env: {},
      workingDir: '/',
      privileges: setprivCapabilityArgs(['DAC_OVERRIDE', 'FOWNER'], true),
    });
    expect(script.split('\n').at(-2)).toBe(
      "exec 'chroot' '/st/root' 'setpriv' '--inh-caps=-all' '--bounding-set=-all,+dac_override,+fowner' '--no-new-privs' '--' 'env' '-i' '-C' '/' '--' 'sh' '-c' 'true'",
    );
  });
});
