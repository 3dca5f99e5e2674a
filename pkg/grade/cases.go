package grade

import (
	"context"
	"slices"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Case is one behaviour the grader checks.
type Case struct {
	// ID is stable: "device/token/renews-before-expiry".
	ID string
	// Title is a short name for progress lines.
	Title string
	// Requirement is what the device must do, as a reviewer can check it against Section.
	Requirement string
	// Section cites docs/iothub-behavior.md (§15 describes the case; the other items are
	// the hub behaviour it rests on).
	Section string
	// Required cases fail a grade; the others are recommended.
	Required bool

	passive  bool   // judged from what was observed during the whole grade (run last)
	disrupts bool   // closes the device's connection
	needs    string // a hub capability (Cap*) it cannot run without
	run      func(context.Context, *grader) result
}

func (c Case) info() iothub.GradeCase {
	return iothub.GradeCase{ID: c.ID, Title: c.Title, Requirement: c.Requirement, Section: c.Section, Required: c.Required}
}

// Info returns the case's description in the wire shape (GET /hubkit/grade/cases).
func (c Case) Info() iothub.GradeCase { return c.info() }

// Cases returns the grader's cases in report order (a copy). Active cases run in this
// order; passive ones are judged at the end, from everything the grade observed.
func Cases() []Case { return slices.Clone(catalogue) }

var catalogue = []Case{
	{
		ID: "device/keepalive/within-limits", Title: "keep-alive within the hub's limits", Required: true, passive: true,
		Requirement: "Every CONNECT sets a keep-alive from 1 to 1177 s (the hub closes a connection after 1.5 × keep-alive of silence, never waiting longer than 1767 s), and the device is never closed for silence.",
		Section:     "docs/iothub-behavior.md §15.2, §1.17, §1.18",
		run:         caseKeepAlive,
	},
	{
		ID: "device/publish/no-qos2", Title: "no QoS 2 PUBLISH", Required: true, passive: true,
		Requirement: "The device publishes at QoS 0 or 1 only: IoT Hub closes the connection on a QoS 2 PUBLISH.",
		Section:     "docs/iothub-behavior.md §15.3, §5.2",
		run:         caseNoQoS2,
	},
	{
		ID: "device/connect/api-version", Title: "api-version in the user name", passive: true,
		Requirement: "The CONNECT user name carries an api-version ({host}/{device}/?api-version=...): without one some operations (a reported-properties PATCH) are refused.",
		Section:     "docs/iothub-behavior.md §15.4, §1.9, §1.11",
		run:         caseAPIVersion,
	},
	{
		ID: "device/twin/subscribes-before-get", Title: "subscribes to twin responses before a twin request", Required: true, passive: true,
		Requirement: "Before its first twin GET or reported PATCH on a connection the device holds a subscription to $iothub/twin/res/# (subscribed and acknowledged, or kept in its session): the hub drops the answer otherwise.",
		Section:     "docs/iothub-behavior.md §15.5, §4.3",
		run:         caseSubscribeBeforeGet,
	},
	{
		ID: "device/twin/unique-rid", Title: "a unique $rid per twin request", Required: true, passive: true,
		Requirement: "Each twin request on a connection carries a $rid of its own: the answer is matched to the request by $rid.",
		Section:     "docs/iothub-behavior.md §15.6, §4.3",
		run:         caseUniqueRID,
	},
	{
		ID: "device/c2d/acks", Title: "acknowledges cloud-to-device messages", Required: true,
		Requirement: "A device subscribed to its C2D topic at QoS 1 answers each C2D message with a PUBACK: the hub completes a message only then, and delivers it again otherwise.",
		Section:     "docs/iothub-behavior.md §15.7, §4.2",
		run:         caseC2DAcks,
	},
	{
		ID: "device/methods/answers-in-time", Title: "answers a direct method in time", Required: true,
		Requirement: "A device subscribed to $iothub/methods/POST/# answers a direct method on $iothub/methods/res/{status}/?$rid={rid} with the request's $rid before the caller's response timeout.",
		Section:     "docs/iothub-behavior.md §15.8, §4.4",
		run:         caseMethods,
	},
	// The back-off case runs first of the disruptive ones: a client that keeps its back-off
	// across losses close together (pkg/device does, for a minute: takeover ping-pong)
	// would start both episodes at its cap after a takeover and a restart, and show no
	// growth to judge.
	{
		ID: "device/reconnect/backoff-with-jitter", Title: "reconnects with back-off and jitter", Required: true, disrupts: true,
		Requirement: "While the hub refuses its connections (CONNACK 3), the device waits longer and longer between attempts (no tight loop), and the waits are randomized: two episodes do not repeat the same schedule.",
		Section:     "docs/iothub-behavior.md §15.12, §3",
		run:         caseBackoff,
	},
	{
		ID: "device/takeover/recovers", Title: "recovers from a takeover", Required: true, disrupts: true,
		Requirement: "When the hub closes the connection because another connection took the identity over (400027), the device reconnects and holds the subscriptions it had before.",
		Section:     "docs/iothub-behavior.md §15.9, §1.19, §1.16",
		run:         caseTakeover,
	},
	{
		ID: "device/twin/resyncs-after-reconnect", Title: "reads the twin again after a reconnect", passive: true,
		Requirement: "A device that follows desired-property updates GETs its twin again after every reconnect: the hub replays no update sent while it was away.",
		Section:     "docs/iothub-behavior.md §15.10, §4.3",
		run:         caseResync,
	},
	{
		ID: "device/restart/recovers", Title: "recovers from a hub restart", disrupts: true,
		Requirement: "When the hub restarts (every connection closed, stored sessions lost), the device reconnects and subscribes again to what it held (the new CONNACK has session present 0).",
		Section:     "docs/iothub-behavior.md §15.11, §1.16, §14.6",
		run:         caseRestart,
	},
	{
		ID: "device/throttle/backs-off", Title: "backs off when throttled", Required: true, disrupts: true,
		Requirement: "While the hub throttles its telemetry (429001: the connection closed at each message), the device slows down rather than resending in a tight loop, and sends again once the throttling ends.",
		Section:     "docs/iothub-behavior.md §15.13, §6.2, §14.1",
		run:         caseThrottle,
	},
	{
		ID: "device/quota/recovers-after-reset", Title: "recovers after the daily quota resets", Required: true, disrupts: true,
		Requirement: "Refused for the daily message quota (403002) it keeps trying with back-off, and sends again once the quota resets at 00:00 UTC.",
		Section:     "docs/iothub-behavior.md §15.14, §6.2",
		run:         caseQuota,
	},
	{
		ID: "device/token/renews-before-expiry", Title: "renews its SAS token before it expires", Required: true, disrupts: true,
		Requirement: "The device reconnects with a new SAS token (a later se) before its current token expires, so that the hub never has to cut it (401003, 404104).",
		Section:     "docs/iothub-behavior.md §15.15, §2.5",
		run:         caseToken,
	},
	{
		ID: "device/dps/honours-retry-after", Title: "waits retry-after between DPS polls", Required: true, passive: true, needs: CapDPS,
		Requirement: "Registering with the Device Provisioning Service, the device waits the retry-after of each 202 answer before it polls the operation status.",
		Section:     "docs/iothub-behavior.md §15.16, §7.5",
		run:         caseDPS,
	},
	{
		ID: "device/tls/accepts-migrated-root", Title: "accepts a migrated root CA", Required: true, disrupts: true, needs: CapTLSDrills,
		Requirement: "A device that trusts both the old and the new root keeps connecting when the hub's chain moves to the new root: with the hub presenting the new root's chain, its next connection is accepted within the reconnect wait.",
		Section:     "docs/iothub-behavior.md §15.17, §8.5",
		run:         caseAcceptsMigratedRoot,
	},
	{
		ID: "device/tls/refuses-wrong-san", Title: "refuses a certificate for another host", Required: true, disrupts: true, needs: CapTLSDrills,
		Requirement: "The device refuses a server certificate whose subject alternative names do not include the host it dialled: its handshakes fail and it sends no CONNECT over them, and it connects again once the hub presents its own certificate.",
		Section:     "docs/iothub-behavior.md §15.17, §8.5",
		run:         caseRefusesWrongSAN,
	},
}
