package twin

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Options configure a Store.
type Options struct {
	// Now returns the current time for $metadata (default time.Now).
	Now func() time.Time
	// OnDesiredChange, if set, is called after every change of desired properties with the
	// identity, the new desired $version and the notification body the device must receive
	// on $iothub/twin/PATCH/properties/desired/?$version={version}: the patch (for
	// ReplaceDesired, the whole new desired document) with "$version" added as its last
	// member.
	//
	// It is called synchronously by PatchDesired and ReplaceDesired after the change is
	// stored, with no lock held, so it may read the store (Get, ServiceView, Versions) and
	// call PatchReported, UpdateTags or ReplaceTags. Calls never overlap and come in the order
	// of the changes, so versions increase for each identity. It must not call PatchDesired
	// or ReplaceDesired (that would wait for itself) and should return quickly (publish, or
	// drop when the device is not subscribed).
	OnDesiredChange func(id iothub.Identity, version int64, patch []byte)
	// RejectHashInKeys makes property names containing '#' invalid, as edgeHub does. The
	// documented hub rules (and the default) allow '#'.
	RejectHashInKeys bool
}

// Store holds the twins of devices and modules, keyed by identity. Twins are created on first
// use (a new twin has desired and reported $version 1 and no properties); whether the identity
// exists is the caller's business. A Store is safe for concurrent use.
type Store struct {
	now      func() time.Time
	onChange func(id iothub.Identity, version int64, patch []byte)
	val      validator

	mu         sync.Mutex
	twins      map[iothub.Identity]*twin
	nextTicket uint64 // under mu: the order of desired changes, for their notifications

	notifyMu sync.Mutex
	turn     uint64     // the ticket whose notification may run
	turnCond *sync.Cond // on notifyMu
}

type section struct {
	doc     *object
	version int64
	stamp   stamp // the section's own $lastUpdated (and $lastUpdatedVersion for desired)
}

type twin struct {
	version                 int64
	desired, reported, tags section
	// got is Get's answer for version got.version (nil: none yet): a device that asks for
	// an unchanged twin again and again costs a lookup, not a serialization.
	got struct {
		doc     []byte
		version int64
	}
}

func newTwin() *twin {
	return &twin{
		version:  1,
		desired:  section{doc: newObject(), version: 1},
		reported: section{doc: newObject(), version: 1},
		tags:     section{doc: newObject()},
	}
}

// New returns an empty Store.
func New(opts Options) *Store {
	s := &Store{now: opts.Now, onChange: opts.OnDesiredChange, val: validator{rejectHash: opts.RejectHashInKeys},
		twins: make(map[iothub.Identity]*twin)}
	if s.now == nil {
		s.now = time.Now
	}
	s.turnCond = sync.NewCond(&s.notifyMu)
	return s
}

// twin returns the identity's twin, creating it. Callers hold s.mu.
func (s *Store) twin(id iothub.Identity) *twin {
	t := s.twins[id]
	if t == nil {
		t = newTwin()
		s.twins[id] = t
	}
	return t
}

// snapshot returns a copy of the identity's twin, creating it. Sections are never changed
// in place (patched builds a new document, deep-cloned), so the copy can be serialized
// without s.mu: one device's large twin, read again and again, never holds up another
// device's twin operations (docs/iothub-behavior.md §1.30).
func (s *Store) snapshot(id iothub.Identity) twin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.twin(id)
}

// Versions are a twin's version counters.
type Versions struct {
	Twin     int64  // "version" of the service view; +1 for every change
	Desired  int64  // properties.desired.$version
	Reported int64  // properties.reported.$version
	ETag     string // "etag" of the service view
}

// Versions returns the identity's version counters.
func (s *Store) Versions(id iothub.Identity) Versions {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.twin(id)
	return Versions{Twin: t.version, Desired: t.desired.version, Reported: t.reported.version, ETag: etag(t.version)}
}

// etag derives the twin's etag from its version, in the form the hub's etags take
// (base64 of eight bytes: "AAAAAAAAAAE=").
func etag(version int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(version))
	return base64.StdEncoding.EncodeToString(b[:])
}

// Reset forgets every twin: each identity gets a new one (versions 1, no tags or properties)
// when next used.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.twins)
}

// Delete forgets the identity's twin (the device or module was deleted) and reports whether
// there was one.
func (s *Store) Delete(id iothub.Identity) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.twins[id]
	delete(s.twins, id)
	return ok
}

// Get returns the twin as the device receives it in answer to
// $iothub/twin/GET/?$rid={rid}: exactly
// {"desired":{...,"$version":n},"reported":{...,"$version":m}}, without $metadata.
//
// The answer is kept until the twin changes: callers must not modify it.
func (s *Store) Get(id iothub.Identity) []byte {
	s.mu.Lock()
	t := s.twin(id)
	if t.got.doc != nil && t.got.version == t.version {
		b := t.got.doc
		s.mu.Unlock()
		return b
	}
	snap := *t
	s.mu.Unlock()
	b := []byte(`{"desired":`)
	b = appendSection(b, snap.desired, nil)
	b = append(b, `,"reported":`...)
	b = appendSection(b, snap.reported, nil)
	b = append(b, '}')
	b = b[:len(b):len(b)] // an append by a caller copies instead of writing into the kept answer
	s.mu.Lock()
	if s.twins[id] == t && t.version == snap.version {
		t.got.doc, t.got.version = b, snap.version
	}
	s.mu.Unlock()
	return b
}

// appendSection appends {members[,"$metadata":{...}],"$version":n}; meta nil omits $metadata.
func appendSection(b []byte, sec section, meta func([]byte) []byte) []byte {
	b = append(b, '{')
	b = appendMembers(b, sec.doc)
	if len(sec.doc.keys) > 0 {
		b = append(b, ',')
	}
	if meta != nil {
		b = append(b, `"$metadata":`...)
		b = meta(b)
		b = append(b, ',')
	}
	b = append(b, `"$version":`...)
	b = strconv.AppendInt(b, sec.version, 10)
	return append(b, '}')
}

// PatchReported applies a reported-properties patch from the device (a JSON merge patch,
// RFC 7386: null deletes) and returns the new reported $version, which the hub sends back in
// $iothub/twin/res/204/?$rid={rid}&$version={version}. An invalid patch changes nothing and
// returns an *iothub.Error with code 400004 (answer $iothub/twin/res/400/?$rid={rid}).
func (s *Store) PatchReported(id iothub.Identity, patch []byte) (int64, error) {
	p, err := s.parse(patch, "reported properties", false)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.twin(id)
	sec, err := s.patched(t.reported, p, false, MaxPropertiesSize, "reported properties")
	if err != nil {
		return 0, err
	}
	t.reported = sec
	t.version++
	return sec.version, nil
}

// PatchDesired applies a desired-properties patch from the service (JSON merge patch), checks
// ifMatch against the twin's etag ("" or "*": no check; mismatch: *iothub.Error 412001), calls
// OnDesiredChange and returns the new desired $version.
func (s *Store) PatchDesired(id iothub.Identity, patch []byte, ifMatch string) (int64, error) {
	return s.changeDesired(id, patch, ifMatch, false)
}

// ReplaceDesired replaces all desired properties with doc (a JSON object), like PatchDesired
// otherwise. The notification carries the whole new document.
func (s *Store) ReplaceDesired(id iothub.Identity, doc []byte, ifMatch string) (int64, error) {
	return s.changeDesired(id, doc, ifMatch, true)
}

func (s *Store) changeDesired(id iothub.Identity, body []byte, ifMatch string, replace bool) (int64, error) {
	_, desired, err := s.update(id, nil, body, replace, ifMatch)
	return desired, err
}

// notifyInTurn runs f once every notification with an earlier ticket has run. No lock is held
// while f runs, so f may read the store.
func (s *Store) notifyInTurn(ticket uint64, f func()) {
	s.notifyMu.Lock()
	for s.turn != ticket {
		s.turnCond.Wait()
	}
	s.notifyMu.Unlock()
	defer func() {
		s.notifyMu.Lock()
		s.turn++
		s.turnCond.Broadcast()
		s.notifyMu.Unlock()
	}()
	f()
}

// Update changes tags and desired properties in one step, as the service's PATCH (merge, the
// default) or PUT (replace) of a twin does: ifMatch is checked once, either section may be
// nil (left alone), an invalid one changes nothing, and the twin version moves by one. A
// desired change calls OnDesiredChange as PatchDesired does. It returns the new twin version.
func (s *Store) Update(id iothub.Identity, tags, desired []byte, replace bool, ifMatch string) (int64, error) {
	version, _, err := s.update(id, tags, desired, replace, ifMatch)
	return version, err
}

// update is Update; it also returns the desired $version after the change.
func (s *Store) update(id iothub.Identity, tags, desired []byte, replace bool, ifMatch string) (twinVersion, desiredVersion int64, err error) {
	var tp, dp *object
	if tags != nil {
		if tp, err = s.parse(tags, "tags", true); err != nil {
			return 0, 0, err
		}
	}
	if desired != nil {
		if dp, err = s.parse(desired, "desired properties", true); err != nil {
			return 0, 0, err
		}
	}
	s.mu.Lock()
	t := s.twin(id)
	if err := checkETag(t, ifMatch); err != nil {
		s.mu.Unlock()
		return 0, 0, err
	}
	newTags, newDesired := t.tags, t.desired
	if tp != nil {
		if newTags, err = s.patched(t.tags, tp, replace, MaxTagsSize, "tags"); err != nil {
			s.mu.Unlock()
			return 0, 0, err
		}
	}
	if dp != nil {
		if newDesired, err = s.patched(t.desired, dp, replace, MaxPropertiesSize, "desired properties"); err != nil {
			s.mu.Unlock()
			return 0, 0, err
		}
	}
	if tp == nil && dp == nil {
		v, dv := t.version, t.desired.version
		s.mu.Unlock()
		return v, dv, nil
	}
	t.tags, t.desired = newTags, newDesired
	t.version++
	version := t.version
	if dp == nil || s.onChange == nil {
		s.mu.Unlock()
		return version, newDesired.version, nil
	}
	note := desiredNote(dp, newDesired.version)
	ticket := s.nextTicket // taken under mu: notifications leave in the order of the changes
	s.nextTicket++
	s.mu.Unlock()
	s.notifyInTurn(ticket, func() { s.onChange(id, newDesired.version, note) })
	return version, newDesired.version, nil
}

// desiredNote is the notification body of a desired change: the patch with "$version" added
// as its last member.
func desiredNote(p *object, version int64) []byte {
	note := appendValue(nil, p)
	note = note[:len(note)-1] // drop the '}': "$version" goes last
	if len(p.keys) > 0 {
		note = append(note, ',')
	}
	note = append(note, `"$version":`...)
	note = strconv.AppendInt(note, version, 10)
	return append(note, '}')
}

// UpdateTags merges patch into the tags (JSON merge patch), checks ifMatch like PatchDesired,
// and returns the new twin version. Tags are never sent to the device.
func (s *Store) UpdateTags(id iothub.Identity, patch []byte, ifMatch string) (int64, error) {
	return s.changeTags(id, patch, ifMatch, false)
}

// ReplaceTags replaces all tags with doc, like UpdateTags otherwise.
func (s *Store) ReplaceTags(id iothub.Identity, doc []byte, ifMatch string) (int64, error) {
	return s.changeTags(id, doc, ifMatch, true)
}

func (s *Store) changeTags(id iothub.Identity, body []byte, ifMatch string, replace bool) (int64, error) {
	version, _, err := s.update(id, body, nil, replace, ifMatch)
	return version, err
}

// parse decodes and validates a patch or document. service strips the top-level $version and
// $metadata a service may send back with a document it read.
func (s *Store) parse(body []byte, what string, service bool) (*object, error) {
	p, err := decodeObject(body)
	if errors.Is(err, errNotObject) {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "%s must be a JSON object", what)
	}
	if err != nil {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "%s are not valid JSON: %v", what, err)
	}
	if service {
		stripReserved(p)
	}
	if err := s.val.validate(p, "", 0, false); err != nil {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "%s: %v", what, err)
	}
	return p, nil
}

// patched returns sec with p merged in (or replacing it), its version bumped and stamped, or an
// error if the result is over the size limit. sec itself is not modified.
func (s *Store) patched(sec section, p *object, replace bool, limit int, what string) (section, error) {
	sec.version++
	sec.stamp = stamp{at: s.now(), version: sec.version}
	if replace {
		sec.doc = p.clone()
		stampAll(sec.doc, sec.stamp)
	} else {
		sec.doc = sec.doc.clone()
		mergePatch(sec.doc, p, sec.stamp)
	}
	if n := docSize(sec.doc); n > limit {
		return section{}, iothub.Errorf(iothub.CodeArgumentInvalid, "%s would be %d bytes, more than the %d allowed", what, n, limit)
	}
	return sec, nil
}

func checkETag(t *twin, ifMatch string) error {
	ifMatch = strings.Trim(strings.TrimSpace(ifMatch), `"`)
	if ifMatch == "" || ifMatch == "*" || ifMatch == etag(t.version) {
		return nil
	}
	return iothub.Errorf(iothub.CodePreconditionFailed, "etag %q does not match the twin's %q", ifMatch, etag(t.version))
}
