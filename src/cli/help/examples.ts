/**
 * The examples that end each command's help, by command (`token import`; the
 * root is ""): one or two real command lines, each with a line that says
 * what it does. `test/help.test.ts` parses every one with the real parser.
 */
export const EXAMPLES: Readonly<Record<string, ReadonlyArray<readonly [comment: string, line: string]>>> = {
  "": [
    [
      "run a program with the proxy, serving one OAuth provider and one API key",
      "credproxy exec --allow anthropic --allow-key openai --capability-token -- my-agent"
    ],
    ["store a token on the host for the proxy to serve", "credproxy token import anthropic < token.json"]
  ],
  serve: [
    [
      "serve two OAuth providers and one API key; every other name is refused",
      "credproxy serve --allow anthropic --allow gemini --allow-key openai"
    ],
    [
      "egress mode: the sandbox sends a phantom, the real keys and tokens stay here",
      "credproxy serve --egress routes.json --egress-phantom-file phantom.txt"
    ]
  ],
  exec: [
    [
      "run a program with the proxy; it finds a capability token on fd 3",
      "credproxy exec --allow anthropic --allow-key openai --capability-token -- my-agent"
    ],
    [
      "wire a container by hand: prints the variables and the docker/podman flags, then serves",
      "credproxy exec --print-env --capability-token --allow anthropic --socket-dir /tmp/llxprt-sock"
    ]
  ],
  login: [
    ["log in to a provider of the providers file (its default flow)", "credproxy login anthropic"],
    [
      "log in to a second account, pasting the code the provider shows",
      "credproxy login gemini --bucket work --flow pkce_redirect"
    ]
  ],
  forward: [
    [
      "inside a container: the egress socket mounted at /run/cp, reached on 127.0.0.1:8787",
      "credproxy forward --listen 127.0.0.1:8787 --to unix:/run/cp/llxprt-egress-1234-0a1b2c3d.sock"
    ]
  ],
  token: [
    [
      "store a token as the provider gave it, refresh token included",
      "credproxy token import anthropic < token.json"
    ],
    ["what is stored, one provider:bucket a line", "credproxy token list"]
  ],
  "token import": [
    [
      "store a token as the provider gave it, refresh token included",
      "credproxy token import anthropic < token.json"
    ],
    [
      "a second account of the same provider, in its own bucket",
      "credproxy token import gemini --bucket work < work-token.json"
    ]
  ],
  "token show": [
    ["the token as the sandbox gets it (no refresh token)", "credproxy token show anthropic"],
    [
      "everything stored for the work bucket, refresh token included",
      "credproxy token show gemini --bucket work --reveal"
    ]
  ],
  "token list": [
    ["every stored token, one provider:bucket a line", "credproxy token list"],
    ["the tokens of another data directory", "credproxy token list --data-dir /srv/credproxy"]
  ],
  "token remove": [["delete the token of the work bucket", "credproxy token remove gemini --bucket work"]],
  "token refresh": [
    ["refresh at the provider unless the token is still valid", "credproxy token refresh anthropic"],
    ["with the providers of another file", "credproxy token refresh anthropic --providers ./providers.json"]
  ],
  key: [
    [
      "store a key without it reaching the shell's history",
      'printf %s "$OPENAI_API_KEY" | credproxy key set openai'
    ],
    ["the names of the stored keys", "credproxy key list"]
  ],
  "key set": [
    [
      "store a key without it reaching the shell's history",
      'printf %s "$OPENAI_API_KEY" | credproxy key set openai'
    ],
    ["from a file (one trailing newline is dropped)", "credproxy key set gemini < gemini.key"]
  ],
  "key list": [["the names of the stored keys, one a line", "credproxy key list"]],
  "key remove": [["delete a stored key", "credproxy key remove openai"]],
  providers: [["the providers of {data dir}/providers.json", "credproxy providers list"]],
  "providers add": [
    [
      "add a provider from its issuer's metadata; the login flow is chosen from it",
      "credproxy providers add acme --issuer https://id.acme.example --client-id credproxy-cli"
    ],
    [
      "a confidential client: its secret is read from a file, never from the command line",
      "credproxy providers add corp --issuer https://corp.io --client-id cli --client-secret-file f.txt"
    ]
  ],
  "providers list": [
    ["the providers of {data dir}/providers.json", "credproxy providers list"],
    ["the providers of another file", "credproxy providers list --providers ./providers.json"]
  ],
  doctor: [
    [
      "on the host: directories, providers and their endpoints, the store, running servers",
      "credproxy doctor --socket-dir /tmp/llxprt-sock"
    ],
    [
      "inside the sandbox: the socket, the handshake, and one provider's token",
      "credproxy doctor --provider anthropic"
    ]
  ],
  status: [
    ["every server running on the data directory, redrawn every second", "credproxy status --watch"],
    ["the same as one JSON array, for a script", "credproxy status --json"]
  ],
  policy: [
    ["what the running servers allow and refuse", "credproxy policy show"],
    ["refuse a provider's tokens from the next request on", "credproxy policy deny anthropic"]
  ],
  "policy show": [["what the running servers allow and refuse", "credproxy policy show"]],
  "policy allow": [["take back a deny, or allow one more provider", "credproxy policy allow anthropic"]],
  "policy deny": [["refuse every bucket of a provider at once", "credproxy policy deny anthropic"]],
  "policy allow-key": [["allow one more API key", "credproxy policy allow-key openai"]],
  "policy deny-key": [["refuse an API key from the next request on", "credproxy policy deny-key openai"]],
  approve: [
    ["answer each waiting use in turn (y once, a for the session, n to refuse)", "credproxy approve"],
    ["refuse one waiting use by its id", "credproxy approve 1a2b3c4d n"]
  ],
  store: [
    [
      "move everything from the files into the OS keyring",
      "credproxy store copy --from file --to keyring --move"
    ]
  ],
  "store copy": [
    [
      "copy every token and key into the OS keyring, verified",
      "credproxy store copy --from file --to keyring"
    ],
    ["and back, emptying the keyring", "credproxy store copy --from keyring --to file --move"]
  ]
}
