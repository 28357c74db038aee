import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { describe, test } from 'node:test'
import { modules } from '../server.ts'
import { cliHarness } from '../testing/cli.ts'

/** The command line itself: usage, help, the access table and mistakes in what is typed. */
describe('the strongroom command: usage, help and mistakes', () => {
  const cli = cliHarness()
  const run = cli.run

  test('without a command it prints its usage', () => {
    const result = run([])
    assert.equal(result.status, 0)
    assert.match(result.stdout, /usage: strongroom <command>/)
    assert.match(result.stdout, /keys rotate/)
  })

  test('routes prints the access table the modules declare, and leaves the working data alone', () => {
    const result = run(['routes'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/never' })
    assert.equal(result.status, 0, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /^METHOD +PATH +WHO +SCOPE +NOTE$/)
    const row = (method: string, url: string) =>
      lines.find((line) => line.split(/ +/)[0] === method && line.split(/ +/)[1] === url)?.split(/ +/)
    assert.deepEqual(row('POST', '/v1/conversations/:conversationId/messages'), [
      'POST',
      '/v1/conversations/:conversationId/messages',
      'member',
      'conversations:write',
      'member',
      'of',
      ':conversationId,',
      'browser',
      'chat',
    ])
    assert.deepEqual(row('POST', '/v1/integrity/attest'), [
      'POST',
      '/v1/integrity/attest',
      'device',
      'integrity',
      'exempt',
    ])
    assert.deepEqual(row('GET', '/v1/archive/records'), ['GET', '/v1/archive/records', 'staff', 'archive:read'])
    assert.deepEqual(row('PUT', '/dev/camara/sim-swaps/:phoneNumber'), [
      'PUT',
      '/dev/camara/sim-swaps/:phoneNumber',
      'anyone',
    ])
    assert.deepEqual(readdirSync(cli.dir), [], 'nothing written in the data directory the environment names')
  })

  test('a bad setting stops it with one line naming the setting', () => {
    const result = run(['migrate'], { PORT: 'eighty' })
    assert.equal(result.status, 1)
    assert.equal(result.stderr, 'strongroom: configuration error: PORT must be an integer from 0 to 65535\n')
  })

  test('help prints one table of every command, under the module that declares it', () => {
    const { status, stdout } = run(['help'])
    assert.equal(status, 0)
    const sections = new Map<string, string[]>()
    let section = ''
    for (const line of stdout.split('\n')) {
      const heading = /^([a-z-]+):$/.exec(line)
      if (heading?.[1]) {
        section = heading[1]
        sections.set(section, [])
      } else if (/^ {2}[a-z]/.test(line)) {
        // The command's words: those before its synopsis (options, brackets) and its summary (after two spaces).
        const words = (line.trim().split(/ {2,}/)[0] ?? '').split(' ')
        const end = words.findIndex((word) => /^[-[(]/.test(word))
        sections.get(section)?.push(words.slice(0, end === -1 ? undefined : end).join(' '))
      }
    }
    for (const module of modules) {
      if (!module.commands) continue
      assert.deepEqual(
        sections.get(module.name),
        module.commands.map((c) => c.name),
        `the ${module.name} module's commands are listed under it`,
      )
    }
    assert.deepEqual(sections.get('server'), ['start', 'routes', 'migrate', 'witness verify'])
  })

  test('an option a command does not take is a usage error naming it, and nothing runs', () => {
    const misspelt = run(['tenant', 'create', '--nmae', 'Bank'])
    assert.equal(misspelt.status, 2)
    assert.match(misspelt.stderr, /^strongroom: tenant create: Unknown option '--nmae'/)
    const borrowed = run(['tenant', 'list', '--archive'])
    assert.equal(borrowed.status, 2, "another command's option is not this one's")
    assert.match(borrowed.stderr, /Unknown option '--archive'/)
    assert.equal(run(['tenant', 'create', 'Bank']).status, 2, 'a stray argument is refused too')
    assert.deepEqual(readdirSync(cli.dir), [], 'no storage was opened: a dev key file would be in the data directory')
  })

  test('an unknown command or a bad option is a usage error', () => {
    assert.equal(run(['frobnicate']).status, 2)
    const badRole = run(['staff', 'token', '--tenant', 'ten_x', '--name', 'a', '--role', 'god'])
    assert.equal(badRole.status, 2)
    assert.match(badRole.stderr, /--role must be one of agent, supervisor, compliance, admin/)
  })
})
