import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CryptoStatus, VIRTIO_CRYPTO_CIPHER_DECRYPT as DEC, VIRTIO_CRYPTO_CIPHER_ENCRYPT as ENC } from '../../../../backend/crypto/spec';
import { FaultPlan, FaultRuleError, MAX_RULES, formatFaultRule, parseFaultRule } from '../../../../backend/faults/plan';

describe('fault rule parser', () => {
  it('parses every action with its argument', () => {
    assert.deepEqual(parseFaultRule('status=err').action, { kind: 'status', status: 'err' });
    assert.deepEqual(parseFaultRule('status=invsess').action, { kind: 'status', status: 'invsess' });
    assert.deepEqual(parseFaultRule('delay=20').action, { kind: 'delay', ms: 20 });
    assert.deepEqual(parseFaultRule('stall').action, { kind: 'stall' });
    assert.deepEqual(parseFaultRule('irq=withhold').action, { kind: 'irq', mode: 'withhold' });
    assert.deepEqual(parseFaultRule('irq=duplicate').action, { kind: 'irq', mode: 'duplicate' });
    assert.deepEqual(parseFaultRule('short-used=16').action, { kind: 'short-used', bytes: 16 });
    assert.deepEqual(parseFaultRule('flip-dst').action, { kind: 'flip-dst' });
  });

  it('parses matchers (opcode by name or number, u64 session) and prints the canonical text', () => {
    const r = parseFaultRule(' Status=BADMSG , every=3,opcode=decrypt,session=18446744073709551615,count=2 ');
    assert.deepEqual(r.match, { every: 3, opcode: DEC, session: 0xffffffffffffffffn, count: 2 });
    assert.equal(formatFaultRule(r), 'status=badmsg,every=3,opcode=decrypt,session=18446744073709551615,count=2');
    assert.equal(parseFaultRule('delay=5,opcode=0x100').match.opcode, 0x100);
    assert.equal(formatFaultRule(parseFaultRule('opcode=encrypt,stall')), 'stall,opcode=encrypt');
  });

  it('rejects bad rules with a message naming the bad part', () => {
    const bad: [string, RegExp][] = [
      ['', /empty rule/],
      ['every=3', /no action/],
      ['status=maybe', /"status=maybe": status must be one of err, badmsg, notsupp, invsess/],
      ['status=constructor', /status must be one of/],
      ['delay=abc', /"delay=abc": "abc" is not an integer 1\.\.60000/],
      ['delay=0', /"delay=0"/],
      ['delay=60001', /"delay=60001"/],
      ['delay', /"delay": needs a value/],
      ['stall=5', /"stall=5": stall takes no value/],
      ['irq=twice', /"irq=twice": irq must be withhold or duplicate/],
      ['short-used=-1', /"short-used=-1"/],
      ['flip-dst=3', /flip-dst takes no value/],
      ['status=err,every=0', /"every=0"/],
      ['status=err,count=1.5', /"count=1\.5"/],
      ['status=err,opcode=hash', /"opcode=hash": opcode must be encrypt, decrypt or a number/],
      ['status=err,session=-1', /"session=-1": session must be a decimal u64/],
      ['status=err,session=18446744073709551616', /session must be a decimal u64/],
      ['status=err,colour=red', /"colour=red": unknown action or matcher "colour"/],
      ['status=err,,every=2', /empty part between commas/],
      ['status=err,delay=5', /"delay=5": a rule has one action \(already status=err\)/],
      ['status=err,every=2,every=3', /"every=3": every given twice/],
      [`status=err,${'count=1,'.repeat(30)}`, /longer than 200/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseFaultRule(text), (err: unknown) => err instanceof FaultRuleError && re.test(err.message), text);
  });
});

describe('fault rule parser properties', () => {
  const part = fc.oneof(
    fc.constantFrom('status=err', 'status=badmsg', 'delay=5', 'stall', 'irq=withhold', 'short-used=3', 'flip-dst', 'every=2', 'opcode=decrypt', 'opcode=0x100', 'session=4', 'count=1'),
    fc.string({ maxLength: 12 }),
  );
  it('any text parses or throws FaultRuleError, never anything else', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.array(part, { maxLength: 6 }).map((p) => p.join(','))), (text) => {
      try {
        parseFaultRule(text);
      } catch (err) {
        assert.ok(err instanceof FaultRuleError, String(err));
      }
    }), { numRuns: 2000 });
  });
  it('the canonical text parses back to the same rule', () => {
    fc.assert(fc.property(fc.array(part, { maxLength: 6 }).map((p) => p.join(',')), (text) => {
      let spec;
      try {
        spec = parseFaultRule(text);
      } catch {
        return;
      }
      assert.deepEqual(parseFaultRule(formatFaultRule(spec)), spec);
    }), { numRuns: 2000 });
  });
});

describe('fault plan matcher and counters', () => {
  it('every=N fires on each Nth matching request; other opcodes do not count', () => {
    const plan = new FaultPlan();
    plan.addRules(['status=badmsg,every=3,opcode=decrypt']);
    const fired: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      assert.equal(plan.decide(ENC, 1n), null, 'encrypt never matches');
      fired.push(plan.decide(DEC, 1n)?.status === CryptoStatus.BADMSG);
    }
    assert.deepEqual(fired, [false, false, true, false, false, true, false]);
    const [rule] = plan.snapshot().rules;
    assert.deepEqual([rule.seen, rule.hits, rule.retired], [7, 2, false]);
    assert.equal(plan.snapshot().injected, 2);
    assert.equal(plan.snapshot().byAction.status, 2);
  });

  it('session= matches one session; count=N retires the rule after N faults', () => {
    const plan = new FaultPlan();
    plan.addRules(['status=err,session=7,count=2']);
    assert.equal(plan.decide(ENC, 8n), null);
    assert.equal(plan.decide(ENC, 7n)?.status, CryptoStatus.ERR);
    assert.equal(plan.decide(DEC, 7n)?.status, CryptoStatus.ERR);
    assert.equal(plan.decide(ENC, 7n), null, 'retired after two');
    const [rule] = plan.snapshot().rules;
    assert.deepEqual([rule.hits, rule.retired], [2, true]);
  });

  it('combines rules of different kinds on one request, lowest id wins within a kind', () => {
    const plan = new FaultPlan();
    const [a, b, c, d] = plan.addRules(['status=notsupp', 'flip-dst', 'delay=5', 'irq=duplicate']);
    const e = plan.addRules(['short-used=4'])[0];
    const f = plan.decide(ENC, 1n);
    assert.ok(f);
    assert.deepEqual(f.rules, [a.id, c.id, d.id, e.id], 'flip-dst is shadowed by the status rule');
    assert.deepEqual([f.status, f.flipDst, f.delayMs, f.irq, f.shortUsed, f.stall], [CryptoStatus.NOTSUPP, false, 5, 'duplicate', 4, false]);
    const views = plan.snapshot().rules;
    assert.equal(views.find((r) => r.id === b.id)?.hits, 0, 'a shadowed rule injects nothing');
    assert.equal(views.find((r) => r.id === b.id)?.seen, 1);
  });

  it('a stall holds everything until that rule is cleared; a held request is not counted twice', () => {
    const plan = new FaultPlan();
    const [status] = plan.addRules(['status=err,every=2']);
    const [stall] = plan.addRules(['stall,opcode=decrypt']);
    assert.equal(plan.decide(ENC, 1n), null);
    const s = plan.decide(DEC, 1n);
    assert.deepEqual([s?.stall, s?.rules], [true, [stall.id]]);
    assert.equal(plan.stalledBy, stall.id);
    assert.equal(plan.decide(ENC, 1n), null, 'nothing is decided while stalled');
    assert.equal(plan.snapshot().rules[0].seen, 1, 'the held request did not reach the status rule');
    assert.deepEqual(plan.clear(status.id), { cleared: [status.id], released: false });
    assert.equal(plan.stalledBy, stall.id, 'clearing another rule keeps the stall');
    assert.deepEqual(plan.clear(stall.id), { cleared: [stall.id], released: true });
    assert.equal(plan.stalledBy, null);
    assert.equal(plan.decide(DEC, 1n), null, 'the held request is served normally');
    assert.equal(plan.snapshot().byAction.stall, 1);
    assert.equal(plan.snapshot().injected, 1);
  });

  it('adds all rules or none, bounds the plan, and refuses unknown ids', () => {
    const plan = new FaultPlan();
    assert.throws(() => plan.addRules(['status=err', 'delay=x']), /rule 2: "delay=x"/);
    assert.equal(plan.empty, true, 'the good rule was not added either');
    plan.addRules(Array.from({ length: MAX_RULES }, () => 'flip-dst'));
    assert.throws(() => plan.addRules(['flip-dst']), /at most 64 rules/);
    assert.throws(() => plan.clear(999), /no rule with id 999/);
    assert.equal(plan.clear().cleared.length, MAX_RULES);
    assert.equal(plan.empty, true);
    assert.equal(plan.decide(ENC, 1n), null);
    // Ids are never reused: a cleared id cannot name a new rule.
    assert.equal(plan.addRules(['stall'])[0].id, MAX_RULES + 1);
  });
});
