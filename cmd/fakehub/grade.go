package main

// fakehub grade: grade a device under test against what IoT Hub expects of a device
// (pkg/grade, through POST /hubkit/grade of a running fakehub).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/grade"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// exitGradeFailed is fakehub grade's exit code when a required case failed.
const exitGradeFailed = 3

func newGradeCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	var req iothub.GradeRequest
	var cases, format, output, payload string
	var list, evidence bool
	cmd := &cobra.Command{
		Use:   "grade --device ID",
		Short: "Grade a connected device against what IoT Hub expects of a device (the device grader)",
		Long: `Grade the device (or module) under test, connected to a running fakehub from any
process: the hub drives the conditions (it moves its clock, drops and refuses the
device's connections, throttles it, exhausts its daily quota, restarts, sends a
C2D message, calls a method) and judges the device by the packets it sends back.
Each case gets a verdict: pass, FAIL, or not exercised (with the reason; a case
the device was not put through is never a pass), and the evidence that decided it.
Progress goes to stderr; the report to stdout (or --output) as text, json or
junit (JUnit XML for CI). --list lists the cases without a hub.

Start the grade before (or while) the device connects. A device already connected
is disconnected once, so that its start-up is watched. Time-driven cases move the
hub's clock: a device should read it (GET /hubkit/clock) for its tokens
(--device-clock hub, the default); one on its own clock is graded in real time
only for short tokens (--device-clock own).` + serviceLong + `
3: a required case failed.`,
		Example: `  fakehub grade --list
  fakehub grade --device dev1 --method reboot
  fakehub grade --device dev1 --cases device/twin,device/c2d --format json
  fakehub grade --device dev1 --format junit --output grade.xml   # for CI`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if format != "text" && format != "json" && format != "junit" {
				return cli.Usagef("--format %q: want text, json or junit", format)
			}
			if cases != "" {
				req.Cases = strings.Split(cases, ",")
			}
			if list {
				sel, err := grade.Select(req.Cases)
				if err != nil {
					return cli.Usage(err)
				}
				return listCases(out, sel, format)
			}
			if req.DeviceID == "" {
				return cli.Usagef("%s needs --device ID (or --list)", cmd.CommandPath())
			}
			if payload != "" {
				if !json.Valid([]byte(payload)) {
					return cli.Usagef("--method-payload: not JSON: %s", payload)
				}
				req.MethodPayload = json.RawMessage(payload)
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rep, err := c.StartGrade(ctx, req)
			if err != nil {
				return explain(err, c, "starting a grade of "+req.DeviceID)
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "fakehub: grading %s (%s); connect the device now if it is not\n", rep.Identity(), rep.ID)
			done, note := map[string]bool{}, ""
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for rep.State == iothub.GradeRunning {
				select {
				case <-ctx.Done():
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = c.CancelGrade(cctx, rep.ID)
					cancel()
					return cli.NewError(cli.ExitError, errors.New("interrupted: the grade was canceled"))
				case <-tick.C:
				}
				if rep, err = c.GradeReport(ctx, rep.ID); err != nil {
					return explain(err, c, "following grade "+rep.ID)
				}
				if rep.Note != note && rep.Note != "" {
					note = rep.Note
					fmt.Fprintf(stderr, "  ... %s\n", note)
				}
				for _, r := range rep.Cases {
					if r.Verdict != "" && !done[r.ID] {
						done[r.ID] = true
						fmt.Fprintln(stderr, grade.ProgressLine(r, len(done), len(rep.Cases)))
					}
				}
			}
			w := out
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return cli.NewError(cli.ExitError, fmt.Errorf("--output: %w", err))
				}
				defer f.Close()
				w = f
			}
			switch format {
			case "json":
				err = printJSON(w, rep)
			case "junit":
				err = grade.WriteJUnit(w, rep)
			default:
				err = grade.WriteText(w, rep, grade.TextOptions{Evidence: evidence})
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return cli.NewError(exitGradeFailed, fmt.Errorf("%d required case(s) failed", rep.Summary.RequiredFailed))
			}
			return nil
		},
	}
	sf.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&req.DeviceID, "device", "", "the device ID to grade")
	fs.StringVar(&req.ModuleID, "module", "", "grade this module of the device instead")
	fs.StringVar(&cases, "cases", "", "comma-separated case IDs or prefixes (device/twin); default all")
	fs.BoolVar(&list, "list", false, "list the cases and exit")
	fs.StringVar(&req.Method, "method", "", "a direct method the device answers (device/methods/answers-in-time)")
	fs.StringVar(&payload, "method-payload", "", "its JSON payload (default {})")
	fs.StringVar(&req.DeviceClock, "device-clock", "hub", "hub: the device reads the hub's clock; own: its own real clock")
	fs.StringVar(&req.WaitConnect, "wait-connect", "", "how long to wait for the device to connect (default 2m)")
	fs.StringVar(&req.RegistrationID, "registration-id", "", "the device's DPS registration ID (default the device ID)")
	fs.StringVar(&format, "format", "text", "report format: text, json or junit")
	fs.StringVarP(&output, "output", "o", "", "write the report to this file instead of stdout")
	fs.BoolVar(&evidence, "evidence", false, "text: print the evidence of every case (default: of failures)")
	return cmd
}

func listCases(w io.Writer, cases []grade.Case, format string) error {
	if format == "json" {
		info := make([]iothub.GradeCase, len(cases))
		for i, c := range cases {
			info[i] = c.Info()
		}
		return printJSON(w, info)
	}
	var b strings.Builder
	for _, c := range cases {
		kind := "required"
		if !c.Required {
			kind = "recommended"
		}
		fmt.Fprintf(&b, "%-40s %-11s %s\n%40s %11s %s\n", c.ID, kind, c.Requirement, "", "", c.Section)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
