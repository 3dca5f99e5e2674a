package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

// The benchmarks share one device token; BenchmarkHMACSHA256 is the bare
// HMAC of the same string to sign, the floor the others are compared with.

func BenchmarkHMACSHA256(b *testing.B) {
	msg := []byte(stringToSign(testDevWire, testExpiry.Unix()))
	b.ReportAllocs()
	for b.Loop() {
		h := hmac.New(sha256.New, testKey)
		h.Write(msg)
		_ = h.Sum(nil)
	}
}

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Sign(testDevWire, "", testKey, testExpiry)
	}
}

func BenchmarkParse(b *testing.B) {
	s := Sign(testDevWire, "", testKey, testExpiry).String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	tok := Sign(testDevWire, "", testKey, testExpiry)
	b.ReportAllocs()
	for b.Loop() {
		if err := tok.Verify(testKey, testNow, WithAudience(testDevRes)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDiagnosis measures a rejected token with the full
// differential diagnosis (no mistake matches: the worst case).
func BenchmarkVerifyDiagnosis(b *testing.B) {
	tok := Sign(testDevWire, "", otherKey, testExpiry)
	suspects := []NamedKey{{"device dev2 primary key", testKey2}, {"policy iothubowner", policyKey}}
	b.ReportAllocs()
	for b.Loop() {
		if err := tok.Verify(testKey, testNow, WithSuspectKeys(suspects...)); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerifyVsHMAC interleaves batches of Verify and of the bare HMAC
// and reports Verify's cost as a multiple of the HMAC's ("x-hmac"): on a
// shared, noisy machine both see the same load, so the ratio holds where
// the absolute times do not.
//
//	go test -run '^$' -bench VerifyVsHMAC -count 6 ./pkg/sas/
func BenchmarkVerifyVsHMAC(b *testing.B) {
	tok := Sign(testDevWire, "", testKey, testExpiry)
	msg := []byte(stringToSign(testDevWire, testExpiry.Unix()))
	const batch = 200
	var tHMAC, tVerify time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		for range batch {
			h := hmac.New(sha256.New, testKey)
			h.Write(msg)
			_ = h.Sum(nil)
		}
		mid := time.Now()
		for range batch {
			if err := tok.Verify(testKey, testNow, WithAudience(testDevRes)); err != nil {
				b.Fatal(err)
			}
		}
		tHMAC += mid.Sub(start)
		tVerify += time.Since(mid)
		n += batch
	}
	b.ReportMetric(float64(tHMAC.Nanoseconds())/float64(n), "hmac-ns")
	b.ReportMetric(float64(tVerify.Nanoseconds())/float64(n), "verify-ns")
	b.ReportMetric(float64(tVerify)/float64(tHMAC), "x-hmac")
}
