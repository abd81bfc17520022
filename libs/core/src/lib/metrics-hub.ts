import type { MetricsObserver } from '@unicrm/model';

/**
 * The core's {@link MetricsObserver}: forwards to the observers attached by a front door (the API's Prometheus
 * registry), none by default. Registered under `TOKENS.Metrics`.
 */
export class MetricsHub implements MetricsObserver {
  private observers: MetricsObserver[] = [];

  /** Adds an observer. @returns a function that removes it */
  attach(observer: MetricsObserver): () => void {
    this.observers = [...this.observers, observer];
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  providerCall(integration: string, outcome: string, seconds: number): void {
    for (const o of this.observers) o.providerCall(integration, outcome, seconds);
  }

  idempotency(event: 'replayed' | 'conflict'): void {
    for (const o of this.observers) o.idempotency(event);
  }

  cache(cache: 'accounts' | 'tokens', hit: boolean): void {
    for (const o of this.observers) o.cache(cache, hit);
  }
}
