// Registers one device with a DPS through the official Azure IoT Node provisioning SDK
// (azure-iot-provisioning-device with its MQTT or HTTP transport and
// azure-iot-security-symmetric-key), then connects to the assigned hub with the official
// device SDK (azure-iot-device + azure-iot-device-mqtt), sends one message and prints one
// JSON line: {"assignedHub","deviceId","substatus","payload","sent":true}.
//
// Environment: DPS_HOST (host:port of the DPS endpoint for the chosen transport), ID_SCOPE,
// REGISTRATION_ID, TRANSPORT (mqtt|http), and either DEVICE_KEY (individual enrollment) or
// GROUP_KEY (enrollment group: the device key is derived here, the way Microsoft's Node
// sample does it), optional PAYLOAD (JSON), HUB_ADDR (host:port to dial for the assigned
// hub, sent as GatewayHostName so that user name and token keep the assigned host name).
// Trust fakehub's CA with NODE_EXTRA_CA_CERTS.
'use strict';

const crypto = require('crypto');
const https = require('https');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvMqtt } = require('azure-iot-provisioning-device-mqtt');
const { Http: ProvHttp } = require('azure-iot-provisioning-device-http');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const { Mqtt: DeviceMqtt } = require('azure-iot-device-mqtt');

function env(name, optional) {
  const v = process.env[name];
  if (!v && !optional) {
    throw new Error(name + ' is not set');
  }
  return v;
}

// computeDerivedSymmetricKey as in Microsoft's "provision devices using symmetric key
// enrollment groups" Node sample.
function computeDerivedSymmetricKey(masterKey, regId) {
  return crypto.createHmac('SHA256', Buffer.from(masterKey, 'base64'))
    .update(regId, 'utf8')
    .digest('base64');
}

function httpTransport(dpsHost) {
  // The HTTP transport dials port 443 of the host it is given; an https.Agent (the SDK's
  // http.agent option) sends it to fakehub's port instead.
  const port = Number(dpsHost.split(':')[1] || 443);
  const agent = new https.Agent();
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, cb) => create(Object.assign({}, options, { port: port }), cb);
  const { Http: HttpBase } = require('azure-iot-http-base');
  const base = new HttpBase();
  base.setOptions({ http: { agent: agent } });
  return { transport: new ProvHttp(base), host: dpsHost.split(':')[0] };
}

async function main() {
  const dpsHost = env('DPS_HOST');
  const idScope = env('ID_SCOPE');
  const regId = env('REGISTRATION_ID');
  const groupKey = env('GROUP_KEY', true);
  const key = groupKey ? computeDerivedSymmetricKey(groupKey, regId) : env('DEVICE_KEY');

  let transport, host;
  if (env('TRANSPORT') === 'http') {
    ({ transport, host } = httpTransport(dpsHost));
  } else {
    transport = new ProvMqtt();
    host = dpsHost; // mqtts://host:port
  }
  transport.setTransportOptions({ pollingInterval: 1000 });
  const security = new SymmetricKeySecurityClient(regId, key);
  const client = ProvisioningDeviceClient.create(host, idScope, transport, security);
  const payload = env('PAYLOAD', true);
  if (payload) {
    client.setProvisioningPayload(JSON.parse(payload));
  }
  const result = await client.register();

  let cs = 'HostName=' + result.assignedHub + ';DeviceId=' + result.deviceId + ';SharedAccessKey=' + key;
  const hubAddr = env('HUB_ADDR', true);
  if (hubAddr) {
    cs += ';GatewayHostName=' + hubAddr;
  }
  const device = Client.fromConnectionString(cs, DeviceMqtt);
  await device.open();
  const msg = new Message(JSON.stringify({ provisioned: true }));
  msg.messageId = 'node-dps-1';
  await device.sendEvent(msg);
  await device.close();
  process.stdout.write(JSON.stringify({
    assignedHub: result.assignedHub, deviceId: result.deviceId, substatus: result.substatus,
    payload: result.payload, sent: true,
  }) + '\n');
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write('provision.js: ' + (err && err.stack || err) + '\n');
  if (err && err.result) {
    process.stderr.write('provision.js: result ' + JSON.stringify(err.result) + '\n');
  }
  process.exit(1);
});
