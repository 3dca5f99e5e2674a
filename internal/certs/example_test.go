package certs_test

import (
	"fmt"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
)

func ExampleCA_Issue() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := certs.NewCA("example CA", 24*time.Hour, now, nil)
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Issue([]string{"localhost", "127.0.0.1", "::1", "myhub.azure-devices.net"}, time.Hour, now)
	if err != nil {
		panic(err)
	}
	fmt.Println(leaf.Leaf.DNSNames, leaf.Leaf.IPAddresses, leaf.Leaf.NotAfter)

	// A server presents the leaf; a client trusts only the CA.
	server, _ := ca.ServerTLS([]string{"localhost"}, time.Hour, now)
	client := ca.ClientTLS("localhost")
	fmt.Println(len(server.Certificates), client.ServerName)
	// Output:
	// [localhost myhub.azure-devices.net] [127.0.0.1 ::1] 2026-01-01 01:00:00 +0000 UTC
	// 1 localhost
}
