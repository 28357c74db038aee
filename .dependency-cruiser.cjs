/**
 * The import rules, checked by `npm run lint` (dependency-cruiser). A capability is a folder of packages/server/src;
 * platform/ is what capabilities share; the files directly in src/ (server.ts, access.ts, seed.ts) assemble them, and
 * only the CLI and the test harness start them. Each rule's comment says why it holds.
 */
const server = '^packages/server/src/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-capability-cycle',
      comment: 'Two server folders that import each other are one capability in two places: inject or move instead.',
      severity: 'error',
      scope: 'folder',
      from: { path: server },
      to: { circular: true },
    },
    {
      name: 'no-package-cycle',
      comment: 'The SDK is below the server and the web: it imports neither.',
      severity: 'error',
      from: { path: '^packages/sdk/' },
      to: { path: '^packages/(server|web)/' },
    },
    {
      name: 'platform-imports-no-capability',
      comment: 'platform/ is what capabilities share; it knows none of them.',
      severity: 'error',
      from: { path: `${server}platform/` },
      to: { path: server, pathNot: `${server}platform/` },
    },
    {
      name: 'capabilities-import-no-assembly',
      comment:
        'server.ts, access.ts and seed.ts assemble the capabilities; a capability that imported them would loop.',
      severity: 'error',
      from: { path: `${server}[^/]+/`, pathNot: `${server}(cli|testing)/` },
      to: { path: `${server}[^/]+\\.ts$` },
    },
    {
      name: 'conversations-never-import-channels',
      comment: 'The secure conversation knows nothing of public channels; channels use conversations.',
      severity: 'error',
      from: { path: `${server}conversations/` },
      to: { path: `${server}channels/` },
    },
    {
      name: 'clients-import-no-server-code',
      comment: 'The SDK and the web use the server over the wire; their tests start it through its testing entry.',
      severity: 'error',
      from: { path: '^packages/(sdk|web)/' },
      to: { path: '^packages/server/', pathNot: '^packages/server/src/testing/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The server's own tests may reach across folders (through testing/); the rules are for the code they test.
    exclude: { path: ['(^|/)(node_modules|dist)/', '^packages/server/.*\\.test\\.ts$'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
}
