'use strict';
// A device on the official Node device SDK over MQTT (azure-iot-device + azure-iot-device-mqtt)
// that sends what the Go test tells it to, for the fault-injection tests: the SDK's own
// end-to-end suites (e2etests/test/d2c_disconnect.js, throttle_disconnect.js) ask the hub for a
// fault with the AzIoTHub_FaultOperation* properties on an ordinary message, and so does this.
//
//   HUBKIT_DEVICE_CS  the connection string; GatewayHostName=localhost:PORT dials fakehub
//   HUBKIT_RETRY      "none": the SDK's NoRetry policy (a lost connection is reported as a
//                     disconnect event); default: the SDK's default ExponentialBackOffWithJitter
//
// Events on stdout: ready; connect (every time the transport connects); disconnect {message};
// sent {id}; send-failed {id, name, message}; error {message}; closed.
// Commands on stdin, not awaited (a send the hub never acknowledges must not block the next):
//   {"cmd":"send","id":"m1","body":"...","properties":{"AzIoTHub_FaultOperationType":"KillTcp",...}}
// Closing stdin ends it.
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const h = require('./lib/hubkit');

// noRetry is azure-iot-common's NoRetry (the policy the SDK's suites set), which
// azure-iot-device does not re-export: no operation is retried.
const noRetry = { shouldRetry: () => false, nextRetryTimeout: () => -1 };

async function main() {
  const client = Client.fromConnectionString(h.env('HUBKIT_DEVICE_CS'), Mqtt);
  if (process.env.HUBKIT_RETRY === 'none') {
    client.setRetryPolicy(noRetry);
  }
  client.on('connect', () => h.emit('connect'));
  client.on('disconnect', (e) => h.emit('disconnect', { message: e ? String(e.transportObj || e.reason || '') : '' }));
  client.on('error', (e) => h.emit('error', { message: String(e) }));
  await client.open();
  h.emit('ready');

  h.commands((cmd) => {
    if (cmd.cmd !== 'send') h.fail(`unknown command ${JSON.stringify(cmd)}`);
    const msg = new Message(cmd.body || '');
    msg.messageId = cmd.id;
    for (const [k, v] of Object.entries(cmd.properties || {})) msg.properties.add(k, v);
    client.sendEvent(msg, (err) => {
      if (err) h.emit('send-failed', { id: cmd.id, name: err.name, message: String(err) });
      else h.emit('sent', { id: cmd.id });
    });
  }, async () => {
    await client.close();
    h.emit('closed');
    process.exit(0);
  });
}

main().catch((e) => h.fail('fault device', e));
