/**
 * A TCP proxy on 127.0.0.1 between the app and the database that can be told to stop forwarding:
 * the database then looks frozen (not down: connections stay open, nothing is answered), as with a
 * stopped process, a network partition or a long lock wait. While hung, bytes in both directions are
 * held back; a connection the client closes meanwhile is dropped with what it held (its statements
 * never reach the server), the others get their bytes when forwarding resumes.
 */
import { createServer, type Server, type Socket, connect } from 'node:net'

interface Pair {
  client: Socket
  upstream: Socket
  held: { to: Socket; chunk: Buffer }[]
}

export class TcpProxy {
  private readonly server: Server
  private readonly pairs = new Set<Pair>()
  private hung = false
  /** Connections accepted, over the proxy's life. */
  connections = 0

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client))
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target)
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get port(): number {
    const address = this.server.address()
    if (address === null || typeof address === 'string') throw new Error('not listening')
    return address.port
  }

  /** Stops forwarding: the database appears frozen. */
  hang(): void {
    this.hung = true
  }

  /** Forwards again, first what was held back. */
  resume(): void {
    this.hung = false
    for (const pair of this.pairs) {
      for (const { to, chunk } of pair.held.splice(0)) if (!to.destroyed) to.write(chunk)
    }
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy()
      pair.upstream.destroy()
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private accept(client: Socket): void {
    this.connections++
    const upstream = connect(this.target.port, this.target.host)
    const pair: Pair = { client, upstream, held: [] }
    this.pairs.add(pair)
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (this.hung) pair.held.push({ to, chunk })
      else if (!to.destroyed) to.write(chunk)
    }
    client.on('data', forward(upstream))
    upstream.on('data', forward(client))
    const close = () => {
      this.pairs.delete(pair)
      pair.held.length = 0
      client.destroy()
      upstream.destroy()
    }
    client.on('close', close)
    upstream.on('close', close)
    client.on('error', close)
    upstream.on('error', close)
  }
}
