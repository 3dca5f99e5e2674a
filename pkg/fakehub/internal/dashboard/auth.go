package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Limits of the login state: sessions and one-time login tokens kept, and
// how long an unused session lives.
const (
	maxSessions    = 1000
	maxLoginTokens = 32
	sessionIdle    = 12 * time.Hour
)

// uiSession is a logged-in browser.
type uiSession struct {
	id       string
	csrf     string        // the token every state-changing form carries
	policy   string        // who logged in: a policy name, or "login link"
	rights   iothub.Rights // what the policy may do
	lastSeen time.Time
}

// Policy names who logged in (for the page header).
func (s *uiSession) Policy() string { return s.policy }

// may reports whether the session holds need. RegistryWrite includes
// RegistryRead (docs/iothub-behavior.md §2.4).
func (s *uiSession) may(need iothub.Rights) bool {
	r := s.rights
	if r&iothub.RegistryWrite != 0 {
		r |= iothub.RegistryRead
	}
	return r&need == need
}

// auth keeps the sessions and the one-time login tokens.
type auth struct {
	rand io.Reader
	now  func() time.Time

	mu       sync.Mutex
	sessions map[string]*uiSession // by session ID
	tokens   []string              // SHA-256 of the outstanding login tokens, oldest first
}

func (a *auth) random() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(a.rand, b[:]); err != nil {
		return "", fmt.Errorf("dashboard: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return string(h[:])
}

// newLoginToken mints a one-time login token (the oldest is forgotten past
// maxLoginTokens).
func (a *auth) newLoginToken() (string, error) {
	t, err := a.random()
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = append(a.tokens, digest(t))
	if over := len(a.tokens) - maxLoginTokens; over > 0 {
		a.tokens = slices.Delete(a.tokens, 0, over)
	}
	return t, nil
}

// useLoginToken reports whether t is an outstanding login token and, if so,
// spends it.
func (a *auth) useLoginToken(t string) bool {
	if t == "" {
		return false
	}
	d := digest(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, k := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(k), []byte(d)) == 1 {
			a.tokens = slices.Delete(a.tokens, i, i+1)
			return true
		}
	}
	return false
}

// start creates a session.
func (a *auth) start(policy string, rights iothub.Rights) (*uiSession, error) {
	id, err := a.random()
	if err != nil {
		return nil, err
	}
	csrf, err := a.random()
	if err != nil {
		return nil, err
	}
	s := &uiSession{id: id, csrf: csrf, policy: policy, rights: rights, lastSeen: a.now()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions == nil {
		a.sessions = map[string]*uiSession{}
	}
	if len(a.sessions) >= maxSessions { // drop the least recently seen
		var oldest *uiSession
		for _, o := range a.sessions {
			if oldest == nil || o.lastSeen.Before(oldest.lastSeen) {
				oldest = o
			}
		}
		delete(a.sessions, oldest.id)
	}
	a.sessions[id] = s
	return s, nil
}

// lookup returns the live session named by the request's cookie, or nil.
func (a *auth) lookup(r *http.Request) *uiSession {
	c, err := r.Cookie(cookieName(r))
	if err != nil || c.Value == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	now := a.now()
	if now.Sub(s.lastSeen) > sessionIdle {
		delete(a.sessions, s.id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (a *auth) end(s *uiSession) {
	a.mu.Lock()
	delete(a.sessions, s.id)
	a.mu.Unlock()
}

// cookieName is __Host-hubkit over HTTPS (the prefix makes browsers insist
// on Secure, Path=/ and no Domain), hubkit over plain HTTP.
func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-hubkit"
	}
	return "hubkit"
}

// setCookie sends the session cookie: HttpOnly, SameSite=Strict, Secure over
// HTTPS, for the browser session only.
func setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// checkConnectionString returns the policy a pasted service connection
// string names, or an error that says what is wrong without repeating the
// key.
func checkConnectionString(b Backend, hostName, cs string) (iothub.AccessPolicy, error) {
	cs = strings.TrimSpace(cs)
	if cs == "" {
		return iothub.AccessPolicy{}, errors.New("paste a service connection string (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...), or open the login link fakehub printed")
	}
	c, err := sas.ParseConnectionString(cs)
	if err != nil {
		return iothub.AccessPolicy{}, fmt.Errorf("not a connection string: %v", err)
	}
	if c.SharedAccessKeyName == "" {
		return iothub.AccessPolicy{}, errors.New("this connection string has no SharedAccessKeyName: it is a device's; paste a service one (iothubowner or service), as the fakehub banner prints")
	}
	if !strings.EqualFold(c.HostName, hostName) {
		return iothub.AccessPolicy{}, fmt.Errorf("the connection string is for %q, this hub is %q", c.HostName, hostName)
	}
	p, ok := b.Policy(c.SharedAccessKeyName)
	if !ok {
		return iothub.AccessPolicy{}, fmt.Errorf("this hub has no shared access policy named %q (names are case-sensitive)", c.SharedAccessKeyName)
	}
	key, err := sas.DecodeKey(c.SharedAccessKey)
	if err != nil {
		return iothub.AccessPolicy{}, fmt.Errorf("SharedAccessKey: %v", err)
	}
	match := false
	for _, k := range []string{p.PrimaryKey, p.SecondaryKey} {
		if kb, err := sas.DecodeKey(k); err == nil && subtle.ConstantTimeCompare(kb, key) == 1 {
			match = true
		}
	}
	if !match {
		return iothub.AccessPolicy{}, fmt.Errorf("the key is neither the primary nor the secondary key of policy %q (keys change when fakehub restarts without a state folder)", p.KeyName)
	}
	s := &uiSession{rights: p.Rights}
	if !s.may(iothub.ServiceConnect) && !s.may(iothub.RegistryRead) {
		return iothub.AccessPolicy{}, fmt.Errorf("policy %q has %s: the dashboard needs ServiceConnect or RegistryRead", p.KeyName, p.Rights)
	}
	return p, nil
}
