// Command sastool makes, inspects and checks Azure IoT Hub shared access signature (SAS)
// tokens and connection strings, offline.
//
//	sastool gen      print a token for a device, module, policy or DPS registration
//	sastool decode   show a token's scope and expiry (no key needed)
//	sastool verify   check a token with a key; explain a rejection (exit 3)
//	sastool derive   the DPS device key of a group enrollment
//	sastool connstr  parse and check a connection string; "connstr build" makes one
//	sastool mqtt     host, client ID, user name, password and topics for a raw MQTT client,
//	                 also as env lines, mosquitto commands or a paho-python script
//
// It is a thin client over pkg/sas and pkg/iothub: "sastool verify" prints the same reason
// codes and hints as fakehub's authenticator, because both call sas.Token.Verify.
//
// The result is the only thing on stdout; diagnostics go to stderr as "sastool: error: ..."
// and "sastool: hint: ..." lines. Exit codes: 0 ok, 1 error, 2 usage, 3 verify rejected a
// well-formed token. Run "sastool --help" and "sastool VERB --help" for details and examples.
package main
