import { parseFaultRule, ruleMatches } from './faults';

describe('fault rule matching', () => {
  it.each([
    [{}, 'GET', '/x/Steps', true],
    [{ method: 'post' }, 'POST', '/x/Steps', true],
    [{ method: 'POST' }, 'GET', '/x/Steps', false],
    [{ path: '/entities/Steps' }, 'GET', '/api/v100/rest/spaces/s/entities/Steps/1', true],
    [{ path: 'Pipelines' }, 'GET', '/api/v100/rest/spaces/s/entities/Steps', false],
    [{ path: 'Steps/[0-9a-f-]{36}$' }, 'PATCH', '/e/Steps/00000000-57e9-4000-8000-000000000001', true],
    [{ path: 'Steps/[0-9a-f-]{36}$' }, 'PATCH', '/e/Steps', false],
    [{ path: '(' }, 'GET', '/e/Steps', false],
  ])('%j matches %s %s: %s', (rule, method, path, expected) => {
    expect(ruleMatches(rule, method, path)).toBe(expected);
  });
});

describe('fault rule validation', () => {
  it("ties missingField to the provider's validation status (422 by default, 400 for a provider that says so)", () => {
    expect(parseFaultRule({ status: 422, missingField: 'name' })).toEqual({ status: 422, missingField: 'name' });
    expect(() => parseFaultRule({ status: 400, missingField: 'name' })).toThrow('Invalid fault rule: missingField: missingField needs status 422');
    expect(parseFaultRule({ status: 400, missingField: 'name' }, { validationStatus: 400 })).toEqual({ status: 400, missingField: 'name' });
    expect(() => parseFaultRule({ status: 422, missingField: 'name' }, { validationStatus: 400 })).toThrow('missingField needs status 400');
  });

  it('rejects unknown keys and out-of-range values, listing every problem', () => {
    expect(() => parseFaultRule({ stauts: 500 })).toThrow(/Invalid fault rule: .*stauts/);
    expect(() => parseFaultRule({ status: 100, latencyMs: -1 })).toThrow(/latencyMs: .*; status: /);
    expect(() => parseFaultRule({ body: 'weird' })).toThrow(/body: /);
  });
});
