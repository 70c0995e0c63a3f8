import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { AfpClient } from '../../src/client/afp-client.js';
import { DsiAttention } from '../../src/dsi/header.js';
import { startTestGateway } from '../helpers/gateway.js';

const USER = { name: 'tick', password: 'tock-tock' };

test('the server tickles an idle client and drops one that stays silent past the idle timeout', async () => {
  const g = await startTestGateway({
    users: [USER],
    tune: (cfg) => {
      cfg.dsi.tickleSeconds = 0.1;
      cfg.dsi.idleTimeoutSeconds = 0.6;
    },
  });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    await once(c.dsi, 'tickle');
    assert.ok(c.dsi.ticklesReceived >= 1);
    // We never tickle back, so the server gives up on us.
    await once(c.dsi, 'close');
    assert.ok(c.dsi.isClosed);
  } finally {
    await g.stop();
  }
});

test('a client that tickles is kept; a sleeping client is kept without tickling', async () => {
  const g = await startTestGateway({
    users: [USER],
    tune: (cfg) => {
      cfg.dsi.tickleSeconds = 0.1;
      cfg.dsi.idleTimeoutSeconds = 1.5;
    },
  });
  try {
    const lively = await AfpClient.connect(g.host, g.port, { tickleMs: 100 });
    await lively.login({ user: USER.name, password: USER.password });
    const sleeper = await AfpClient.connect(g.host, g.port);
    await sleeper.login({ user: USER.name, password: USER.password });
    await sleeper.zzzzz(1);
    await new Promise((r) => setTimeout(r, 4000));
    assert.ok(!lively.dsi.isClosed, 'a tickling client outlives the idle timeout');
    assert.ok(!sleeper.dsi.isClosed, 'a sleeping client is not timed out');
    // Waking up: any request ends the sleep, and the idle clock applies again.
    assert.ok((await sleeper.getUserInfo()).uid! >= 1000);
    await once(sleeper.dsi, 'close');
    await lively.close();
  } finally {
    await g.stop();
  }
});

test('a sleeping client that never wakes is dropped at the sleep deadline', async () => {
  const g = await startTestGateway({
    users: [USER],
    tune: (cfg) => {
      cfg.dsi.tickleSeconds = 0.1;
      cfg.dsi.idleTimeoutSeconds = 0.3;
      cfg.dsi.sleepHours = 1.5 / 3600;
    },
  });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    await c.login({ user: USER.name, password: USER.password });
    await c.zzzzz(0);
    await once(c.dsi, 'close');
    assert.ok(g.gw.server.closeCounts.timeout >= 1);
  } finally {
    await g.stop();
  }
});

test('a graceful stop sends every session the shutdown attention before closing', async () => {
  const g = await startTestGateway({ users: [USER] });
  const c = await AfpClient.connect(g.host, g.port);
  await c.login({ user: USER.name, password: USER.password });
  const attention = once(c.dsi, 'attention');
  const closed = once(c.dsi, 'close');
  const stopping = g.stop();
  const [bits] = (await attention) as [number];
  assert.ok(bits & DsiAttention.Shutdown);
  await closed;
  await stopping;
  // A stopped gateway refuses new connections.
  await assert.rejects(AfpClient.serverInfo(g.host, g.port));
});

test('new logins during shutdown get kFPServerGoingDown', async () => {
  const g = await startTestGateway({ users: [USER] });
  try {
    const c = await AfpClient.connect(g.host, g.port);
    g.gw.ctx.shuttingDown = true;
    await assert.rejects(c.login({ user: USER.name, password: USER.password }), (e: { code?: number }) => e.code === -5027);
    await c.close();
  } finally {
    g.gw.ctx.shuttingDown = false;
    await g.stop();
  }
});

test('connection limits per address refuse the excess without touching existing sessions', async () => {
  const g = await startTestGateway({ users: [USER], config: { dsi: { maxConnectionsPerAddress: 2 } } });
  try {
    const a = await AfpClient.connect(g.host, g.port);
    const b = await AfpClient.connect(g.host, g.port);
    await assert.rejects(AfpClient.connect(g.host, g.port));
    await a.login({ user: USER.name, password: USER.password });
    assert.ok((await a.getUserInfo()).uid! >= 1000);
    await a.close();
    await b.close();
  } finally {
    await g.stop();
  }
});
