// TEST-ONLY: which grants and sessions belong to which account, so /__admin/revoke-user can end a
// user's access as an administrator disabling the account would. The memory adapter can find a
// record by id only, so the index is kept beside it as records are saved.

const grantsByAccount = new Map();
const sessionsByAccount = new Map();
const INDEXED = new Map([
  ['Grant', grantsByAccount],
  ['Session', sessionsByAccount],
]);

function remember(index, accountId, id) {
  if (!index.has(accountId)) index.set(accountId, new Set());
  index.get(accountId).add(id);
}

/** `memory` (a memory adapter factory) that also indexes Grant and Session ids by account. */
export function indexingAdapter(memory) {
  return (model) => {
    const adapter = memory(model);
    const index = INDEXED.get(model);
    if (!index) return adapter;
    const upsert = adapter.upsert.bind(adapter);
    adapter.upsert = async (id, payload, expiresIn) => {
      if (payload.accountId) remember(index, payload.accountId, id);
      return upsert(id, payload, expiresIn);
    };
    return adapter;
  };
}

/**
 * Delete every grant of `accountId` with its refresh and access tokens (the next refresh is an
 * invalid_grant), and every provider session (the next authorization asks to sign in again);
 * `memory` is the factory `indexingAdapter` wraps.
 */
export async function revokeAccount(memory, accountId) {
  const grants = [...(grantsByAccount.get(accountId) ?? [])];
  const sessions = [...(sessionsByAccount.get(accountId) ?? [])];
  // Every grantable model shares one grant index in the store, so one adapter revokes them all.
  await Promise.all(grants.map((grantId) => memory('RefreshToken').revokeByGrantId(grantId)));
  await Promise.all(grants.map((grantId) => memory('Grant').destroy(grantId)));
  await Promise.all(sessions.map((sessionId) => memory('Session').destroy(sessionId)));
  grantsByAccount.delete(accountId);
  sessionsByAccount.delete(accountId);
  return { grants: grants.length, sessions: sessions.length };
}
