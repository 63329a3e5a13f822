import t from 'tap';
import bcrypt from 'bcryptjs';
import { BasicAuthVerifier, DUMMY_BCRYPT_HASH, bcryptHashProblem, parseBasicAuthorization, type PasswordCompare } from '../../src/http/basic-auth.js';
import { ConfigError } from '../../src/errors.js';
import { settle } from '../support/fake-clock.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

// Cost 4: real bcrypt, but fast.
const ALICE_PW = 'correct horse battery staple';
const ALICE = bcrypt.hashSync(ALICE_PW, 4);
const BOB_PW = 'hunter2';
const BOB = bcrypt.hashSync(BOB_PW, 4);
const SOME_HASH = '$2b$04$' + 'a'.repeat(53);

/** A compare that answers only when the test says, recording what it was asked and how many ran at once. */
class GatedCompare {
  calls: { password: string; hash: string }[] = [];
  running = 0;
  maxRunning = 0;
  #waiting: (() => void)[] = [];
  constructor(readonly answer: (password: string, hash: string) => boolean = () => true) {}
  readonly fn: PasswordCompare = async (password, hash) => {
    this.calls.push({ password, hash });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.running--;
    return this.answer(password, hash);
  };
  get waiting(): number {
    return this.#waiting.length;
  }
  /** Lets the oldest waiting comparison finish. */
  release(): void {
    this.#waiting.shift()?.();
  }
}

/** A compare that answers at once, counting its calls. */
function counting(answer: (password: string, hash: string) => boolean): { fn: PasswordCompare; calls: { password: string; hash: string }[] } {
  const calls: { password: string; hash: string }[] = [];
  return {
    calls,
    fn: async (password, hash) => {
      calls.push({ password, hash });
      return answer(password, hash);
    },
  };
}

t.test('bcryptHashProblem', async (t) => {
  t.equal(bcryptHashProblem(ALICE), undefined, 'bcryptjs $2b$');
  t.equal(bcryptHashProblem(DUMMY_BCRYPT_HASH), undefined, 'the dummy hash');
  for (const v of ['a', 'b', 'x', 'y']) t.equal(bcryptHashProblem(`$2${v}$10$${'A'.repeat(53)}`), undefined, `$2${v}$`);
  t.equal(bcryptHashProblem(`$2b$04$${'./'.repeat(26)}z`), undefined, 'cost 4');
  t.equal(bcryptHashProblem(`$2b$31$${'A'.repeat(53)}`), undefined, 'cost 31');
  t.match(bcryptHashProblem(`$2b$03$${'A'.repeat(53)}`), /cost 3 is outside 4\.\.31/);
  t.match(bcryptHashProblem(`$2b$32$${'A'.repeat(53)}`), /cost 32 is outside/);
  t.match(bcryptHashProblem(`$2b$99$${'A'.repeat(53)}`), /cost 99 is outside/);
  t.match(bcryptHashProblem(''), /not a bcrypt hash/);
  t.match(bcryptHashProblem('password'), /not a bcrypt hash/);
  t.match(bcryptHashProblem(`$2c$10$${'A'.repeat(53)}`), /not a bcrypt hash/, 'unknown minor version');
  t.match(bcryptHashProblem(`$2b$1$${'A'.repeat(54)}`), /not a bcrypt hash/, 'one-digit cost');
  t.match(bcryptHashProblem(`$2b$10$${'A'.repeat(52)}`), /not a bcrypt hash/, 'too short');
  t.match(bcryptHashProblem(`$2b$10$${'A'.repeat(54)}`), /not a bcrypt hash/, 'too long');
  t.match(bcryptHashProblem(`$2b$10$${'A'.repeat(52)}+`), /not a bcrypt hash/, 'base64 + is not bcrypt base64');
  t.match(bcryptHashProblem(`${ALICE}\n`), /not a bcrypt hash/, 'trailing newline');
  t.match(bcryptHashProblem(`{SHA}${'A'.repeat(28)}`), /not a bcrypt hash/, 'htpasswd SHA');
  t.notMatch(bcryptHashProblem(`$2b$10$${'Q'.repeat(52)}`) ?? '', /QQQQ/, 'the hash is not repeated in the reason');
});

t.test('parseBasicAuthorization', async (t) => {
  t.same(parseBasicAuthorization(`Basic ${b64('alice:secret')}`), { user: 'alice', password: 'secret' });
  t.same(parseBasicAuthorization(`basic ${b64('alice:secret')}`), { user: 'alice', password: 'secret' }, 'scheme is case-insensitive');
  t.same(parseBasicAuthorization(`BASIC ${b64('alice:secret')}`), { user: 'alice', password: 'secret' });
  t.same(parseBasicAuthorization(`Basic   ${b64('alice:secret')}`), { user: 'alice', password: 'secret' }, 'several spaces');
  t.same(parseBasicAuthorization(`Basic ${b64('alice:')}`), { user: 'alice', password: '' }, 'empty password');
  t.same(parseBasicAuthorization(`Basic ${b64(':pw')}`), { user: '', password: 'pw' }, 'empty user');
  t.same(parseBasicAuthorization(`Basic ${b64('alice:a:b:c')}`), { user: 'alice', password: 'a:b:c' }, 'split at the first colon');
  t.same(parseBasicAuthorization(`Basic ${b64('jürgen:pässwörd€😀')}`), { user: 'jürgen', password: 'pässwörd€😀' }, 'UTF-8');
  t.same(parseBasicAuthorization(`Basic ${b64('a:b')}`), { user: 'a', password: 'b' }, 'padded token (YTpi)');
  t.same(parseBasicAuthorization(`Basic ${b64('ab:c')}`), { user: 'ab', password: 'c' }, 'one = of padding');
  t.same(parseBasicAuthorization(`Basic ${b64('a:bc')}`), { user: 'a', password: 'bc' }, 'no padding needed');

  t.equal(parseBasicAuthorization(undefined), undefined, 'absent');
  t.equal(parseBasicAuthorization(''), undefined, 'empty');
  t.equal(parseBasicAuthorization('Basic'), undefined, 'scheme alone');
  t.equal(parseBasicAuthorization('Basic '), undefined, 'empty token');
  t.equal(parseBasicAuthorization(`Basic ${b64('alicesecret')}`), undefined, 'no colon');
  t.equal(parseBasicAuthorization(`Bearer ${b64('alice:secret')}`), undefined, 'Bearer scheme');
  t.equal(parseBasicAuthorization(`Basicx ${b64('alice:secret')}`), undefined, 'not the Basic scheme');
  t.equal(parseBasicAuthorization(b64('alice:secret')), undefined, 'no scheme');
  t.equal(parseBasicAuthorization(`Basic\t${b64('alice:secret')}`), undefined, 'tab is not a separator');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:secret')} `), undefined, 'trailing space');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:secret')} extra`), undefined, 'extra token');
  t.equal(parseBasicAuthorization('Basic YTpi'.slice(0, -1)), undefined, 'unpadded length');
  t.equal(parseBasicAuthorization('Basic YWxpY2U6c2VjcmV0'.replace('0', '')), undefined, 'truncated');
  t.equal(parseBasicAuthorization('Basic YTpiYw'), undefined, 'missing padding');
  t.equal(parseBasicAuthorization('Basic YTpiYw==='), undefined, 'too much padding');
  t.equal(parseBasicAuthorization('Basic YT=pYw=='), undefined, 'padding in the middle');
  t.equal(parseBasicAuthorization('Basic YTpiYx=='), undefined, 'stray bits in the last character (not canonical)');
  t.equal(parseBasicAuthorization('Basic YTp-Yw=='), undefined, 'base64url alphabet');
  t.equal(parseBasicAuthorization('Basic YTp!Yw=='), undefined, 'not base64 at all');
  t.equal(parseBasicAuthorization(`Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`), undefined, 'invalid UTF-8');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:sec\nret')}`), undefined, 'newline in the password');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:sec\x00ret')}`), undefined, 'NUL in the password');
  t.equal(parseBasicAuthorization(`Basic ${b64('al\x1bice:secret')}`), undefined, 'ESC in the user');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:secret\x7f')}`), undefined, 'DEL');
  t.equal(parseBasicAuthorization(`Basic ${b64('alice:sec\tret')}`), undefined, 'tab');
});

t.test('real bcrypt: right and wrong passwords', async (t) => {
  const v = new BasicAuthVerifier(
    new Map([
      ['alice', ALICE],
      ['bob', BOB],
    ]),
  );
  t.equal(v.users, 2);
  t.equal(await v.verify('alice', ALICE_PW), true);
  t.equal(await v.verify('bob', BOB_PW), true);
  t.equal(await v.verify('alice', BOB_PW), false, "bob's password is not alice's");
  t.equal(await v.verify('alice', ''), false);
  t.equal(await v.verify('alice', ALICE_PW.toUpperCase()), false);
  t.equal(await v.verify('Alice', ALICE_PW), false, 'user names are case-sensitive');
  t.equal(await v.verify('carol', ALICE_PW), false, 'unknown user');
  t.equal(await v.verify('alice', ALICE_PW), true, 'again, from the cache');
  t.equal(await v.verify('alice', BOB_PW), false, 'a cached failure stays a failure');
});

t.test('real bcrypt: $2y$ and $2x$ hashes (htpasswd, Go) are accepted', async (t) => {
  const y = ALICE.replace(/^\$2b\$/, '$2y$');
  const x = ALICE.replace(/^\$2b\$/, '$2x$');
  const a = ALICE.replace(/^\$2b\$/, '$2a$');
  const v = new BasicAuthVerifier(
    new Map([
      ['y', y],
      ['x', x],
      ['a', a],
    ]),
  );
  for (const user of ['y', 'x', 'a']) {
    t.equal(await v.verify(user, ALICE_PW), true, `$2${user}$ right password`);
    t.equal(await v.verify(user, BOB_PW), false, `$2${user}$ wrong password`);
  }
});

t.test('real bcrypt: an unknown user is checked against the dummy hash and refused', async (t) => {
  t.equal(bcrypt.getRounds(DUMMY_BCRYPT_HASH), 10, 'the dummy hash costs as much as a typical real one');
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]));
  t.equal(await v.verify('mallory', ''), false);
  t.equal(await v.verify('mallory', 'x'), false);
});

t.test('an unknown user makes exactly one compare, against the dummy hash, and is refused even when it matches', async (t) => {
  const c = counting(() => true);
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  t.equal(await v.verify('mallory', 'guess'), false, 'refused although the compare said yes');
  t.same(c.calls, [{ password: 'guess', hash: DUMMY_BCRYPT_HASH }]);
  t.equal(await v.verify('mallory', 'guess'), false, 'refused from the cache too');
  t.equal(c.calls.length, 1, 'the unknown user was cached');
});

t.test('a cache hit makes no second compare; failures are cached too', async (t) => {
  const c = counting((pw) => pw === ALICE_PW);
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  t.equal(await v.verify('alice', ALICE_PW), true);
  t.equal(await v.verify('alice', ALICE_PW), true);
  t.equal(c.calls.length, 1, 'one compare for two successes');
  t.same(c.calls[0], { password: ALICE_PW, hash: ALICE });
  t.equal(await v.verify('alice', 'wrong'), false);
  t.equal(await v.verify('alice', 'wrong'), false);
  t.equal(c.calls.length, 2, 'one compare for two failures');
});

t.test('50 concurrent verifies of new credentials make one compare', async (t) => {
  const c = new GatedCompare();
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  const all = Promise.all(Array.from({ length: 50 }, () => v.verify('alice', ALICE_PW)));
  await settle();
  t.equal(c.calls.length, 1, 'one compare started');
  c.release();
  t.same(await all, Array<boolean>(50).fill(true));
  t.equal(c.calls.length, 1, 'and no other afterwards');
});

t.test('misses run one at a time', async (t) => {
  const c = new GatedCompare((pw) => pw === 'p3');
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  const results = Promise.all(['p0', 'p1', 'p2', 'p3', 'p4'].map((pw) => v.verify('alice', pw)));
  for (let i = 0; i < 5; i++) {
    await settle();
    t.equal(c.calls.length, i + 1, `compare ${i + 1} started only after ${i} finished`);
    t.equal(c.running, 1);
    c.release();
  }
  t.same(await results, [false, false, false, true, false]);
  t.equal(c.maxRunning, 1, 'never two at once');
  t.same(
    c.calls.map((x) => x.password),
    ['p0', 'p1', 'p2', 'p3', 'p4'],
    'in the order asked',
  );
});

t.test('a compare that throws counts as a failure and does not stop the queue', async (t) => {
  let n = 0;
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), {
    compare: async () => {
      if (n++ === 0) throw new Error('boom');
      return true;
    },
  });
  const [first, second] = await Promise.all([v.verify('alice', 'a'), v.verify('alice', 'b')]);
  t.equal(first, false);
  t.equal(second, true);
});

t.test('update() with a changed hash stops accepting the old password', async (t) => {
  const c = counting((pw, hash) => bcrypt.compareSync(pw, hash));
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  t.equal(await v.verify('alice', ALICE_PW), true);
  t.equal(c.calls.length, 1);
  v.update(new Map([['alice', BOB]]));
  t.equal(v.users, 1);
  t.equal(await v.verify('alice', ALICE_PW), false, 'the cached success belongs to the old hash');
  t.equal(c.calls.length, 2, 'a new compare was made');
  t.equal(await v.verify('alice', BOB_PW), true);
  v.update(new Map());
  t.equal(v.users, 0);
  t.equal(await v.verify('alice', BOB_PW), false, 'a removed user is refused although a success for that hash is cached');
  v.update(new Map([['alice', BOB]]));
  const before = c.calls.length;
  t.equal(await v.verify('alice', BOB_PW), true, 'back again');
  t.equal(c.calls.length, before, 'from the cache: same user, hash and password');
});

t.test('update() during a compare: the check under way keeps the hash it began with, the next uses the new one', async (t) => {
  const c = new GatedCompare();
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: c.fn });
  const before = v.verify('alice', ALICE_PW);
  await settle();
  v.update(new Map([['alice', BOB]]));
  const after = v.verify('alice', ALICE_PW);
  await settle();
  c.release();
  await settle();
  c.release();
  t.equal(await before, true, 'the check that began with the old hash');
  t.equal(await after, true, 'the gated compare says yes to the new hash too');
  t.same(
    c.calls.map((x) => x.hash),
    [ALICE, BOB],
    'two compares: the key changed with the hash',
  );
});

t.test('the cache is a bounded LRU', async (t) => {
  const c = counting(() => true);
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { cacheSize: 2, compare: c.fn });
  await v.verify('alice', 'a');
  await v.verify('alice', 'b');
  t.equal(c.calls.length, 2);
  t.equal(v.cacheKeysForTest().length, 2);
  await v.verify('alice', 'a'); // a is now the most recent
  t.equal(c.calls.length, 2, 'a was cached');
  await v.verify('alice', 'c'); // evicts b, the least recent
  t.equal(c.calls.length, 3);
  t.equal(v.cacheKeysForTest().length, 2, 'never more than cacheSize');
  await v.verify('alice', 'a');
  t.equal(c.calls.length, 3, 'a survived: it was used more recently than b');
  await v.verify('alice', 'b');
  t.equal(c.calls.length, 4, 'b was evicted');
});

t.test('cacheSize 0 caches nothing but still joins concurrent checks', async (t) => {
  const c = counting(() => true);
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { cacheSize: 0, compare: c.fn });
  await Promise.all([v.verify('alice', 'a'), v.verify('alice', 'a')]);
  t.equal(c.calls.length, 1);
  await v.verify('alice', 'a');
  t.equal(c.calls.length, 2);
  t.same(v.cacheKeysForTest(), []);
});

t.test('no password is kept in the cache keys', async (t) => {
  const password = 'Sup3r-S3cret-Passw0rd';
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: async () => true });
  await v.verify('alice', password);
  await v.verify('nobody', password);
  const keys = v.cacheKeysForTest();
  t.equal(keys.length, 2);
  for (const k of keys) {
    t.match(k, /^[0-9a-f]{64}$/, 'an HMAC-SHA256 in hex');
    t.notOk(k.includes(password), 'not the password');
    t.notOk(k.includes(Buffer.from(password).toString('hex')), 'not the password in hex');
    t.notOk(k.includes(Buffer.from(password).toString('base64')), 'not the password in base64');
  }
  const other = new BasicAuthVerifier(new Map([['alice', ALICE]]), { compare: async () => true });
  await other.verify('alice', password);
  t.not(other.cacheKeysForTest()[0], keys[0], 'the HMAC key differs between verifiers (random per process)');
});

t.test('length-prefixed key fields: shifting bytes between user and password gives another key', async (t) => {
  const c = counting(() => true);
  const v = new BasicAuthVerifier(
    new Map([
      ['a', ALICE],
      ['a\0b', ALICE],
    ]),
    { compare: c.fn },
  );
  await v.verify('a', 'b\0c');
  await v.verify('a\0b', 'c');
  t.equal(c.calls.length, 2, 'two compares, two keys');
  t.equal(new Set(v.cacheKeysForTest()).size, 2);
});

t.test('malformed hashes and options are refused', async (t) => {
  t.throws(() => new BasicAuthVerifier(new Map([['alice', 'plaintext']])), ConfigError);
  t.throws(() => new BasicAuthVerifier(new Map([['alice', SOME_HASH.replace('$04$', '$03$')]])), { name: 'ConfigError', message: /"alice".*cost 3/ });
  const v = new BasicAuthVerifier(new Map([['alice', ALICE]]));
  t.throws(() => v.update(new Map([['bob', 'nope']])), ConfigError);
  t.equal(v.users, 1, 'a refused update keeps the users it had');
  t.equal(await v.verify('alice', ALICE_PW), true);
  t.throws(() => new BasicAuthVerifier(new Map(), { cacheSize: -1 }), RangeError);
  t.throws(() => new BasicAuthVerifier(new Map(), { cacheSize: 1.5 }), RangeError);
});

t.test('update() copies the map: later changes to the caller’s map do not leak in', async (t) => {
  const users = new Map([['alice', ALICE]]);
  const v = new BasicAuthVerifier(users, { compare: async () => true });
  users.set('bob', BOB);
  t.equal(v.users, 1);
  t.equal(await v.verify('bob', 'x'), false);
});
