// Serves the current oidc-provider instance; a change builds a new one and swaps it in whole, so
// keys can rotate live without losing sessions (configuration.mjs shares one store).
import { buildProvider } from './configuration.mjs';

/** oidc-provider's default route of the revocation endpoint. */
const REVOCATION_PATH = '/token/revocation';

export class ProviderHost {
  #state;

  #handle;

  constructor(state, handle) {
    this.#state = state;
    this.#handle = handle;
  }

  static async start(state) {
    return new ProviderHost(state, (await buildProvider(state)).callback());
  }

  get state() {
    return this.#state;
  }

  /** Rebuild with `changes` applied; a rejected configuration throws and the old one stays. */
  async replace(changes) {
    const next = { ...this.#state, ...changes };
    this.#handle = (await buildProvider(next)).callback();
    this.#state = next;
  }

  handle(req, res) {
    // TEST-ONLY: a revocation endpoint that is advertised but fails, as a provider in trouble.
    if (this.#state.revocation === 'failing' && req.url.split('?')[0] === REVOCATION_PATH) {
      res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
      return undefined;
    }
    return this.#handle(req, res);
  }
}
