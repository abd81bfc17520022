import type { HttpRequest, HttpResponse, HttpTransport } from '@unicrm/model';

/** Test double of the HTTP transport: answers from a queue and records what was sent (the core's only outside world in its tests). */
export class FakeTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  readonly answers: HttpResponse[] = [];
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued');
    return answer;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The same object, counting the calls of each method in `counts` (by method name). */
export function counting<T extends object>(target: T, counts: Record<string, number>): T {
  return new Proxy(target, {
    get(object, property) {
      const value = Reflect.get(object, property, object) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts[String(property)] = (counts[String(property)] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
}
