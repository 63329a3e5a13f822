import t from 'tap';
import { errnoCode, isContainerId, isRecord, isStringArray, isStringRecord } from '../src/guards.js';

t.test('isRecord: plain objects only', async (t) => {
  t.ok(isRecord({}));
  t.ok(isRecord(JSON.parse('{"a":1}')));
  t.ok(isRecord(Object.create(null)));
  t.ok(isRecord(structuredClone({ a: [1] })));
  for (const v of [null, undefined, [], 'x', 1, true, Buffer.from('x'), new Map(), new Date(0), new Error('x')])
    t.notOk(isRecord(v), Object.prototype.toString.call(v));
});

t.test('isStringRecord and isStringArray', async (t) => {
  t.ok(isStringRecord({ a: 'b' }));
  t.ok(isStringRecord({}));
  t.notOk(isStringRecord({ a: 1 }));
  t.notOk(isStringRecord(['a']));
  t.ok(isStringArray([]));
  t.ok(isStringArray(['a', 'b']));
  t.notOk(isStringArray(['a', 1]));
  t.notOk(isStringArray('ab'));
});

t.test('errnoCode', async (t) => {
  t.equal(errnoCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
  t.equal(errnoCode({ code: 'EACCES' }), 'EACCES');
  t.equal(errnoCode({ code: 13 }), undefined);
  t.equal(errnoCode(new Error('x')), undefined);
  t.equal(errnoCode('ENOENT'), undefined);
  t.equal(errnoCode(null), undefined);
});

t.test('isContainerId: 64 lowercase hex digits, nothing else', async (t) => {
  const id = '0123456789abcdef'.repeat(4);
  t.ok(isContainerId(id));
  t.notOk(isContainerId('system.slice'));
  t.notOk(isContainerId(id.toUpperCase()));
  t.notOk(isContainerId(id.slice(1)));
  t.notOk(isContainerId(`${id}0`));
  t.notOk(isContainerId(`docker-${id}.scope`));
});
