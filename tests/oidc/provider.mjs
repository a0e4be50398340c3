// A real OpenID provider (npm `oidc-provider`) for the sign-in tests, on loopback only.
//
// Configured by environment variables, all optional except OIDC_CLIENTS:
//   OIDC_PORT          port to listen on (default 0: any free port; the chosen one is printed)
//   OIDC_ISSUER        issuer identifier (default http://127.0.0.1:<port>)
//   OIDC_CLIENTS       JSON list of {client_id, client_secret, redirect_uris}
//   OIDC_ACCOUNTS      JSON object: account name -> {email, email_verified, name, hd}.
//                      Any other name signs in too, as <name>@example.org, verified.
//   OIDC_JWKS          JSON private JWK set to sign with (lets several providers share keys,
//                      so a test can tell an issuer check from a signature check)
//   OIDC_CLOCK_OFFSET  seconds added to this process's clock (negative: a slow clock, whose
//                      ID tokens arrive already expired)
//   OIDC_ID_TOKEN_TTL  ID token lifetime in seconds (default 3600)
//
// The login page is oidc-provider's dev interaction: a form with `login` and `password`
// that accepts any account name, so tests drive it with plain HTTP. Consent is granted
// automatically (a first-party client), which keeps the flow to one form.

import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const env = process.env;
const offset = Number(env.OIDC_CLOCK_OFFSET || 0) * 1000;
if (offset) {
  const realNow = Date.now;
  Date.now = () => realNow() + offset;
}

const clients = JSON.parse(env.OIDC_CLIENTS || '[]').map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));
const accounts = JSON.parse(env.OIDC_ACCOUNTS || '{}');

async function signingKeys() {
  if (env.OIDC_JWKS) return JSON.parse(env.OIDC_JWKS);
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] };
}

function findAccount(ctx, id) {
  const known = accounts[id] || {};
  return {
    accountId: id,
    async claims() {
      const claims = {
        sub: id,
        email: known.email ?? `${id}@example.org`,
        email_verified: known.email_verified ?? true,
        name: known.name ?? id,
      };
      if (known.hd) claims.hd = known.hd;
      return claims;
    },
  };
}

async function loadExistingGrant(ctx) {
  // Every requested scope is granted at once: no consent page in the tests.
  const grant = new ctx.oidc.provider.Grant({
    clientId: ctx.oidc.client.clientId,
    accountId: ctx.oidc.session.accountId,
  });
  grant.addOIDCScope('openid email profile');
  await grant.save();
  return grant;
}

async function main() {
  const port = Number(env.OIDC_PORT || 0);
  const { createServer } = await import('node:http');
  const server = createServer();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = server.address().port;
  const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${actualPort}`;

  const provider = new Provider(issuer, {
    clients,
    findAccount,
    loadExistingGrant,
    jwks: await signingKeys(),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified', 'hd'],
      profile: ['name'],
    },
    scopes: ['openid', 'email', 'profile'],
    // Put the claims in the ID token itself, as Google does.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['cmbcluster-test-provider-cookie-key'] },
    ttl: { IdToken: Number(env.OIDC_ID_TOKEN_TTL || 3600) },
    features: { devInteractions: { enabled: true } },
  });
  // Plain http on loopback: the tests never use TLS here.
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`listening ${actualPort} ${issuer}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
