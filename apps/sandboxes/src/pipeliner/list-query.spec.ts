import { encodeCursor, type Filter, matchesFilter, parseListQuery, runList } from './list-query';
import { STEP_FIELDS } from './fields';

const filter = (field: string, op: Filter['op'], text = ''): Filter =>
  parseListQuery(new URLSearchParams(`filter-op[${field}]=${op}${text ? `&filter[${field}]=${encodeURIComponent(text)}` : ''}`), STEP_FIELDS)
    .filters[0];

describe('matchesFilter (pipeliner-api.md §6 operators)', () => {
  it.each([
    ['name', 'eq', 'Won', 'Won', true],
    ['name', 'eq', 'won', 'Won', false],
    ['name', 'ieq', 'won', 'Won', true],
    ['name', 'not-ieq', 'won', 'Won', false],
    ['name', 'not-eq', 'Won', null, true],
    ['name', 'starts', 'Wo', 'Won', true],
    ['name', 'istarts', 'wo', 'Won', true],
    ['name', 'ends', 'on', 'Won', true],
    ['name', 'iends', 'ON', 'Won', true],
    ['name', 'contains', 'o', 'Won', true],
    ['name', 'contains', 'o', null, false],
    ['description', 'empty', '', '', true],
    ['description', 'empty', '', null, true],
    ['description', 'not-empty', '', 'x', true],
    ['percent', 'null', '', null, true],
    ['percent', 'not-null', '', 0, true],
    ['percent', 'gt', '10', 11, true],
    ['percent', 'gt', '10', 10, false],
    ['percent', 'gte', '10', 10, true],
    ['percent', 'lt', '10', null, false],
    ['percent', 'lte', '10', 9, true],
    ['percent', 'between', '5,10', 10, true],
    ['percent', 'between', '5,10', 11, false],
    ['has_readonly_form', 'eq', 'true', true, true],
    ['has_readonly_form', 'eq', '0', true, false],
    ['pipeline_id', 'eq', 'ABCDEF00-0000-4000-8000-000000000000', 'abcdef00-0000-4000-8000-000000000000', true],
  ] as const)('%s %s %j on %j -> %s', (field, op, text, value, expected) => {
    expect(matchesFilter(value, filter(field, op, text))).toBe(expected);
  });

  it('compares dates as instants, whatever the input format', () => {
    const micros = Date.UTC(2024, 8, 19, 12, 30, 45) * 1000;
    expect(matchesFilter(micros, filter('modified', 'gte', '2024-09-19T12:30:45Z'))).toBe(true);
    expect(matchesFilter(micros, filter('modified', 'gt', '2024-09-19 14:30:45.000000+02:00'))).toBe(false);
  });
});

describe('cursors and paging (pipeliner-api.md §4)', () => {
  const records = Array.from({ length: 7 }, (_, i) => ({ id: `id-${i}`, is_deleted: i === 3, name: `n${6 - i}` }));
  const valueOf = (record: (typeof records)[number], field: string) => (field === 'name' ? record.name : record.id);
  const query = (text: string) => parseListQuery(new URLSearchParams(text), STEP_FIELDS);

  it('writes the cursor like the observed one: base64 of ["value", "id"]', () => {
    const cursor = encodeCursor(['01', 'b2f08246-baa9-42cd-bc7b-8bc82673a658'], [{ field: 'name', type: 'string', descending: false }]);
    expect(cursor).toBe('WyIwMSIsICJiMmYwODI0Ni1iYWE5LTQyY2QtYmM3Yi04YmM4MjY3M2E2NTgiXQ==');
  });

  it('uses first, last, after and before together', () => {
    const page = runList(records, query('first=2&order-by=name'), valueOf);
    expect(page.items.map((r) => r.name)).toEqual(['n0', 'n1']);
    expect(page.total).toBe(6);
    const next = runList(records, query(`first=2&order-by=name&after=${page.pageInfo?.end_cursor}`), valueOf);
    expect(next.items.map((r) => r.name)).toEqual(['n2', 'n4']);
    expect(next.pageInfo).toMatchObject({ has_previous_page: true, has_next_page: true });
    const tail = runList(records, query('first=5&last=2&order-by=name'), valueOf);
    expect(tail.items.map((r) => r.name)).toEqual(['n4', 'n5']);
    const before = runList(records, query(`last=10&order-by=name&before=${next.pageInfo?.start_cursor}`), valueOf);
    expect(before.items.map((r) => r.name)).toEqual(['n0', 'n1']);
    expect(before.pageInfo).toMatchObject({ has_previous_page: false, has_next_page: true });
  });

  it('keeps paging stable when the cursor record was deleted meanwhile', () => {
    const first = runList(records, query('first=3'), valueOf);
    expect(first.items.map((r) => r.id)).toEqual(['id-0', 'id-1', 'id-2']);
    const without = records.filter((r) => r.id !== 'id-2');
    const next = runList(without, query(`first=3&after=${first.pageInfo?.end_cursor}`), valueOf);
    expect(next.items.map((r) => r.id)).toEqual(['id-4', 'id-5', 'id-6']);
  });

  it('rejects a cursor for another sort order', () => {
    const cursor = runList(records, query('first=1'), valueOf).pageInfo?.end_cursor;
    expect(() => query(`order-by=name&after=${cursor}`)).toThrow(/Invalid cursor/);
  });
});
