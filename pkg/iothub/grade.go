package iothub

import (
	"encoding/json"
	"time"
)

// The device grader's wire shapes (a hubkit extension: POST /hubkit/grade starts a grade,
// GET /hubkit/grade/{id} reads its progress and report, GET /hubkit/grade/cases lists the
// cases). The grader itself is pkg/grade; fakehub runs it (docs/iothub-behavior.md §15).

// GradeRequest asks a hub to grade one identity while it is connected.
type GradeRequest struct {
	DeviceID string `json:"deviceId"`
	ModuleID string `json:"moduleId,omitempty"`
	// Cases selects cases by ID or ID prefix ("device/twin/" or "device/twin"); none: all.
	Cases []string `json:"cases,omitempty"`
	// Method is a direct method the device answers, for device/methods/answers-in-time
	// (none: that case is not exercised); MethodPayload its JSON payload (default {}).
	Method        string          `json:"method,omitempty"`
	MethodPayload json.RawMessage `json:"methodPayload,omitempty"`
	// DeviceClock says where the device's clock comes from: GradeClockHub (the default: it
	// reads the hub's clock, GET /hubkit/clock, so the grader moves time instead of
	// waiting) or GradeClockOwn (its own real clock: time-driven cases run in real time,
	// and only when short enough).
	DeviceClock string `json:"deviceClock,omitempty"`
	// WaitConnect is how long to wait for the device to connect (a Go duration; default 2m).
	WaitConnect string `json:"waitConnect,omitempty"`
	// RegistrationID is the device's DPS registration ID (default: DeviceID), for
	// device/dps/honours-retry-after.
	RegistrationID string `json:"registrationId,omitempty"`
}

// The values of GradeRequest.DeviceClock.
const (
	GradeClockHub = "hub"
	GradeClockOwn = "own"
)

// GradeVerdict is a case's outcome.
type GradeVerdict string

// The verdicts. A case the device was not put through is never a pass.
const (
	GradePass         GradeVerdict = "pass"
	GradeFail         GradeVerdict = "fail"
	GradeNotExercised GradeVerdict = "not-exercised"
)

// The values of GradeReport.State.
const (
	GradeRunning  = "running"
	GradeDone     = "done"     // every selected case has a verdict
	GradeCanceled = "canceled" // stopped early; the cases not reached are not exercised
)

// GradeCase describes one case of the grader (GET /hubkit/grade/cases).
type GradeCase struct {
	ID          string `json:"id"` // stable, e.g. "device/token/renews-before-expiry"
	Title       string `json:"title"`
	Requirement string `json:"requirement"` // what the device must do, one or two sentences
	Section     string `json:"section"`     // the docs/iothub-behavior.md items it rests on
	// Required cases make a grade fail (fakehub grade exits 3) when they fail; the others
	// are recommended.
	Required bool `json:"required"`
}

// GradeEvidence is one observation that decided a verdict: a packet, a fault the grader
// injected, a time.
type GradeEvidence struct {
	Time    time.Time `json:"time"`    // the hub's clock
	Elapsed float64   `json:"elapsed"` // real seconds since the grade started
	Text    string    `json:"text"`
}

// GradeResult is one case's outcome in a report.
type GradeResult struct {
	GradeCase
	Verdict  GradeVerdict    `json:"verdict,omitempty"` // "" while the case has not run yet
	Reason   string          `json:"reason,omitempty"`  // why, in a sentence
	Evidence []GradeEvidence `json:"evidence,omitempty"`
	Started  time.Time       `json:"started,omitzero"` // real time
	Seconds  float64         `json:"seconds,omitempty"`
}

// GradeReport is a grade's progress and, once State is GradeDone, its report.
type GradeReport struct {
	ID          string        `json:"id"`
	DeviceID    string        `json:"deviceId"`
	ModuleID    string        `json:"moduleId,omitempty"`
	DeviceClock string        `json:"deviceClock"`
	State       string        `json:"state"`
	Current     string        `json:"current,omitempty"` // the case running now
	Note        string        `json:"note,omitempty"`    // what the grader is doing or waiting for
	Started     time.Time     `json:"started"`           // real time
	Finished    time.Time     `json:"finished,omitzero"`
	Seconds     float64       `json:"seconds"` // real (wall) seconds so far
	Cases       []GradeResult `json:"cases"`
	Summary     GradeSummary  `json:"summary"`
	// Log is what the grader did outside the cases (e.g. closing a connection that was
	// open before the grade, to watch the device start up).
	Log []GradeEvidence `json:"log,omitempty"`
}

// GradeSummary counts a report's verdicts.
type GradeSummary struct {
	Passed         int `json:"passed"`
	Failed         int `json:"failed"`
	NotExercised   int `json:"notExercised"`
	RequiredFailed int `json:"requiredFailed"`
	Pending        int `json:"pending,omitempty"`
}

// Identity returns the graded identity.
func (r GradeReport) Identity() Identity { return Identity{DeviceID: r.DeviceID, ModuleID: r.ModuleID} }

// Summarize recounts r.Summary from its cases.
func (r *GradeReport) Summarize() {
	var s GradeSummary
	for _, c := range r.Cases {
		switch c.Verdict {
		case GradePass:
			s.Passed++
		case GradeFail:
			s.Failed++
			if c.Required {
				s.RequiredFailed++
			}
		case GradeNotExercised:
			s.NotExercised++
		default:
			s.Pending++
		}
	}
	r.Summary = s
}

// Failed reports whether a required case failed.
func (r GradeReport) Failed() bool { return r.Summary.RequiredFailed > 0 }
