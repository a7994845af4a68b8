// The test accounts of the two issuers. Tests import this file so they type the same
// passwords the providers check.
//
// `username` is what one types at the provider's login form; `claims` is what the provider
// says about the person (in the ID token and at userinfo). `preferred_username` is meant to
// become the XMPP localpart, so it must be a valid one (RFC 7622: no space, `'`, `"`, `&`,
// `/`, `:`, `<`, `>`, `@`), while `name` may hold anything a person's name holds.

/** @typedef {{ sub: string, preferred_username?: string, name: string, email: string, email_verified: boolean, groups: string[] }} Claims */
/** @typedef {{ username: string, password: string, claims: Claims }} User */

/** @type {Record<string, User[]>} issuer id → its accounts */
export const USERS = {
  agents: [
    {
      username: 'alice',
      password: 'alice-pass',
      claims: { sub: 'agents-0001', preferred_username: 'alice', name: 'Alice Martin', email: 'alice@agents.example', email_verified: true, groups: ['agents', 'rh'] },
    },
    {
      // Non-ASCII localpart (valid in XMPP), a name with an apostrophe and a diacritic the
      // UI must not mangle, a password with spaces, quotes and markup characters.
      username: 'élodie.obrien',
      password: 'pâss wörd "<&>" 1',
      claims: { sub: 'agents-0002', preferred_username: 'élodie.obrien', name: 'Élodie O’Brien-Nguyễn', email: 'elodie.obrien@agents.example', email_verified: true, groups: ['agents'] },
    },
    {
      // No preferred_username at all: amphi must refuse with `claims`.
      username: 'sans-identifiant',
      password: 'nameless-pass',
      claims: { sub: 'agents-0003', name: 'Sans Identifiant', email: 'nobody@agents.example', email_verified: true, groups: [] },
    },
  ],
  partners: [
    {
      username: 'bruno',
      password: 'bruno-pass',
      claims: { sub: 'partners-0001', preferred_username: 'bruno', name: 'Bruno Lefèvre', email: 'bruno@partners.example', email_verified: true, groups: ['partenaires'] },
    },
    {
      // Same preferred_username as the first issuer's alice, another person: amphi must
      // not hand her account over (`account`).
      username: 'alice',
      password: 'other-alice-pass',
      claims: { sub: 'partners-0002', preferred_username: 'alice', name: 'Alice Autre', email: 'alice@partners.example', email_verified: true, groups: ['partenaires'] },
    },
  ],
};

/** The two issuers: slug (amphi's `id`) and display name. */
export const ISSUERS = [
  { id: 'agents', name: 'Ministère — agents' },
  { id: 'partners', name: 'Partenaires & invités' },
];
