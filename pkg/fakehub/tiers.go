package fakehub

import (
	"fmt"
	"math"
	"strings"
)

// Tier is an IoT Hub pricing tier: F1 (free), B1-B3 (basic), S1-S3 (standard).
type Tier string

// The tiers of IoT Hub.
const (
	TierF1 Tier = "F1"
	TierB1 Tier = "B1"
	TierB2 Tier = "B2"
	TierB3 Tier = "B3"
	TierS1 Tier = "S1"
	TierS2 Tier = "S2"
	TierS3 Tier = "S3"
)

// Tiers lists the tiers in order.
func Tiers() []Tier { return []Tier{TierF1, TierB1, TierB2, TierB3, TierS1, TierS2, TierS3} }

// ParseTier reads "S1", "s1", "F1", "free" ... into a Tier.
func ParseTier(s string) (Tier, error) {
	t := Tier(strings.ToUpper(strings.TrimSpace(s)))
	if t == "FREE" {
		t = TierF1
	}
	for _, k := range Tiers() {
		if k == t {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown tier %q: want one of F1, B1, B2, B3, S1, S2, S3", s)
}

// tierRow is one throttle of the quotas page: its value for each column of the table
// ("Free, B1, and S1" / "B2 and S2" / "B3 and S3"), per unit, with a floor per hub where the
// page says "higher of X/sec or Y/sec/unit" (or a flat value per hub where it gives none per
// unit).
type tierRow struct {
	perUnit [3]float64 // per second per unit, by column; 0: see flat
	floor   [3]float64 // per second per hub: the "higher of" floor, or the flat value
}

func (r tierRow) rate(col, units int) float64 {
	return math.Max(r.perUnit[col]*float64(units), r.floor[col])
}

// The numbers of IoT Hub's quotas-and-throttling page, in ONE place. Source:
// https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
// (MicrosoftDocs/azure-docs articles/iot-hub/iot-hub-devguide-quotas-throttling.md, the
// "Operation throttles" table, read at commit 012737e; the later revisions 8a582c5 and
// 396c510 reword the page without changing these numbers as far as they were read), and for
// the daily messages the pricing page https://azure.microsoft.com/pricing/details/iot-hub/.
// docs/iothub-behavior.md §6.1 repeats the table with its sources.
var (
	// Identity registry operations: 1.67/sec/unit (100/min/unit), 83.33/sec/unit on B3/S3.
	rowRegistry = tierRow{perUnit: [3]float64{100.0 / 60, 100.0 / 60, 5000.0 / 60}}
	// New device connections: higher of 100/sec or 12/sec/unit; 120/sec/unit; 6,000/sec/unit.
	rowConnections = tierRow{perUnit: [3]float64{12, 120, 6000}, floor: [3]float64{100, 0, 0}}
	// Device-to-cloud sends: the same numbers as new connections.
	rowD2C = tierRow{perUnit: [3]float64{12, 120, 6000}, floor: [3]float64{100, 0, 0}}
	// Cloud-to-device sends: 1.67/sec/unit (100/min/unit); 83.33/sec/unit on S3.
	rowC2D = tierRow{perUnit: [3]float64{100.0 / 60, 100.0 / 60, 5000.0 / 60}}
	// Direct methods: 160 KB/sec/unit, 480 KB/sec/unit, 24 MB/sec/unit, metered in 4 KB
	// chunks: 40, 120 and 6,144 chunks/sec/unit.
	rowMethods = tierRow{perUnit: [3]float64{160.0 / 4, 480.0 / 4, 24 * 1024.0 / 4}}
	// Twin (device and module) reads: 100/sec; higher of 100/sec or 10/sec/unit; 500/sec/unit.
	rowTwinReads = tierRow{perUnit: [3]float64{0, 10, 500}, floor: [3]float64{100, 100, 0}}
	// Twin updates: 50/sec; higher of 50/sec or 5/sec/unit; 250/sec/unit.
	rowTwinUpdates = tierRow{perUnit: [3]float64{0, 5, 250}, floor: [3]float64{50, 50, 0}}
)

// Daily message quota per unit (pricing page), and the meter size the quota counts in
// ("0.5 KB for a free tier hub and 4 KB for all other tiers", the quotas page).
var dailyMessages = map[Tier]int64{
	TierF1: 8000, TierB1: 400000, TierS1: 400000,
	TierB2: 6000000, TierS2: 6000000,
	TierB3: 300000000, TierS3: 300000000,
}

// Meter sizes of the daily quota.
const (
	meterFree     = 512
	meterStandard = 4096
	// MethodMeterSize is the throttling meter of direct methods: a call's payload is counted
	// in 4 KB chunks (0-4 KB is one, 4-8 KB two, ...).
	MethodMeterSize = 4096
)

func (t Tier) column() int {
	switch t {
	case TierB2, TierS2:
		return 1
	case TierB3, TierS3:
		return 2
	}
	return 0
}

// Basic reports whether the tier is a basic one (B1-B3: no C2D, twins or direct methods,
// docs/iothub-behavior.md §9.1).
func (t Tier) Basic() bool { return t == TierB1 || t == TierB2 || t == TierB3 }

// TierLimits returns the throttles and the daily quota of a hub of the tier with units
// units (1 when units < 1; a free hub has exactly one unit), from the table above. The
// traffic shaping of each throttle (Burst, Backlog) is left at its default.
func TierLimits(t Tier, units int) (Limits, error) {
	if _, err := ParseTier(string(t)); err != nil {
		return Limits{}, err
	}
	if units < 1 || t == TierF1 {
		units = 1
	}
	col := t.column()
	l := Limits{
		Connections:   Throttle{PerSecond: rowConnections.rate(col, units)},
		D2C:           Throttle{PerSecond: rowD2C.rate(col, units)},
		Registry:      Throttle{PerSecond: rowRegistry.rate(col, units)},
		DailyMessages: dailyMessages[t] * int64(units),
		MeterSize:     meterStandard,
	}
	if t == TierF1 {
		l.MeterSize = meterFree
	}
	if !t.Basic() { // the page's footnote 1: not available in the basic tier
		l.C2D = Throttle{PerSecond: rowC2D.rate(col, units)}
		l.Methods = Throttle{PerSecond: rowMethods.rate(col, units)}
		l.TwinReads = Throttle{PerSecond: rowTwinReads.rate(col, units)}
		l.TwinUpdates = Throttle{PerSecond: rowTwinUpdates.rate(col, units)}
	}
	return l, nil
}
