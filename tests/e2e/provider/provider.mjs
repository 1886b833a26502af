// TEST-ONLY OpenID provider for idgate's end-to-end tests; README.md describes it. Listens on
// 127.0.0.1, prints exactly one JSON line on stdout when ready, logs everything else to stderr.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { ADMIN_PATH, handleAdmin } from './admin.mjs';
import { ProviderHost } from './host.mjs';
import { loadOrCreateKeys } from './keys.mjs';

// stdout is the readiness channel, and oidc-provider prints its notices with console.info.
console.info = console.error;
console.log = console.error;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
    'backchannel-logout-uri': { type: 'string' },
    // Signing keys are read from (or first written to) this file, so a restart keeps them.
    'keys-file': { type: 'string' },
    // "opaque": access tokens are random strings that only introspection explains.
    'access-token-format': { type: 'string', default: 'jwt' },
    // The pytest fixture holds our stdin: if pytest dies without cleanup, we do not linger.
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

if (!['jwt', 'opaque'].includes(args['access-token-format'])) {
  throw new Error('--access-token-format must be "jwt" or "opaque"');
}

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const host = await ProviderHost.start({
  issuer,
  ...loadOrCreateKeys(args['keys-file']),
  keysFile: args['keys-file'],
  cookieKeys: [randomBytes(32).toString('base64url')],
  web: {
    redirectUris: args['redirect-uri'],
    postLogoutRedirectUris: args['post-logout-redirect-uri'],
    backchannelLogoutUri: args['backchannel-logout-uri'],
  },
  revocation: 'on',
  accessTokenFormat: args['access-token-format'],
});

server.on('request', (req, res) => {
  if (req.url === ADMIN_PATH || req.url.startsWith(`${ADMIN_PATH}/`)) {
    handleAdmin(host, req, res).catch((error) => {
      console.error('admin error:', error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  } else {
    host.handle(req, res);
  }
});

if (args['exit-on-stdin-close']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

process.stdout.write(
  `${JSON.stringify({ issuer, admin: `${issuer}${ADMIN_PATH}`, kid: host.state.keys[0].kid })}\n`,
);
