package grade_test

import (
	"flag"
	"os"
	"testing"
)

// gradeParallel is how many grades run at once here unless -test.parallel is given. A
// grade mostly waits (for the device's reconnects, the throttle window, real-time token
// renewal), so the default of GOMAXPROCS (2 on CI machines) would leave the package
// waiting most of its ten minutes; four keeps the CPU of the grades running at once low.
const gradeParallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", gradeParallel)
	}
	os.Exit(m.Run())
}
