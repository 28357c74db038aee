import { createServer, type Server } from 'node:http'

/**
 * For tests of production mode: the carrier's CAMARA SIM Swap API that production asks before any SMS code, answering
 * "no swap" for anyone who brings the token. `url` is what STRONGROOM_SIM_SWAP_URL takes.
 */
export async function startFakeCarrier(token: string): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    const authorized = request.headers.authorization === `Bearer ${token}`
    const answer = request.url?.endsWith('/check') ? { swapped: false } : { latestSimChange: null }
    response.writeHead(authorized ? 200 : 401, { 'content-type': 'application/json' })
    response.end(JSON.stringify(authorized ? answer : {}))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/sim-swap/v0`, server }
}
