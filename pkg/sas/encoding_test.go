package sas

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEncodeResourceAsTheSDKs checks EncodeResource against testdata/encoding.txt: the forms
// azure-iot-sdk-python and azure-iot-sdk-node produce, computed with their own functions.
func TestEncodeResourceAsTheSDKs(t *testing.T) {
	f, err := os.Open("testdata/encoding.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			t.Fatalf("encoding.txt: %q: want 3 tab-separated columns", line)
		}
		plain, err := strconv.Unquote(cols[0])
		if err != nil {
			t.Fatalf("encoding.txt: %s: %v", cols[0], err)
		}
		python, node := cols[1], cols[2]
		n++
		if got := EncodeResource(plain); got != python {
			t.Errorf("EncodeResource(%q) = %q, want %q (Python quote(uri, safe=\"\"))", plain, got, python)
		}
		// Node differs only in the case of one escape ('*' as %2a), which the hub accepts:
		// it signs the sr exactly as sent.
		if !strings.EqualFold(node, python) {
			t.Errorf("Node %q and Python %q differ beyond case", node, python)
		}
		key := []byte("0123456789abcdef0123456789abcdef")
		for _, sr := range []string{python, node} {
			tok := Sign(sr, "", key, time.Unix(1893456000, 0))
			if err := tok.Verify(key, time.Unix(1893452400, 0), WithAudience(plain)); err != nil {
				t.Errorf("a token with sr=%s does not verify for %q: %v", sr, plain, err)
			}
		}
	}
	if n < 5 {
		t.Fatalf("encoding.txt: %d cases, want at least 5", n)
	}
}
