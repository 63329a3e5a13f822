import t from 'tap';
import { parseVersion } from '../../src/runtime/version.js';

// [raw, expected, where it comes from] — version strings runtimes report in the wild.
const CASES: ReadonlyArray<readonly [string, string, string]> = [
  // Not a version at all.
  ['', 'unknown', 'empty ServerVersion (google/cadvisor#236)'],
  ['dev', 'unknown', 'moby hack/make.sh default'],
  ['library-import', 'unknown', 'moby dockerversion default'],
  ['1.mga9', 'unknown', 'containerd on Mageia 9'],
  ['master-dockerproject-2022-03-26', 'unknown', 'Windows Moby nightly'],
  ['   ', 'unknown', 'only whitespace'],
  ['1', 'unknown', 'no minor'],
  ['1.', 'unknown', 'dot without minor'],
  ['.1.2', 'unknown', 'no major'],
  ['vv1.2.3', 'unknown', 'only one v'],
  ['V1.2.3', 'unknown', 'the v is lower case'],
  ['version 1.2.3', 'unknown', 'anchored: no search inside the string'],
  ['-1.2.3', 'unknown', 'no sign'],
  // Dev and distribution builds.
  ['1.3.2-dev', '1.3.2', 'weaveworks/weave#282'],
  ['1.19.0-dev', '1.19.0', 'CRI-O dev build'],
  ['0.0.0-dev', '0.0.0', 'nightly default'],
  ['17.03.0-ce', '17.3.0', 'leading-zero minor (kubernetes#42492)'],
  ['17.04.0-ce', '17.4.0', 'leading-zero minor'],
  ['17.06.1-ce', '17.6.1', 'leading-zero minor'],
  ['17.03.1-ce-rc1', '17.3.1', 'release candidate'],
  ['18.03.0-ce-rc3', '18.3.0', 'release candidate'],
  ['29.4.0-ce', '29.4.0', 'openSUSE'],
  ['20.10.24+dfsg1', '20.10.24', 'Debian docker.io'],
  ['20.10.5+dfsg1', '20.10.5', 'Debian docker.io'],
  ['1.6.20~ds1', '1.6.20', 'Debian containerd'],
  ['1.6.20~ds1-1+b1', '1.6.20', 'Debian containerd GitCommit'],
  ['1.1.5+ds1', '1.1.5', 'Debian runc'],
  ['1.7.23~ds2', '1.7.23', 'Debian containerd'],
  ['1.7.23-ds2_1592.12', '1.7.23', 'gardener/gardener#14177'],
  ['1.5.9-0ubuntu3', '1.5.9', 'Ubuntu containerd'],
  ['1.4.4-0ubuntu1~20.04.2', '1.4.4', 'Ubuntu containerd'],
  ['1.3.3-0ubuntu1~18.04.4', '1.3.3', 'Ubuntu containerd'],
  ['1.13.1', '1.13.1', 'RHEL projectatomic docker'],
  ['1.9.1-fc23', '1.9.1', 'Fedora 23'],
  ['18.09.1-ol', '18.9.1', 'Oracle Linux'],
  ['19.03.1-ol', '19.3.1', 'Oracle Linux'],
  ['20.10.10sp+fluent1.7.0', '20.10.10', 'custom build (google/cadvisor#3119)'],
  ['v20.10.12-v1.0.2', '20.10.12', 'two version-like parts (google/cadvisor#3830): the first wins'],
  ['0.20180706.170746~23d14578b4', '0.20180706.170746', 'old nightly'],
  ['0.0.0-20230101120000-abcdef123456', '0.0.0', 'Go pseudo-version nightly'],
  ['v1.6.20', '1.6.20', 'containerd release (git describe keeps the v)'],
  ['v2.1.5', '2.1.5', 'containerd 2'],
  ['v1.4.3.m', '1.4.3', 'dirty tree suffix'],
  ['v1.3.3-0-gd842d771', '1.3.3', 'runc GitCommit'],
  ['v1.7.0-beta.3', '1.7.0', 'containerd beta'],
  ['v1.0.0-beta.2-53-g992280e8', '1.0.0', 'moby/moby#35389'],
  ['1.0.0-beta.1-133-gc9081b2-dirty', '1.0.0', 'containerd/cri#619'],
  ['2.4.0-beta+unknown', '2.4.0', 'unlinked containerd default'],
  ['1.28.1', '1.28.1', 'CRI-O release'],
  ['24.0.7', '24.0.7', 'plain Docker release'],
  // Shapes around the edges.
  ['1.2', '1.2', 'no patch'],
  ['v1.2', '1.2', 'v and no patch'],
  ['1.2.', '1.2', 'trailing dot'],
  ['1.2.3.4', '1.2.3', 'fourth component ignored'],
  ['1.20a', '1.20', 'suffix right after the minor'],
  ['007.008.009', '7.8.9', 'leading zeros everywhere'],
  ['0.0.0', '0.0.0', 'zeros stay zeros'],
  ['00.00', '0.0', 'zeros without patch'],
  [' 20.10.24\n', '20.10.24', 'surrounding whitespace trimmed'],
  ['12345678901234567890.1.2', '12345678901234567890.1.2', 'long components stay exact'],
];

t.test('parseVersion over version strings seen in the wild', async (t) => {
  t.ok(CASES.length >= 30);
  for (const [raw, want, why] of CASES) {
    let got: string | undefined;
    t.doesNotThrow(
      () => {
        got = parseVersion(raw);
      },
      `${JSON.stringify(raw)} does not throw`,
    );
    t.equal(got, want, `${JSON.stringify(raw)} → ${want} (${why})`);
  }
});

t.test('never throws, even on a non-string from untyped JSON', async (t) => {
  for (const v of [undefined, null, 20.1, {}, []] as unknown[]) {
    t.equal(parseVersion(v as string), 'unknown', JSON.stringify(v) ?? 'undefined');
  }
});
