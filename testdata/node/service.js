'use strict';
// The cloud side on the official Node service SDK (azure-iothub), run by a hubkit test:
//
//   HUBKIT_SERVICE_CS      an iothubowner connection string (HostName=localhost;...)
//   HUBKIT_SERVICE_PORT    fakehub's service API port (azure-iothub takes none: lib/hubkit.js)
//   HUBKIT_ONLINE_DEVICE   a connected device that answers method "ping" with 200 {"pong":payload}
//   HUBKIT_OFFLINE_DEVICE  a registered device that is not connected
//
// Each step emits {"event":"step","name":...}; the last event is "done". Any mismatch exits 1
// naming the step.
const h = require('./lib/hubkit');

h.servicePort(h.env('HUBKIT_SERVICE_PORT'));
const { Registry, Client } = require('azure-iothub');

async function main() {
  const cs = h.env('HUBKIT_SERVICE_CS');
  const online = h.env('HUBKIT_ONLINE_DEVICE');
  const offline = h.env('HUBKIT_OFFLINE_DEVICE');
  const registry = Registry.fromConnectionString(cs);
  const step = (name, fields) => h.emit('step', Object.assign({ name }, fields || {}));

  // Registry: create, get, list (GET /devices/), update (If-Match "*"), delete.
  const created = (await registry.create({ deviceId: 'node-svc-1' })).responseBody;
  h.check(created.deviceId === 'node-svc-1' && created.authentication.symmetricKey.primaryKey, 'create returns the device with keys', created);
  step('create', { etag: created.etag });
  const got = (await registry.get('node-svc-1')).responseBody;
  h.check(got.deviceId === 'node-svc-1' && got.etag === created.etag && got.status === 'enabled', 'get', got);
  step('get');
  const list = (await registry.list()).responseBody;
  h.check(Array.isArray(list) && list.some((d) => d.deviceId === 'node-svc-1') && list.some((d) => d.deviceId === online), 'list', list.map((d) => d.deviceId));
  step('list', { count: list.length });
  const updated = (await registry.update({ deviceId: 'node-svc-1', status: 'disabled', statusReason: 'node test' })).responseBody;
  h.check(updated.status === 'disabled' && updated.authentication.symmetricKey.primaryKey === created.authentication.symmetricKey.primaryKey, 'update keeps the keys', updated);
  step('update', { status: updated.status });
  const e409 = await h.expectError('create an existing device', () => registry.create({ deviceId: 'node-svc-1' }));
  h.check(e409.name === 'DeviceAlreadyExistsError', 'a second create is DeviceAlreadyExistsError', e409.name);
  const e404 = await h.expectError('get a missing device', () => registry.get('node-nobody'));
  h.check(e404.name === 'DeviceNotFoundError' && e404.response.statusCode === 404, 'a missing device is DeviceNotFoundError', e404.name);
  step('errors', { conflict: e409.name, notFound: e404.name });

  // Twins: get, update with the etag (Twin.update), update without one (updateTwin with "*"),
  // a stale etag refused.
  const twin = (await registry.getTwin('node-svc-1')).responseBody;
  h.check(twin.deviceId === 'node-svc-1' && twin.etag, 'getTwin', twin);
  const first = twin.etag;
  await twin.update({ tags: { site: 'lab', floor: 2 }, properties: { desired: { interval: 5 } } });
  h.check(twin.tags.site === 'lab' && twin.properties.desired.interval === 5 && twin.etag !== first, 'Twin.update with its etag', twin);
  step('twin-update-etag', { etag: twin.etag });
  const noEtag = (await registry.updateTwin('node-svc-1', { tags: { owner: 'node' } }, '*')).responseBody;
  h.check(noEtag.tags.owner === 'node' && noEtag.tags.site === 'lab', 'updateTwin with "*" merges', noEtag.tags);
  step('twin-update-star');
  const e412 = await h.expectError('update with a stale etag', () => registry.updateTwin('node-svc-1', { tags: { x: 1 } }, first));
  h.check(e412.name === 'InvalidEtagError' && e412.response.statusCode === 412, 'a stale etag is InvalidEtagError', e412.name);
  step('twin-stale-etag', { error: e412.name });
  await registry.updateTwin(online, { tags: { site: 'lab' } }, '*');

  // Query: a filter on tags, one twin per page, followed to the end.
  const q = registry.createQuery("SELECT * FROM devices WHERE tags.site = 'lab'", 1);
  const seen = [];
  while (seen.length < 10) {
    const page = (await q.nextAsTwin()).result;
    seen.push(...page.map((t) => t.deviceId));
    if (!q.hasMoreResults) break;
  }
  seen.sort();
  h.check(JSON.stringify(seen) === JSON.stringify([online, 'node-svc-1'].sort()), 'query by tags, paged', seen);
  step('query', { devices: seen });
  const all = (await registry.createQuery('SELECT * FROM devices').next()).result;
  h.check(all.length === list.length, 'SELECT * FROM devices returns every device', all.length);

  // Direct methods: an answer, and a device that is not online (404103: the Node SDK maps a
  // 404 without "ErrorCode:DeviceNotFound" to a plain "Not found", on the real hub too).
  const client = Client.fromConnectionString(cs);
  const res = (await client.invokeDeviceMethod(online, { methodName: 'ping', payload: { n: 7 }, responseTimeoutInSeconds: 15 })).result;
  h.check(res.status === 200 && res.payload.pong.n === 7, 'invokeDeviceMethod answers', res);
  step('method', { status: res.status });
  const eOff = await h.expectError('a method on an offline device', () =>
    client.invokeDeviceMethod(offline, { methodName: 'ping', payload: {}, responseTimeoutInSeconds: 5 }));
  const body = JSON.parse(eOff.responseBody);
  const inner = JSON.parse(body.Message);
  h.check(eOff.response.statusCode === 404 && inner.errorCode === 404103 && eOff.response.headers['iothub-errorcode'] === 'DeviceNotOnline', 'offline: 404103', eOff.responseBody);
  step('method-offline', { errorCode: inner.errorCode });

  // Delete (If-Match "*"), then it is gone.
  await registry.delete('node-svc-1');
  const gone = await h.expectError('get a deleted device', () => registry.get('node-svc-1'));
  h.check(gone.name === 'DeviceNotFoundError', 'delete removes it', gone.name);
  step('delete');
  h.emit('done');
}

main().catch((e) => h.fail('service flow', e));
