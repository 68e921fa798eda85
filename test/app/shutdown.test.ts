/**
 * close() of the app (what SIGTERM runs, src/server.ts) with connections that never sent a
 * request, as a browser's preconnect or a load balancer's spare leaves them: Node's
 * closeIdleConnections does not cut those, so close() would wait for each until the request
 * timeout. The shutdown plugin cuts them after its grace; one that did send a request is
 * answered as before.
 */
import { connect, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { build, token } from '../helper.ts';

/** A raw connection to the app; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

t.test('close() cuts a connection that never sent a request, after answering one that did', async (t) => {
  const { app } = await build(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const silent = await open(port);
  const silentClosed = new Promise<boolean>((resolve) => silent.once('close', () => resolve(true)));

  // A keep-alive client with a request of its own: it gets its whole answer.
  const response = await fetch(`http://127.0.0.1:${port}/api/tasks`, { headers: { authorization: `Bearer ${token('alice')}` } });
  t.equal(response.status, 200, 'the request sent before close() is answered');
  await response.text();

  await app.close();
  t.equal(await silentClosed, true, 'the connection that never sent a request was closed by the server');
  t.equal(silent.destroyed, true, 'and is gone');
});
