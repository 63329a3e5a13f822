/** The schedule learner: two equal gaps make a prediction; an arrival off it, or none at all, drops it. */
import t from 'tap';
import { MAX_SCRAPERS, ScheduleLearner, toleranceMs } from '../../src/scrape/schedule.js';

t.test('two equal gaps predict the next scrape; arrivals on it are scheduled', async (t) => {
  const l = new ScheduleLearner();
  t.same(l.observe('p', 1_000), { scheduled: false });
  t.same(l.observe('p', 16_000), { scheduled: false, previousMs: 1_000 });
  t.same(l.expected(), [], 'one gap is not a schedule');
  t.same(l.observe('p', 31_010), { scheduled: false, previousMs: 16_000 });
  t.same(l.expected(), [{ key: 'p', atMs: 46_020, intervalMs: 15_010 }], 'predicted from the last gap');
  t.same(l.observe('p', 46_100), { scheduled: true, previousMs: 31_010 }, 'within the tolerance');
  t.same(l.expected(), [{ key: 'p', atMs: 61_110, intervalMs: 15_010 }], 'follows the scraper, so drift does not add up');
  t.same(l.counts(), { scrapers: 1, predicted: 1 });
  t.equal(l.misses, 0);
});

t.test('an arrival off schedule drops the prediction and starts learning again', async (t) => {
  const l = new ScheduleLearner();
  for (const at of [0, 5_000, 10_000]) l.observe('p', at);
  t.equal(l.expected().length, 1);
  t.same(l.observe('p', 12_000), { scheduled: false, previousMs: 10_000 }, 'early: not the predicted scrape');
  t.equal(l.misses, 1);
  t.same(l.expected(), []);
  l.observe('p', 17_000);
  t.same(l.expected(), [], 'relearning needs two gaps again');
  l.observe('p', 22_000);
  t.same(l.expected(), [{ key: 'p', atMs: 27_000, intervalMs: 5_000 }]);
});

t.test('a predicted scrape that does not come drops the prediction', async (t) => {
  const l = new ScheduleLearner();
  for (const at of [0, 5_000, 10_000]) l.observe('p', at);
  l.expire(15_000 + toleranceMs(5_000));
  t.equal(l.expected().length, 1, 'not yet: still within the tolerance');
  l.expire(15_000 + toleranceMs(5_000) + 1);
  t.same(l.expected(), [], 'dropped');
  t.equal(l.misses, 1);
  t.same(l.observe('p', 20_000), { scheduled: false, previousMs: 10_000 }, 'the next arrival is unscheduled');
});

t.test('unequal gaps, and intervals out of range, are not predicted', async (t) => {
  const l = new ScheduleLearner();
  for (const at of [0, 5_000, 12_000]) l.observe('jittery', at);
  for (const at of [0, 300, 600]) l.observe('fast', at);
  for (const at of [0, 700_000, 1_400_000]) l.observe('slow', at);
  t.same(l.expected(), []);
});

t.test('several scrapers are learned apart, soonest first', async (t) => {
  const l = new ScheduleLearner();
  for (const at of [0, 30_000, 60_000]) l.observe('a', at);
  for (const at of [1_000, 6_000, 11_000]) l.observe('b', at);
  t.same(
    l.expected().map((e) => [e.key, e.atMs]),
    [
      ['b', 16_000],
      ['a', 90_000],
    ],
  );
});

t.test('at most MAX_SCRAPERS are tracked; the one seen longest ago makes room', async (t) => {
  const l = new ScheduleLearner();
  for (let i = 0; i <= MAX_SCRAPERS; i++) l.observe(`s${i}`, i);
  t.equal(l.counts().scrapers, MAX_SCRAPERS);
  t.same(l.observe('s0', 1_000), { scheduled: false }, 's0 was evicted: seen as new');
});
