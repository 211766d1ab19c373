// A TCP relay on 127.0.0.1 (LISTEN_PORT 0: any free port, printed) that delays every chunk by DELAY_MS in each direction (one-way
// latency; round trip = 2 x DELAY_MS), preserving order. Models a WAN round trip for flow-control
// windows. Usage: node benches/delay_proxy.mjs LISTEN_PORT TARGET_PORT DELAY_MS
import net from 'node:net'
const [listenPort, targetPort, delayMs] = process.argv.slice(2).map(Number)
function pipeDelayed(from, to) {
  from.on('data', (chunk) => {
    setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs)
  })
  from.on('end', () => setTimeout(() => to.end(), delayMs))
  from.on('error', () => to.destroy())
}
const server = net.createServer((client) => {
  const upstream = net.connect(targetPort, '127.0.0.1')
  client.setNoDelay(true); upstream.setNoDelay(true)
  pipeDelayed(client, upstream)
  pipeDelayed(upstream, client)
  upstream.on('error', () => client.destroy())
})
server.listen(listenPort, '127.0.0.1', () => console.log(`proxy ready on ${server.address().port}`))
