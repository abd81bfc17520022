import fc from 'fast-check';
import { isJsonObject, mergeRemoteData } from './remote-data';

// The remote_data deep-merge laws of DESIGN.md §2: identities on both sides, remote_data wins on every
// leaf, the mapped body survives where remote_data is silent.
const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<unknown>;
const object = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'name', 'pipeline_id', 'x'), json, { maxKeys: 5 });

/** Scalars and arrays of remote_data with their paths (an empty object is merged, so it adds no leaf). */
function leaves(value: unknown, prefix: string[] = []): Array<[string[], unknown]> {
  if (!isJsonObject(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, [...prefix, k]));
}
function at(value: unknown, path: string[]): unknown {
  return path.reduce<unknown>((current, part) => (isJsonObject(current) ? current[part] : undefined), value);
}

describe('mergeRemoteData laws', () => {
  it('has identities: merge(b, {}) = b and merge({}, r) = r', () => {
    fc.assert(
      fc.property(object, (o) => {
        expect(mergeRemoteData(o, {})).toEqual(o);
        expect(mergeRemoteData({}, o)).toEqual(o);
      }),
    );
  });

  it('lets remote_data win on every leaf', () => {
    fc.assert(
      fc.property(object, object, (mapped, remote) => {
        const merged = mergeRemoteData(mapped, remote);
        for (const [path, value] of leaves(remote)) if (path.length > 0) expect(at(merged, path)).toEqual(value);
      }),
    );
  });

  it('keeps the mapped body where remote_data says nothing', () => {
    fc.assert(
      fc.property(object, object, (mapped, remote) => {
        const merged = mergeRemoteData(mapped, remote);
        for (const key of Object.keys(mapped)) if (!(key in remote)) expect(merged[key]).toEqual(mapped[key]);
      }),
    );
  });

  it('is idempotent: merging the same remote_data twice changes nothing', () => {
    fc.assert(
      fc.property(object, object, (mapped, remote) => {
        const once = mergeRemoteData(mapped, remote);
        expect(mergeRemoteData(once, remote)).toEqual(once);
      }),
    );
  });
});
